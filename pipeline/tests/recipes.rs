//! End to end: the real recipes in recipes/, lowered by the compiler, give
//! a data pipeline on the real files and tokenizers.

mod common;
use ft_compiler::driver::{self, Options};
use ft_pipeline::{BatchData, BuildOptions, DataPipeline, TextTokenizer};
use ft_plan::Plan;

fn lower(name: &str) -> Plan {
    let path = common::repo_root().join("recipes").join(name);
    let a = driver::analyze_path(&path, Options::default());
    assert!(!a.has_errors(), "{name}: {:#?}", a.diagnostics);
    ft_compiler::plan::lower(&a).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn pipeline(name: &str) -> DataPipeline {
    let plan = lower(name);
    let tok = TextTokenizer::load(&plan.model).unwrap();
    DataPipeline::build(&plan, tok, &BuildOptions::default())
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn sentiment_minilm() {
    let data = pipeline("sentiment-minilm.ft");
    let rep = &data.report().datasets[0];
    assert_eq!(rep.sources[0].rows_read, 10_605);
    let n: Vec<usize> = rep.splits.iter().map(|s| s.examples).collect();
    assert_eq!(n.iter().sum::<usize>(), 10_605);
    let mut s = data.train_sampler().unwrap();
    // 3 epochs of ⌈8484 / 16⌉ steps.
    assert_eq!(s.total_steps(), (3.0f64 * 8484.0 / 16.0).ceil() as u64);
    let b = s.next().unwrap();
    assert_eq!(b.data.main().class_labels.len(), 16);
}

#[test]
fn faq_smollm2() {
    let data = pipeline("faq-smollm2.ft");
    let rep = &data.report().datasets[0];
    assert!(
        !rep.skipped.is_empty(),
        "trivia.yml's bad conversation is counted"
    );
    let mut s = data.train_sampler().unwrap();
    assert_eq!(s.total_steps(), 300);
    let b = s.next().unwrap();
    assert_eq!(b.data.main().batch, 8);
    assert!(data.eval_batches("val", 8).unwrap().len() > 10);
}

#[test]
fn dpo_smollm2() {
    let data = pipeline("dpo-smollm2.ft");
    let b = data.train_sampler().unwrap().next().unwrap();
    assert!(matches!(b.data, BatchData::Pair(_)));
}

#[test]
fn multitask_curriculum() {
    let data = pipeline("multitask-curriculum.ft");
    let stages = &data.report().stages;
    assert_eq!(
        stages.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["short", "all"]
    );
    // Stage `short` keeps prompts under 128 tokens: some aclsum prompts
    // (with their shot) are longer and are filtered, counted.
    assert!(stages[0].filtered > 0);
    let tasks: Vec<&str> = stages[1].tasks.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(tasks, ["faq", "papers"]);
    // Every aclsum prompt (abstract and a worked example) has 128 tokens or
    // more: `papers` sits stage `short` out, shown with 0 examples.
    assert_eq!(stages[0].tasks[1], ("papers".to_owned(), 0));
    assert!(stages[0].tasks[0].1 > 2000);
    let batches: Vec<_> = data.train_sampler().unwrap().collect();
    let short = stages[0].steps as usize;
    assert_eq!(batches.len() as u64, stages[0].steps + stages[1].steps);
    // Stage `all` runs at lr = base_lr / 3.
    assert!((batches[short].lr.unwrap() - 1e-4).abs() < 1e-12);
    let papers = data
        .plan()
        .datasets
        .iter()
        .position(|d| d.name == "papers")
        .unwrap() as u16;
    for b in &batches[..short] {
        assert!(!b.data.main().tasks.contains(&papers));
    }
    assert!(batches[short..]
        .iter()
        .any(|b| b.data.main().tasks.contains(&papers)));
    print!("{}", data.report().to_text());
}
