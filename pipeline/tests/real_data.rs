//! The real data sets with the real tokenizers (fetched by
//! `scripts/fetch-assets.sh`; these tests fail, never skip, without them):
//! movie snippets for MiniLM classification, chatterbot FAQ pairs and
//! aclsum summaries for SmolLM2, with SmolLM2's own chat template.

mod common;
use common::*;
use ft_data::render::Fields;
use ft_data::split::SplitKey;
use ft_data::Format;
use ft_pipeline::{render_example, BatchData, DataPipeline, IGNORE};
use ft_plan::*;

fn movies_plan() -> Plan {
    let mut source = src(Format::Tsv, asset("data/movie_snippets.tsv"));
    source.columns = Some(vec!["id".into(), "score".into(), "text".into()]);
    let mut ds = dataset(
        "reviews",
        source,
        Fields {
            input: text("{text}"),
            label: sign_label("score"),
            ..Fields::default()
        },
    );
    ds.split = split(&[("train", 0.8), ("val", 0.1), ("test", 0.1)], 42);
    ds.stratify = Some(Stratify::Label);
    let head = Head::Classify {
        labels: vec!["negative".into(), "positive".into()],
    };
    plan(
        vec![ds],
        TrainData::Dataset(data_ref("reviews")),
        head,
        16,
        128,
        Length::Epochs(1.0),
    )
}

#[test]
fn movie_snippets_with_minilm_stratified_and_batched() {
    let data = build(&movies_plan(), minilm()).unwrap();
    let rep = &data.report().datasets[0];
    assert_eq!(rep.sources[0].rows_read, 10_605);
    assert!(rep.skipped.is_empty(), "{:?}", rep.skipped);
    let b = data.dataset("reviews").unwrap();
    let count = |split: &str, label: usize| {
        b.split(split)
            .unwrap()
            .examples
            .iter()
            .filter(|e| e.tokens.class_label == Some(label))
            .count() as f64
    };
    // 5,242 scores > 0 are positive; 5,326 < 0 and 37 = 0 are negative.
    for (split, frac) in [("train", 0.8), ("val", 0.1), ("test", 0.1)] {
        assert!(
            (count(split, 1) - 5242.0 * frac).abs() <= 1.0,
            "{split} positive"
        );
        assert!(
            (count(split, 0) - 5363.0 * frac).abs() <= 1.0,
            "{split} negative"
        );
    }
    // BERT inputs: [CLS] … [SEP], no trained tokens (the loss is on the label).
    let ex = &b.splits[0].examples.get(0).unwrap();
    assert_eq!(ex.tokens.seq.ids.first(), Some(&101));
    assert_eq!(ex.tokens.seq.ids.last(), Some(&102));
    let mut sampler = data.train_sampler().unwrap();
    assert_eq!(sampler.total_steps(), (8484f64 / 16.0).ceil() as u64);
    let BatchData::Single(batch) = sampler.next().unwrap().data else {
        panic!()
    };
    assert_eq!(batch.batch, 16);
    assert!(batch.seq <= 128);
    assert_eq!(batch.class_labels.len(), 16);
    assert!(batch.labels.is_empty());
    // Truncated examples keep [SEP] last.
    let split = &data.report().datasets[0].splits[0];
    assert_eq!(
        split.examples, 8484,
        "every train example kept (truncated, not dropped)"
    );
}

fn faq_dataset(fields: Fields) -> DatasetPlan {
    let mut ds = dataset(
        "faq",
        src(Format::YamlPairs, asset("data/chatterbot/*.yml")),
        fields,
    );
    ds.split = split(&[("train", 0.9), ("val", 0.1)], 7);
    ds.on_bad_row = OnBadRow::Skip;
    ds
}

#[test]
fn chatterbot_with_smollm2_chat_prompts_train_the_answer_and_im_end() {
    let fields = Fields {
        prompt: chat(&[
            ("system", "You are a helpful assistant."),
            ("user", "{question}"),
        ]),
        completion: text("{answer}"),
        ..Fields::default()
    };
    let p = plan(
        vec![faq_dataset(fields)],
        TrainData::Dataset(data_ref("faq")),
        Head::CausalLm,
        8,
        256,
        Length::Steps(300),
    );
    let data = build(&p, smollm2()).unwrap();
    let rep = &data.report().datasets[0];
    // trivia.yml's conversation without a dash is counted, not lost.
    assert_eq!(rep.skipped.values().sum::<usize>(), rep.bad_rows.len());
    assert!(!rep.skipped.is_empty(), "{:?}", rep.skipped);
    let tok = data.tokenizer();
    assert_eq!(tok.eos_token.as_deref(), Some("<|im_end|>"));
    let b = data.dataset("faq").unwrap();
    let total: usize = b.splits.iter().map(|s| s.examples.len()).sum();
    assert!(total > 2300, "{total}");
    let ex = &b.splits[0].examples.get(0).unwrap();
    let s = &ex.tokens.seq;
    let prompt = tok.decode(&s.ids[..s.prompt_len]);
    assert!(
        prompt.starts_with(
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
        ),
        "{prompt}"
    );
    assert!(
        prompt.ends_with("<|im_end|>\n<|im_start|>assistant\n"),
        "{prompt}"
    );
    let trained: Vec<u32> = s
        .ids
        .iter()
        .zip(&s.trained)
        .filter(|(_, &t)| t)
        .map(|(&i, _)| i)
        .collect();
    assert_eq!(
        tok.decode(&trained),
        format!("{}<|im_end|>", ex.row["answer"].as_str().unwrap())
    );
    assert_eq!(*s.ids.last().unwrap(), tok.eos_id.unwrap());
    // The first batches: labels only on trained positions.
    for batch in data.train_sampler().unwrap().take(3) {
        let b = batch.data.main();
        for i in 0..b.batch * b.seq {
            if b.labels[i] != IGNORE {
                assert_eq!(b.labels[i], b.input_ids[i] as i64);
                assert_eq!(b.attention_mask[i], 1);
            }
        }
    }
}

#[test]
fn smollm2_template_masks_every_assistant_turn_of_a_conversation() {
    let fields = Fields {
        messages: chat(&[
            ("user", "{question}"),
            ("assistant", "{answer}"),
            ("user", "And?"),
            ("assistant", "That is all."),
        ]),
        ..Fields::default()
    };
    let p = plan(
        vec![faq_dataset(fields)],
        TrainData::Dataset(data_ref("faq")),
        Head::CausalLm,
        8,
        256,
        Length::Steps(1),
    );
    let data = build(&p, smollm2()).unwrap();
    let ex = &data.dataset("faq").unwrap().splits[0]
        .examples
        .get(0)
        .unwrap();
    let shown = render_example(data.tokenizer(), &ex.tokens.seq, false);
    let answer = ex.row["answer"].as_str().unwrap();
    // SmolLM2's template adds its default system prompt; only the two
    // assistant turns and their <|im_end|> are trained.
    assert!(
        shown.starts_with("<|im_start|>system\nYou are a helpful AI assistant named SmolLM"),
        "{shown}"
    );
    let expected_tail = format!("<|im_start|>assistant\n[[{answer}<|im_end|>]]\n<|im_start|>user\nAnd?<|im_end|>\n<|im_start|>assistant\n[[That is all.<|im_end|>]]\n");
    assert!(shown.ends_with(&expected_tail), "{shown}");
    assert_eq!(shown.matches("[[").count(), 2);
}

fn aclsum_plan() -> Plan {
    let spec = |f: &str| src(Format::Jsonl, asset(&format!("data/aclsum/{f}.jsonl")));
    let mut ds = dataset(
        "papers",
        spec("train"),
        completion_fields(
            "Summarize the approach of \"{title}\":\n{sentences.abstract}\nApproach:\n",
            "{summary.approach}",
        ),
    );
    ds.source = DataSource::PerSplit(vec![
        ("train".into(), spec("train")),
        ("val".into(), spec("val")),
        ("test".into(), spec("test")),
    ]);
    ds.shots = Some(Shots {
        count: 1,
        split: "train".into(),
    });
    ds.truncate = Truncate::Drop;
    plan(
        vec![ds],
        TrainData::Dataset(data_ref("papers")),
        Head::CausalLm,
        4,
        512,
        Length::Epochs(1.0),
    )
}

#[test]
fn aclsum_with_a_shot_and_drop_counts_every_row() {
    let data = build(&aclsum_plan(), smollm2()).unwrap();
    let rep = &data.report().datasets[0];
    let read: Vec<usize> = rep.sources.iter().map(|s| s.rows_read).collect();
    assert_eq!(read, vec![100, 50, 100]);
    for s in &rep.splits {
        let rows = if s.name == "val" { 50 } else { 100 };
        assert_eq!(
            s.examples + s.dropped_too_long,
            rows,
            "{}: nothing lost silently",
            s.name
        );
        assert!(s.examples > 0);
    }
    let b = data.dataset("papers").unwrap();
    let ex = &b.split("test").unwrap().examples.get(0).unwrap();
    let prompt = data
        .tokenizer()
        .decode(&ex.tokens.seq.ids[..ex.tokens.seq.prompt_len]);
    assert_eq!(
        prompt.matches("Summarize the approach of").count(),
        2,
        "one shot + the row"
    );
    assert!(prompt.contains(ex.row["title"].as_str().unwrap()));
    let evals = data.eval_examples("test").unwrap();
    assert_eq!(evals.len(), rep.splits[2].examples);
    assert_eq!(
        evals[0].reference.as_deref(),
        ex.row["summary"]["approach"].as_str()
    );
}

#[test]
fn preference_pairs_for_dpo_with_smollm2() {
    let mut ds = dataset(
        "prefs",
        src(
            Format::Jsonl,
            repo_root().join("recipes/data/preferences.jsonl"),
        ),
        Fields {
            prompt: chat(&[("user", "{prompt}")]),
            chosen: text("{chosen}"),
            rejected: text("{rejected}"),
            ..Fields::default()
        },
    );
    let mut s = split(&[("train", 0.9), ("val", 0.1)], 1).unwrap();
    s.key = SplitKey::Content;
    ds.split = Some(s);
    let mut p = plan(
        vec![ds],
        TrainData::Dataset(data_ref("prefs")),
        Head::CausalLm,
        4,
        192,
        Length::Steps(100),
    );
    p.train.objective = Objective::Dpo {
        beta: 0.1,
        reference: None,
    };
    let data = build(&p, smollm2()).unwrap();
    let BatchData::Pair(pair) = data.train_sampler().unwrap().next().unwrap().data else {
        panic!()
    };
    assert_eq!(pair.chosen.batch, 4);
    assert_eq!(pair.chosen.example_ids, pair.rejected.example_ids);
    assert!(matches!(
        data.eval_batches("val", 8).unwrap()[0],
        BatchData::Pair(_)
    ));
}

#[test]
fn the_data_report_prints_sources_splits_and_stages() {
    let data: DataPipeline = build(&aclsum_plan(), smollm2()).unwrap();
    let text = data.report().to_text();
    assert!(text.contains("dataset papers"), "{text}");
    assert!(text.contains("split test"), "{text}");
    assert!(text.contains("stage train"), "{text}");
    print!("{text}");
}
