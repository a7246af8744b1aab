//! Unit tests: each construct and each comment position, with the exact
//! expected text. Every expectation is also checked to be a fixed point.

use super::{format, FormatError};

/// Formats `input`, compares with `expected`, and checks that `expected`
/// formats to itself.
#[track_caller]
fn check(input: &str, expected: &str) {
    let got = format(input).unwrap_or_else(|e| panic!("{e}: {:#?}", e.diagnostics));
    assert_eq!(
        got, expected,
        "\n--- got ---\n{got}--- expected ---\n{expected}"
    );
    let again = format(expected).expect("expected text parses");
    assert_eq!(again, expected, "expected text is not a fixed point");
}

// ── items and spacing ────────────────────────────────────────────────────

#[test]
fn let_and_import_spacing() {
    check("let   x=1\n", "let x = 1\n");
    check("import   \"common.ft\"\n", "import \"common.ft\"\n");
    check("import \"a.ft\"\n", "import \"a.ft\"\n");
}

#[test]
fn one_blank_line_between_items() {
    check(
        "model m = hf(\"x\")\ntrain { epochs = 1 }\n\n\n\nevaluate { on = test }",
        "model m = hf(\"x\")\n\ntrain { epochs = 1 }\n\nevaluate { on = test }\n",
    );
}

#[test]
fn runs_of_lets_and_imports_keep_their_blank_lines() {
    check(
        "import \"a.ft\"\nimport \"b.ft\"\n\n\nimport \"c.ft\"\nlet a = 1\nlet b = 2\n\nlet c = 3\ntrain {}\n",
        "import \"a.ft\"\nimport \"b.ft\"\n\nimport \"c.ft\"\n\nlet a = 1\nlet b = 2\n\nlet c = 3\n\ntrain {}\n",
    );
}

#[test]
fn empty_and_comment_only_files() {
    check("", "");
    check("\n\n  \n", "");
    check(
        "# just a note   \n\n\n# another\n",
        "# just a note\n\n# another\n",
    );
}

#[test]
fn crlf_input_gives_lf_output() {
    check(
        "# note\r\ntrain {\r\n  epochs = 3 # three\r\n}\r\n",
        "# note\ntrain {\n  epochs = 3  # three\n}\n",
    );
}

#[test]
fn block_without_body_and_with_empty_body() {
    check(
        "model   base=gguf( \"m.gguf\" )\n",
        "model base = gguf(\"m.gguf\")\n",
    );
    check("train {\n\n}\n", "train {}\n");
    check("peft full{}\n", "peft full {}\n");
}

// ── bodies and alignment ─────────────────────────────────────────────────

#[test]
fn multi_line_body_aligns_consecutive_assignments() {
    check(
        "train {\n  epochs=3\n  batch    = 16\n  optimizer = adamw(lr = 2e-4)\n}\n",
        "train {\n  epochs    = 3\n  batch     = 16\n  optimizer = adamw(lr = 2e-4)\n}\n",
    );
}

#[test]
fn blank_lines_sub_blocks_and_axes_end_alignment_groups() {
    check(
        "sweep {\n  a = 1\n  long_key = 2\n\n\n  b = 3\n  train.lr in [1, 2]\n  cc = 4\n}\n",
        "sweep {\n  a        = 1\n  long_key = 2\n\n  b = 3\n  train.lr in [1, 2]\n  cc = 4\n}\n",
    );
    check(
        "curriculum {\n  order = x ascending\n  stage s { data = d }\n  pacing = linear()\n}\n",
        "curriculum {\n  order = x ascending\n  stage s { data = d }\n  pacing = linear()\n}\n",
    );
}

#[test]
fn own_line_comments_do_not_end_alignment_groups() {
    check(
        "train {\n  a = 1\n  # why\n  bbb = 2\n}\n",
        "train {\n  a   = 1\n  # why\n  bbb = 2\n}\n",
    );
}

#[test]
fn multi_line_values_end_alignment_groups_but_long_strings_do_not() {
    let long = "x".repeat(90);
    check(
        &format!("dataset d {{\n  a = 1\n  list = [\"{long}\", 2]\n  bb = 2\n}}\n"),
        &format!("dataset d {{\n  a = 1\n  list = [\n    \"{long}\",\n    2,\n  ]\n  bb = 2\n}}\n"),
    );
    check(
        "dataset d {\n  prompt = \"\"\"\nHi {x}\n\"\"\"\n  completion = \"{y}\"\n}\n",
        "dataset d {\n  prompt     = \"\"\"\nHi {x}\n\"\"\"\n  completion = \"{y}\"\n}\n",
    );
}

#[test]
fn one_line_body_kept_when_written_on_one_line() {
    check(
        "evaluate {on=test,metrics=[accuracy,f1]}\n",
        "evaluate { on = test, metrics = [accuracy, f1] }\n",
    );
    // A line break after `{` asks for one entry per line; commas go.
    check(
        "evaluate {\n on = test, metrics = [accuracy, f1] }\n",
        "evaluate {\n  on      = test\n  metrics = [accuracy, f1]\n}\n",
    );
    // A break later in the body does not matter.
    check(
        "mixture tasks { faq = 3,\n papers = 1 }\n",
        "mixture tasks { faq = 3, papers = 1 }\n",
    );
}

#[test]
fn one_line_body_expands_past_80_columns_or_with_sub_blocks() {
    check(
        "train { batch = 4, max_len = 512, optimizer = adamw(lr = 3e-4), schedule = cosine() }\n",
        "train {\n  batch     = 4\n  max_len   = 512\n  optimizer = adamw(lr = 3e-4)\n  schedule  = cosine()\n}\n",
    );
    check(
        "curriculum { order = x ascending, stage a { epochs = 1 } }\n",
        "curriculum {\n  order = x ascending\n  stage a { epochs = 1 }\n}\n",
    );
}

#[test]
fn nested_sub_blocks_indent_by_two() {
    check(
        "curriculum {\nstage short {\ndata = tasks where tokens(prompt) < 128\nepochs = 1\n}\n}\n",
        "curriculum {\n  stage short {\n    data   = tasks where tokens(prompt) < 128\n    epochs = 1\n  }\n}\n",
    );
}

// ── expressions ──────────────────────────────────────────────────────────

#[test]
fn lists_records_and_calls_on_one_line_when_they_fit() {
    check(
        "let a = [ 1 ,2,3, ]\nlet r = {x=1,y=2}\nlet c = f( 1 , n = 2 , )\nlet e = [ ]\nlet o = { }\nlet z = g( )\n",
        "let a = [1, 2, 3]\nlet r = { x = 1, y = 2 }\nlet c = f(1, n = 2)\nlet e = []\nlet o = {}\nlet z = g()\n",
    );
}

#[test]
fn long_lists_break_one_element_per_line_with_trailing_commas() {
    let names: Vec<String> = (0..14).map(|i| format!("module_{i:02}")).collect();
    let input = format!("peft lora {{\n  targets = [{}]\n}}\n", names.join(", "));
    let mut expected = String::from("peft lora {\n  targets = [\n");
    for n in &names {
        expected.push_str(&format!("    {n},\n"));
    }
    expected.push_str("  ]\n}\n");
    check(&input, &expected);
}

#[test]
fn breaking_is_greedy_outermost_first() {
    let s = "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"";
    check(
        &format!("let x = f([{s}, {s}], g(1, 2))\n"),
        &format!("let x = f(\n  [{s}, {s}],\n  g(1, 2),\n)\n"),
    );
}

#[test]
fn broken_calls_and_records_align_named_arguments() {
    let p = "\"data/a-rather-long-path/to/the/training/split/of/the/corpus.jsonl\"";
    check(
        &format!("dataset d = splits(train = jsonl({p}), validation = jsonl({p})) {{ input = \"{{x}}\" }}\n"),
        &format!(
            "dataset d = splits(\n  train      = jsonl({p}),\n  validation = jsonl({p}),\n) {{ input = \"{{x}}\" }}\n"
        ),
    );
    check(
        "let r = {\n # c\n a = 1, bbb = 2 }\n",
        "let r = {\n  # c\n  a   = 1,\n  bbb = 2,\n}\n",
    );
}

#[test]
fn strings_and_numbers_are_copied_as_written() {
    check(
        "let s = \"a \\\"quoted\\\" \\{x\\} \\n tab\\t\"\nlet n = [1_000, 2E-4, 80%, 0.50, 3e+2]\n",
        "let s = \"a \\\"quoted\\\" \\{x\\} \\n tab\\t\"\nlet n = [1_000, 2E-4, 80%, 0.50, 3e+2]\n",
    );
    check(
        "let p = \"\"\"\n  Indented {x}\n\ttab   \n\"\"\"\n",
        "let p = \"\"\"\n  Indented {x}\n\ttab   \n\"\"\"\n",
    );
}

#[test]
fn operators_get_single_spaces_and_parentheses_stay() {
    check(
        "let a = (x+y)*z-  -1\nlet b = not a  and b!=c or d<=e\nlet c = ( ( 1 ) )\n",
        "let a = (x + y) * z - -1\nlet b = not a and b != c or d <= e\nlet c = ((1))\n",
    );
}

#[test]
fn if_where_from_and_ordering() {
    check(
        "dataset d = jsonl(\"x\") {\n  label = if score>0 then \"pos\" else \"neg\"\n  filter = rows where tokens(text)<128\n  shots = 2   from train\n}\ncurriculum { order = len(x)   descending }\n",
        "dataset d = jsonl(\"x\") {\n  label  = if score > 0 then \"pos\" else \"neg\"\n  filter = rows where tokens(text) < 128\n  shots  = 2 from train\n}\n\ncurriculum { order = len(x) descending }\n",
    );
}

#[test]
fn chat_pairs_and_sweep_axes() {
    check(
        "dataset d { prompt = chat([system:\"s\",user :  \"{q}\"]) }\nsweep {\n  train.optimizer.lr   in [1e-4,3e-4]\n  pick=min(val.loss)\n}\n",
        "dataset d { prompt = chat([system: \"s\", user: \"{q}\"]) }\n\nsweep {\n  train.optimizer.lr in [1e-4, 3e-4]\n  pick = min(val.loss)\n}\n",
    );
}

#[test]
fn list_inside_operators_breaks_when_the_row_does_not_fit() {
    let names: Vec<String> = (0..12).map(|i| format!("name_{i:02}")).collect();
    check(
        &format!("let x = rows where label == [{}]\n", names.join(", ")),
        &format!(
            "let x = rows where label == [\n{}]\n",
            names
                .iter()
                .map(|n| format!("  {n},\n"))
                .collect::<String>()
        ),
    );
}

// ── comments ─────────────────────────────────────────────────────────────

#[test]
fn comments_before_between_and_after_items() {
    check(
        "# header\n\n# about the model\nmodel m = hf(\"x\") # trailing item\n# before train\n\ntrain { epochs = 1 }\n\n\n# end of file\n",
        "# header\n\n# about the model\nmodel m = hf(\"x\")  # trailing item\n\n# before train\n\ntrain { epochs = 1 }\n\n# end of file\n",
    );
    check(
        "train { epochs = 1 }\n# right after\n",
        "train { epochs = 1 }\n# right after\n",
    );
}

#[test]
fn comments_inside_bodies() {
    check(
        "train { # on the brace line\n  # leading\n  epochs = 3 # trailing\n\n  batch = 4,   # after a comma\n  # dangling\n}\n",
        "train {  # on the brace line\n  # leading\n  epochs = 3  # trailing\n\n  batch = 4  # after a comma\n  # dangling\n}\n",
    );
    // A comment makes a one-line body multi-line.
    check(
        "evaluate { on = test } # fine\npeft lora { rank = 8 # r\n}\n",
        "evaluate { on = test }  # fine\n\npeft lora {\n  rank = 8  # r\n}\n",
    );
    check(
        "train {\n  # only a comment\n}\n",
        "train {\n  # only a comment\n}\n",
    );
}

#[test]
fn comments_inside_multi_line_lists() {
    check(
        "peft lora {\n  targets = [ # modules\n    query, # q\n    # the value projection\n    value\n    # more later\n  ]\n}\n",
        "peft lora {\n  targets = [  # modules\n    query,  # q\n    # the value projection\n    value,\n    # more later\n  ]\n}\n",
    );
    // Even a short list with a comment is multi-line.
    check(
        "let x = [1, # one\n 2]\n",
        "let x = [\n  1,  # one\n  2,\n]\n",
    );
}

#[test]
fn comments_inside_records_and_calls() {
    check(
        "let r = { a = 1 # first\n b = 2 }\nlet c = f(1, # one\n n = 2)\nlet d = g # before the paren\n  (1)\n",
        "let r = {\n  a = 1,  # first\n  b = 2,\n}\nlet c = f(\n  1,  # one\n  n = 2,\n)\nlet d = g(  # before the paren\n  1,\n)\n",
    );
}

#[test]
fn comments_inside_an_element_move_before_it() {
    check(
        "train {\n  lr = # why this value\n    3e-4\n  epochs = 1\n}\n",
        "train {\n  # why this value\n  lr     = 3e-4\n  epochs = 1\n}\n",
    );
    check(
        "model m # the encoder\n  = hf(\"x\") # trailing\n",
        "# the encoder\nmodel m = hf(\"x\")  # trailing\n",
    );
    check(
        "let x = [\n  1 + # inside\n  2, 3]\n",
        "let x = [\n  # inside\n  1 + 2,\n  3,\n]\n",
    );
}

#[test]
fn a_comment_between_header_and_brace_goes_after_the_brace() {
    check(
        "model m = hf(\"x\") # local folder\n{\n  head = causal_lm()\n}\n",
        "model m = hf(\"x\") {  # local folder\n  head = causal_lm()\n}\n",
    );
    check(
        "train # note\n{ epochs = 1 }\npeft lora\n# own line\n{}\n",
        "train {  # note\n  epochs = 1\n}\n\npeft lora {\n  # own line\n}\n",
    );
}

#[test]
fn comments_in_parentheses_and_block_names_move_before_the_item() {
    check(
        "let x = (1 + # one\n  2) * 3\n",
        "# one\nlet x = (1 + 2) * 3\n",
    );
    check(
        "curriculum {\n  stage # the first\n    short { epochs = 1 }\n}\n",
        "curriculum {\n  # the first\n  stage short { epochs = 1 }\n}\n",
    );
}

#[test]
fn stray_comments_go_after_leading_ones() {
    check(
        "train {\n  # lead\n\n  lr = # stray\n    1\n}\n",
        "train {\n  # lead\n\n  # stray\n  lr = 1\n}\n",
    );
}

#[test]
fn comment_text_is_kept_verbatim_but_trailing_blanks_go() {
    check(
        "#no space\t  \n#   indented text\nlet x = 1 #x\n",
        "#no space\n#   indented text\nlet x = 1  #x\n",
    );
}

#[test]
fn bare_blocks() {
    check(
        "model m = hf(\"x\")\ntrain\n",
        "model m = hf(\"x\")\n\ntrain\n",
    );
}

#[test]
fn deep_nesting_is_printed() {
    let depth = 40;
    let input = format!("let x = {}1{}\n", "[".repeat(depth), "]".repeat(depth));
    check(&input, &input);
}

// ── errors ───────────────────────────────────────────────────────────────

#[test]
fn syntax_errors_refuse_to_format() {
    let e: FormatError =
        format("train {\n  epochs = = 3\n}\nevaluate { on = test }\n").unwrap_err();
    assert_eq!(e.diagnostics.len(), 1);
    assert_eq!(e.diagnostics[0].code.id, "FT0001");
    assert!(e.to_string().contains("1 syntax error"), "{e}");
    let e = format("let x = \"open\nlet y = [1,\n").unwrap_err();
    assert_eq!(e.diagnostics.len(), 2);
    assert!(e.to_string().contains("2 syntax errors"), "{e}");
}
