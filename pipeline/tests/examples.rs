//! Examples built from rows: loss masks, EOS, labels, pairs, few-shot,
//! truncation policies, chat templates (with a word-level tokenizer whose
//! ids a reader can follow).

mod common;
use common::*;
use ft_data::render::{Fields, Text};
use ft_pipeline::{BatchData, PipelineError, IGNORE};
use ft_plan::{Head, Length, Objective, OnBadRow, Shots, TrainData, Truncate};

const ROWS: &str = r#"{"q": "what is up", "a": "the sky"}
{"q": "who are you", "a": "a bot"}
{"q": "where is it", "a": "over there"}
{"q": "how old", "a": "very old"}
"#;

fn vocab_texts() -> Vec<&'static str> {
    vec![ROWS, "Q : A : system be brief user assistant"]
}

#[test]
fn prompt_completion_trains_completion_and_eos_only() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "d.jsonl", ROWS);
    let ds = jsonl_ds("d", &f, completion_fields("Q : {q} A :", " {a}"));
    let p = plan(
        vec![ds],
        TrainData::Dataset(data_ref("d")),
        Head::CausalLm,
        4,
        64,
        Length::Steps(1),
    );
    let tok = word_tokenizer(&vocab_texts(), false);
    let eos = tok.eos_id.unwrap() as i64;
    let data = build(&p, tok).unwrap();
    let ex = &data.dataset("d").unwrap().splits[0]
        .examples
        .get(0)
        .unwrap();
    let s = &ex.tokens.seq;
    // "Q : what is up A :" = 7 prompt tokens, "the sky" + EOS trained.
    assert_eq!(s.prompt_len, 7);
    assert_eq!(s.trained, [vec![false; 7], vec![true; 3]].concat());
    assert_eq!(*s.ids.last().unwrap() as i64, eos);
    assert_eq!(ex.tokens.reference.as_deref(), Some(" the sky"));
    // In a batch: labels are the ids where trained, -100 elsewhere (no shift).
    let batch = data.train_sampler().unwrap().next().unwrap();
    let BatchData::Single(b) = batch.data else {
        panic!()
    };
    assert_eq!(b.batch, 4);
    let row = b.example_ids.iter().position(|&id| id == ex.id).unwrap();
    let labels = &b.labels[row * b.seq..row * b.seq + s.len()];
    for (i, &l) in labels.iter().enumerate() {
        let want = if s.trained[i] {
            s.ids[i] as i64
        } else {
            IGNORE
        };
        assert_eq!(l, want, "position {i}");
    }
    assert_eq!(*labels.last().unwrap(), eos, "EOS is a trained token");
}

#[test]
fn classification_labels_index_the_head_and_unknown_labels_are_bad_rows() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "c.jsonl",
        "{\"t\": \"good\", \"y\": \"pos\"}\n{\"t\": \"bad\", \"y\": \"neg\"}\n{\"t\": \"meh\", \"y\": \"neutral\"}\n",
    );
    let fields = Fields {
        input: text("{t}"),
        label: text("{y}"),
        ..Fields::default()
    };
    let head = Head::Classify {
        labels: vec!["neg".into(), "pos".into()],
    };
    let tok = || word_tokenizer(&["good bad meh"], false);
    let mut ds = jsonl_ds("c", &f, fields);
    let p = |ds| {
        plan(
            vec![ds],
            TrainData::Dataset(data_ref("c")),
            head.clone(),
            2,
            16,
            Length::Steps(1),
        )
    };
    let err = build(&p(ds.clone()), tok()).err().unwrap();
    let PipelineError::BadRow { line, reason, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(*line, 3);
    assert!(reason.contains("neutral"), "{reason}");
    ds.on_bad_row = OnBadRow::Skip;
    let data = build(&p(ds), tok()).unwrap();
    let ex = &data.dataset("c").unwrap().splits[0].examples;
    assert_eq!(
        ex.iter()
            .map(|e| e.tokens.class_label.unwrap())
            .collect::<Vec<_>>(),
        [1, 0]
    );
    assert_eq!(
        data.report().datasets[0].skipped["unknown label `neutral`"],
        1
    );
    let BatchData::Single(b) = data.train_sampler().unwrap().next().unwrap().data else {
        panic!()
    };
    assert!(b.labels.is_empty());
    assert_eq!(b.class_labels.len(), 2);
}

#[test]
fn dpo_pairs_share_the_prompt_and_train_each_completion() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "p.jsonl",
        "{\"p\": \"hi there\", \"c\": \"hello friend\", \"r\": \"go away now\"}\n",
    );
    let fields = Fields {
        prompt: text("{p}"),
        chosen: text("{c}"),
        rejected: text("{r}"),
        ..Fields::default()
    };
    let mut p = plan(
        vec![jsonl_ds("p", &f, fields)],
        TrainData::Dataset(data_ref("p")),
        Head::CausalLm,
        1,
        16,
        Length::Steps(1),
    );
    p.train.objective = Objective::Dpo {
        beta: 0.1,
        reference: None,
    };
    let data = build(
        &p,
        word_tokenizer(&["hi there hello friend go away now"], false),
    )
    .unwrap();
    let BatchData::Pair(pair) = data.train_sampler().unwrap().next().unwrap().data else {
        panic!()
    };
    assert_eq!(&pair.chosen.input_ids[..2], &pair.rejected.input_ids[..2]);
    assert_eq!(pair.chosen.labels, vec![IGNORE, IGNORE, 8, 9, 3]);
    assert_eq!(pair.rejected.labels, vec![IGNORE, IGNORE, 10, 11, 12, 3]);
}

#[test]
fn few_shot_examples_are_deterministic_and_never_the_row_itself() {
    let dir = tempfile::tempdir().unwrap();
    let mut rows = String::new();
    for i in 0..30 {
        rows.push_str(&format!(
            "{{\"q\": \"question {i}\", \"a\": \"answer {i}\"}}\n"
        ));
    }
    // A duplicate of row 0's text must not be drawn for row 0 either.
    rows.push_str("{\"q\": \"question 0\", \"a\": \"answer 0\"}\n");
    let f = write(dir.path(), "s.jsonl", &rows);
    let mut ds = jsonl_ds("s", &f, completion_fields("Q {q} A", " {a}"));
    ds.shots = Some(Shots {
        count: 3,
        split: "train".into(),
    });
    let p = plan(
        vec![ds],
        TrainData::Dataset(data_ref("s")),
        Head::CausalLm,
        4,
        256,
        Length::Steps(1),
    );
    let tok = || word_tokenizer(&[&rows, "Q A"], false);
    let a = build(&p, tok()).unwrap();
    let b = build(&p, tok()).unwrap();
    let ea = &a.dataset("s").unwrap().splits[0].examples;
    assert_eq!(
        ea.iter().collect::<Vec<_>>(),
        b.dataset("s").unwrap().splits[0]
            .examples
            .iter()
            .collect::<Vec<_>>(),
        "same shots on every build"
    );
    let t = a.tokenizer();
    for (i, ex) in ea.iter().enumerate() {
        let prompt = t.decode(&ex.tokens.seq.ids[..ex.tokens.seq.prompt_len]);
        let own = ex.row["q"].as_str().unwrap();
        // The row's own question appears once: as its prompt, never as a shot.
        assert_eq!(
            prompt.matches(&format!("{own} A")).count(),
            1,
            "row {i}: {prompt}"
        );
        assert_eq!(
            prompt.matches("Q question").count(),
            4,
            "3 shots + the row: {prompt}"
        );
    }
}

#[test]
fn truncation_policies_truncate_drop_and_error() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "t.jsonl",
        "{\"q\": \"a b c d e f g h\", \"a\": \"x y\"}\n{\"q\": \"a\", \"a\": \"x\"}\n",
    );
    let tok = || word_tokenizer(&["a b c d e f g h x y"], false);
    let mk = |policy| {
        let mut ds = jsonl_ds("t", &f, completion_fields("{q}", "{a}"));
        ds.truncate = policy;
        plan(
            vec![ds],
            TrainData::Dataset(data_ref("t")),
            Head::CausalLm,
            1,
            6,
            Length::Steps(2),
        )
    };
    // truncate: the prompt loses its first 5 tokens, the completion survives.
    let data = build(&mk(Truncate::Truncate), tok()).unwrap();
    let split = &data.report().datasets[0].splits[0];
    assert_eq!(
        (split.examples, split.truncated, split.dropped_too_long),
        (2, 1, 0)
    );
    let lens: Vec<usize> = data
        .eval_examples("train")
        .unwrap()
        .iter()
        .map(|e| e.prompt_ids.len())
        .collect();
    assert_eq!(lens, vec![3, 1]);
    // drop: counted, and gone from training.
    let data = build(&mk(Truncate::Drop), tok()).unwrap();
    let split = &data.report().datasets[0].splits[0];
    assert_eq!(
        (split.examples, split.truncated, split.dropped_too_long),
        (1, 0, 1)
    );
    for b in data.train_sampler().unwrap() {
        assert_eq!(b.data.main().seq, 3, "only the short example is sampled");
    }
    // error: names the file and line.
    let err = build(&mk(Truncate::Error), tok()).err().unwrap();
    assert!(
        matches!(
            err,
            PipelineError::TooLong {
                line: 1,
                len: 11,
                max_len: 6,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("t.jsonl:1"), "{err}");
}

#[test]
fn chat_messages_train_assistant_turns_with_their_end_of_turn() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "m.jsonl",
        "{\"q\": \"who are you\", \"a\": \"a bot\", \"q2\": \"how old\", \"a2\": \"very old\"}\n",
    );
    let fields = Fields {
        messages: chat(&[
            ("system", "be brief"),
            ("user", "{q}"),
            ("assistant", "{a}"),
            ("user", "{q2}"),
            ("assistant", "{a2}"),
        ]),
        ..Fields::default()
    };
    let p = plan(
        vec![jsonl_ds("m", &f, fields)],
        TrainData::Dataset(data_ref("m")),
        Head::CausalLm,
        1,
        64,
        Length::Steps(1),
    );
    let data = build(&p, word_tokenizer(&vocab_texts(), true)).unwrap();
    let ex = &data.dataset("m").unwrap().splits[0]
        .examples
        .get(0)
        .unwrap();
    let shown = ft_pipeline::render_example(data.tokenizer(), &ex.tokens.seq, false);
    // Word-level decode joins tokens with spaces.
    assert_eq!(
        shown,
        "<|im_start|> system be brief <|im_end|> <|im_start|> user who are you <|im_end|> <|im_start|> assistant[[a bot <|im_end|>]]<|im_start|> user how old <|im_end|> <|im_start|> assistant[[very old <|im_end|>]]"
    );
    assert_eq!(ex.tokens.reference.as_deref(), Some("very old"));
}

#[test]
fn chat_prompts_are_rendered_with_the_template_and_the_completion_gets_eos() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "c.jsonl", ROWS);
    let fields = Fields {
        prompt: chat(&[("system", "be brief"), ("user", "{q}")]),
        completion: text("{a}"),
        ..Fields::default()
    };
    let p = plan(
        vec![jsonl_ds("c", &f, fields)],
        TrainData::Dataset(data_ref("c")),
        Head::CausalLm,
        1,
        64,
        Length::Steps(1),
    );
    let data = build(&p, word_tokenizer(&vocab_texts(), true)).unwrap();
    let ex = &data.dataset("c").unwrap().splits[0]
        .examples
        .get(0)
        .unwrap();
    assert_eq!(
        ft_pipeline::render_example(data.tokenizer(), &ex.tokens.seq, false),
        "<|im_start|> system be brief <|im_end|> <|im_start|> user what is up <|im_end|> <|im_start|> assistant[[the sky <|im_end|>]]"
    );
}

#[test]
fn a_template_that_never_trains_eos_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "m.jsonl", "{\"q\": \"hi\", \"a\": \"yo\"}\n");
    let fields = Fields {
        messages: Some(Text::Chat(vec![
            ft_data::render::ChatTurn {
                role: "user".into(),
                content: tpl("{q}"),
            },
            ft_data::render::ChatTurn {
                role: "assistant".into(),
                content: tpl("{a}"),
            },
        ])),
        ..Fields::default()
    };
    let p = plan(
        vec![jsonl_ds("m", &f, fields)],
        TrainData::Dataset(data_ref("m")),
        Head::CausalLm,
        1,
        64,
        Length::Steps(1),
    );
    let mut tok = word_tokenizer(&["hi yo user assistant"], true);
    // A template whose turns end with a newline only: no EOS to learn.
    tok.chat_template = Some("{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}".into());
    let err = build(&p, tok).err().unwrap();
    assert!(matches!(err, PipelineError::EosNotTrained { .. }), "{err}");
}

#[test]
fn a_truncated_dpo_pair_keeps_the_same_prompt_on_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "p.jsonl",
        "{\"p\": \"a b c d e f\", \"c\": \"x\", \"r\": \"y y y\"}\n",
    );
    let fields = Fields {
        prompt: text("{p}"),
        chosen: text("{c}"),
        rejected: text("{r}"),
        ..Fields::default()
    };
    // chosen: 6 + 1 + EOS = 8, rejected: 6 + 3 + EOS = 10; max_len 7 cuts 3
    // prompt tokens from both.
    let mut p = plan(
        vec![jsonl_ds("p", &f, fields)],
        TrainData::Dataset(data_ref("p")),
        Head::CausalLm,
        1,
        7,
        Length::Steps(1),
    );
    p.train.objective = Objective::Dpo {
        beta: 0.1,
        reference: None,
    };
    p.train.packing = true;
    let data = build(&p, word_tokenizer(&["a b c d e f x y"], false)).unwrap();
    let BatchData::Pair(pair) = data.train_sampler().unwrap().next().unwrap().data else {
        panic!()
    };
    assert_eq!(pair.chosen.input_ids, vec![9, 10, 11, 12, 3]);
    assert_eq!(pair.rejected.input_ids, vec![9, 10, 11, 13, 13, 13, 3]);
    assert!(pair.chosen.segment_ids.is_none(), "pairs are never packed");
}

#[test]
fn a_chat_template_refusing_a_row_is_a_bad_row() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "m.jsonl",
        "{\"m\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"yo\"}]}\n{\"m\": [{\"role\": \"assistant\", \"content\": \"yo\"}, {\"role\": \"assistant\", \"content\": \"yo\"}]}\n",
    );
    let fields = Fields {
        messages: Some(Text::ChatField("m".into())),
        ..Fields::default()
    };
    let mut ds = jsonl_ds("m", &f, fields);
    ds.on_bad_row = OnBadRow::Skip;
    let p = plan(
        vec![ds],
        TrainData::Dataset(data_ref("m")),
        Head::CausalLm,
        1,
        64,
        Length::Steps(1),
    );
    let mut tok = word_tokenizer(&["hi yo user assistant"], true);
    tok.chat_template = Some(format!(
        "{{% if messages[0].role != 'user' %}}{{{{ raise_exception('the first turn must be the user') }}}}{{% endif %}}{CHATML}"
    ));
    let data = build(&p, tok).unwrap();
    let rep = &data.report().datasets[0];
    assert_eq!(rep.skipped["chat template refused the row"], 1);
    assert_eq!(rep.bad_rows[0].line, 2);
    assert!(rep.bad_rows[0]
        .reason
        .contains("first turn must be the user"));
    assert_eq!(rep.splits[0].examples, 1);
}

/// `ft data` lists the first examples of a split the way this does (owned
/// examples decoded from the store, kept past the split they came from):
/// they are the rows in file order, with their file, line and tokens.
#[test]
fn the_first_examples_of_a_split_come_back_in_file_order_with_their_rows() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "d.jsonl", ROWS);
    let ds = jsonl_ds("d", &f, completion_fields("Q : {q} A :", " {a}"));
    let p = plan(
        vec![ds],
        TrainData::Dataset(data_ref("d")),
        Head::CausalLm,
        4,
        64,
        Length::Steps(1),
    );
    let data = build(&p, word_tokenizer(&vocab_texts(), false)).unwrap();
    let mut shown = Vec::new();
    for d in &data.report().datasets {
        let train = data.dataset(&d.name).unwrap().split("train").unwrap();
        for ex in train.examples.iter().take(3) {
            shown.push((d.name.clone(), ex));
        }
    }
    let listed: Vec<serde_json::Value> = shown
        .iter()
        .map(|(name, ex)| {
            serde_json::json!({
                "dataset": name,
                "file": ex.file,
                "line": ex.line,
                "input_ids": ex.tokens.seq.ids,
                "q": ex.row["q"],
            })
        })
        .collect();
    assert_eq!(listed.len(), 3);
    for (k, (v, q)) in listed
        .iter()
        .zip(["what is up", "who are you", "where is it"])
        .enumerate()
    {
        assert_eq!(v["line"], k + 1);
        assert_eq!(v["q"], q);
        assert_eq!(v["file"], f.to_str().unwrap());
        let ids: Vec<u32> = serde_json::from_value(v["input_ids"].clone()).unwrap();
        let t = data.tokenizer();
        assert!(t.decode(&ids).contains(q), "{}", t.decode(&ids));
    }
    assert_eq!(
        data.dataset("d").unwrap().splits[0].examples.get(4),
        None,
        "four rows, four examples"
    );
    assert!(data.dataset("d").unwrap().splits[0]
        .examples
        .get(3)
        .is_some());
}
