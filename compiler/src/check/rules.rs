//! Rules between blocks: what a recipe must declare, what its splits,
//! mixtures and curriculum must satisfy, and which combinations of head,
//! objective, data and metrics make sense.

use super::blocks::CBlock;
use super::schema;
use super::value::{Val, V};
use super::Recipe;
use crate::diagnostics::{suggest, Diagnostic};
use crate::syntax::ast::{Expr, ExprKind, Span};

crate::declare_codes! {
    /// The recipe lacks a block it needs.
    ///
    /// Every recipe declares a `model` and at least one `dataset` (here or
    /// in an imported recipe). Other blocks have defaults.
    MISSING_BLOCK = "FT0106", "missing block";

    /// A stratify field is not something the dataset declares.
    ///
    /// `stratify = label` needs a `label` key in the dataset; otherwise name
    /// a field of the data (checked against the file's header).
    STRATIFY_UNDECLARED = "FT0402", "stratify on an undeclared label";

    /// A mixture weight is zero or negative.
    ///
    /// Weights are relative sampling rates; a task with weight 0 would never
    /// be drawn. Remove the task instead.
    BAD_WEIGHT = "FT0403", "mixture weight not positive";

    /// A curriculum stage has no data, or the curriculum has no stages.
    ///
    /// Each `stage name { data = …, epochs = … }` says what it trains on.
    STAGE_NO_DATA = "FT0404", "curriculum stage without data";

    /// A stage's (or training's) length is missing or given twice.
    ///
    /// Give either `epochs` or `steps`, not both.
    LENGTH = "FT0405", "length missing or ambiguous";

    /// Few-shot examples are drawn from a split that would leak or does not
    /// exist.
    ///
    /// `shots = 2 from train` draws examples from the training split. Drawing
    /// from `test` would leak test answers into prompts, and the split named
    /// must be declared by the dataset's `split`.
    BAD_SHOTS = "FT0406", "invalid few-shot source";

    /// A dataset gives the model nothing to learn from.
    ///
    /// A dataset needs `prompt` + `completion` (causal LM), `messages`
    /// (chat), `input` + `label` (classification), or `prompt` + `chosen` +
    /// `rejected` (preference tuning); for PPO, which generates its own
    /// responses, a `prompt` is enough.
    NOTHING_TO_LEARN = "FT0407", "dataset with nothing to learn";

    /// Early stopping or a sweep would choose on the test split, or on a
    /// split no dataset has.
    ///
    /// Choices (early stopping, sweep winners) are made on `val`, so that
    /// the test score stays an honest estimate. Add a `val` share to the
    /// dataset's split.
    CHOOSES_ON_TEST = "FT0408", "choice made on the wrong split";

    /// A split is used (for evaluation or a metric) that no dataset has.
    ///
    /// Declare it in a dataset's `split = { … }`.
    SPLIT_MISSING = "FT0409", "split not declared";

    /// A curriculum pacing starts at 0%, or becomes complete at 0%.
    ///
    /// `start` is the share of the (ordered) data available at the first
    /// step and must be above 0; `full_at` must be above 0.
    BAD_PACING = "FT0410", "invalid pacing";

    /// A mixture has a single task.
    ///
    /// A one-task mixture samples exactly like its dataset; name the dataset
    /// directly.
    SINGLE_TASK_MIXTURE = "FT0411", "mixture with one task";

    /// The data does not fit the model's head.
    ///
    /// A `classify` head learns from `input` + `label`; a `causal_lm` head
    /// from `prompt` + `completion` or `messages`. A completion template with
    /// a classification head (or a label with a language-model head) is
    /// almost certainly a mistake.
    HEAD_MISMATCH = "FT0501", "data does not fit the head";

    /// The objective does not fit the head or the data.
    ///
    /// `classify` needs a `classify` head; `sft` and `dpo` need `causal_lm`;
    /// `dpo` needs `chosen` and `rejected` in the data, and its `reference`
    /// (when named) is a causal LM with the policy's tokenizer; `ppo` needs a reward
    /// model with a `classify` head, and with `kl_target` (which scales the
    /// KL coefficient up or down from `kl` each step) a `kl` above 0.
    OBJECTIVE_MISMATCH = "FT0502", "objective does not fit";

    /// A metric does not apply to this kind of model.
    ///
    /// `accuracy` and `f1` compare labels (classification); `perplexity`,
    /// `exact_match` and `rouge_l` need generated text (causal LM); `margin`
    /// needs a preference objective.
    METRIC_MISMATCH = "FT0503", "metric does not apply";

    /// A derived label can never be one of the head's labels.
    ///
    /// `label = if score > 0 then "positiv" else "negative"` with labels
    /// `["negative", "positive"]`: the misspelt branch would make every
    /// positive row a bad row.
    LABEL_NOT_IN_HEAD = "FT0504", "label not among the head's labels";

    /// A sweep axis names a setting that does not exist.
    ///
    /// Axes are dotted paths into the recipe: `train.optimizer.lr`,
    /// `train.batch`, `peft.rank`, `peft.dropout`, or `peft` itself with a
    /// list of methods.
    BAD_AXIS = "FT0505", "invalid sweep axis";

    /// Several models are declared and `train.model` does not say which one
    /// is trained.
    ///
    /// Add `model = name` to the `train` block.
    WHICH_MODEL = "FT0506", "which model to train";

    /// Packing is requested where it does not apply: a classification
    /// head, or a DPO or PPO objective.
    ///
    /// Packing lays several short examples into one row for supervised
    /// language-model training (`objective = sft`), each attending only to
    /// itself. A classifier pools one sequence per row, DPO compares a
    /// chosen and a rejected row of the same prompt, and PPO generates its
    /// own rows, so none of them can be packed: remove `packing = true`.
    PACKING_UNFIT = "FT0507", "packing does not apply";

    /// `group_by_length = true` where the training data has no shuffled
    /// epoch to group: a mixture (examples are drawn task by task), or a
    /// curriculum with an `order` or a `pacing` (the order is the point).
    ///
    /// Grouping reorders each shuffled epoch of one dataset so that batches
    /// hold examples of similar lengths (less padding, faster steps). With a
    /// mixture or an ordered or paced curriculum it would change what the
    /// recipe asks for, so it is not applied there: remove the key, or
    /// train on one dataset.
    GROUPING_UNUSED = "FT0509", "length grouping does not apply";

    /// The training data to use is ambiguous.
    ///
    /// With several datasets or mixtures and no curriculum, `train.data`
    /// says which one to train on.
    WHICH_DATA = "FT0508", "which data to train on";
}

pub fn check_rules(recipe: &Recipe, diags: &mut Vec<Diagnostic>) {
    required_blocks(recipe, diags);
    datasets(recipe, diags);
    mixtures(recipe, diags);
    curriculum(recipe, diags);
    training(recipe, diags);
    sweep(recipe, diags);
}

fn required_blocks(recipe: &Recipe, diags: &mut Vec<Diagnostic>) {
    let start = Span::new(0, 0);
    // An empty recipe is already reported as such (FT0006).
    let empty = diags
        .iter()
        .any(|d| std::ptr::eq(d.code, &crate::syntax::EMPTY_RECIPE) && d.primary.file == 0);
    for (kw, example) in [
        ("model", "model m = hf(\"models/my-model\")"),
        ("dataset", "dataset d = jsonl(\"data/train.jsonl\") { … }"),
    ] {
        if recipe.all(kw).next().is_none() && !recipe.maybe_broken(kw) && !empty {
            diags.push(
                Diagnostic::error(
                    &MISSING_BLOCK,
                    start,
                    format!("the recipe declares no `{kw}`"),
                )
                .label(format!("a `{kw}` block is needed"))
                .help(format!(
                    "add `{example}`, or import a recipe that declares one"
                )),
            );
        }
    }
    let models: Vec<&CBlock> = recipe.all("model").collect();
    if models.len() > 1 {
        if let Some(t) = recipe.one("train") {
            if !t.has("model") {
                diags.push(
                    Diagnostic::error(
                        &WHICH_MODEL,
                        t.keyword.span,
                        "several models are declared; which one is trained?",
                    )
                    .in_file(t.file)
                    .label("no `model = …` here")
                    .help(format!(
                        "add `model = {}` (declared: {})",
                        models[0].name_str().unwrap_or("name"),
                        models
                            .iter()
                            .filter_map(|m| m.name_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                );
            }
        }
    }
}

/// The head of the trained model: `Some(labels)` for classification;
/// `None` when unknown (no model, or a head that does not check).
pub(crate) fn head(recipe: &Recipe) -> Option<Option<Vec<String>>> {
    let m = recipe.model()?;
    match m.get("head") {
        Some(v) => match v.as_call() {
            Some(("classify", Some(args))) => Some(Some(
                args.get("labels")
                    .and_then(|e| match &e.value.val {
                        Val::List(items) => Some(
                            items
                                .iter()
                                .filter_map(|i| i.as_str().map(String::from))
                                .collect(),
                        ),
                        _ => None,
                    })
                    .unwrap_or_default(),
            )),
            Some(("causal_lm", _)) => Some(None),
            _ => None,
        },
        None if m.has("head") => None,
        None => Some(None),
    }
}

fn objective(recipe: &Recipe) -> Option<String> {
    recipe
        .one("train")?
        .get("objective")?
        .as_call()
        .map(|(n, _)| n.to_string())
}

pub(crate) fn declared_splits(d: &CBlock) -> Vec<String> {
    if let Some(("splits", Some(args))) = d.source.as_ref().and_then(|s| s.as_call()) {
        return args.keys().cloned().collect();
    }
    match d.get("split").map(|v| &v.val) {
        Some(Val::Split(s)) => s
            .parts
            .iter()
            .filter(|p| p.1 > 0.0)
            .map(|p| p.0.clone())
            .collect(),
        _ if d.has("split") => schema::SPLIT_NAMES.iter().map(|s| s.to_string()).collect(),
        _ => vec!["train".into()],
    }
}

fn datasets(recipe: &Recipe, diags: &mut Vec<Diagnostic>) {
    let head = head(recipe);
    let objective = objective(recipe);
    for d in recipe.all("dataset") {
        let name = d.name_str().unwrap_or("?");
        let file = d.file;
        let head_span = d.name.as_ref().map(|n| n.span).unwrap_or(d.keyword.span);
        // Something to learn from.
        // PPO generates its own responses: a prompt is enough.
        let ppo_prompt = objective.as_deref() == Some("ppo") && d.has("prompt");
        let lm = (d.has("prompt") && d.has("completion")) || d.has("messages") || ppo_prompt;
        let cls = d.has("input") && d.has("label");
        let pref = d.has("chosen") && d.has("rejected");
        if !(lm || cls || pref) {
            diags.push(
                Diagnostic::error(&NOTHING_TO_LEARN, head_span, format!("dataset `{name}` gives the model nothing to learn"))
                    .in_file(file)
                    .label("no training target")
                    .help(match &head {
                        Some(Some(_)) => "add `input = \"{text}\"` and `label = …`".to_string(),
                        _ => "add `prompt = \"…\"` and `completion = \"{answer}\"`, or `messages = chat([…])`".to_string(),
                    }),
            );
        }
        // Fit to the head.
        match &head {
            Some(Some(labels)) => {
                if let Some(e) = d.keys.get("completion") {
                    diags.push(
                        Diagnostic::error(&HEAD_MISMATCH, e.key_span, "a completion template with a `classify` head")
                            .in_file(file)
                            .label("a classification head predicts a label, not text")
                            .help("use `input` and `label` for classification, or `head = causal_lm` to generate text"),
                    );
                }
                if let Some(e) = d.keys.get("label") {
                    check_label_values(&e.value, labels, file, diags);
                }
            }
            Some(None) => {
                if let Some(e) = d.keys.get("label") {
                    if !d.has("completion") && objective.as_deref() != Some("ppo") {
                        diags.push(
                            Diagnostic::error(&HEAD_MISMATCH, e.key_span, "a label with a language-model head")
                                .in_file(file)
                                .label("`causal_lm` learns text, not labels")
                                .help("declare `head = classify(labels = […])` on the model, or train on `prompt`/`completion`"),
                        );
                    }
                }
            }
            None => {}
        }
        // Stratify.
        let splits = declared_splits(d);
        if let Some(Val::Split(s)) = d.get("split").map(|v| &v.val) {
            if let Some(st) = &s.stratify {
                if st.name == "label" && !d.has("label") {
                    diags.push(
                        Diagnostic::error(
                            &STRATIFY_UNDECLARED,
                            st.span,
                            "stratify on `label`, but the dataset declares no label",
                        )
                        .in_file(file)
                        .label("no `label = …` in this dataset")
                        .help("add a `label`, or stratify on a field of the data"),
                    );
                }
            }
        }
        // Shots.
        if let Some(v) = d.get("shots") {
            if let Val::Shots { split, .. } = &v.val {
                if split.name == "test" {
                    diags.push(
                        Diagnostic::error(
                            &BAD_SHOTS,
                            split.span,
                            "few-shot examples drawn from the test split",
                        )
                        .in_file(file)
                        .label("this leaks test answers into prompts")
                        .help("draw shots from `train`"),
                    );
                } else if !splits.contains(&split.name) {
                    diags.push(
                        Diagnostic::error(
                            &BAD_SHOTS,
                            split.span,
                            format!("dataset `{name}` has no `{}` split", split.name),
                        )
                        .in_file(file)
                        .label("not declared in `split`")
                        .help(format!("declared splits: {}", splits.join(", "))),
                    );
                }
            }
        }
    }
}

/// Every string a label expression can produce must be a head label.
fn check_label_values(v: &V, labels: &[String], file: usize, diags: &mut Vec<Diagnostic>) {
    let mut outs: Vec<(String, Span)> = Vec::new();
    if let Val::RowExpr(e) = &v.val {
        leaf_strings(e, &mut outs);
    }
    for (s, span) in outs {
        if !labels.contains(&s) {
            let d = Diagnostic::error(
                &LABEL_NOT_IN_HEAD,
                span,
                format!("\"{s}\" is not one of the head's labels"),
            )
            .in_file(file)
            .label("never a valid label");
            diags.push(
                suggest(
                    d,
                    &s,
                    Span::new(span.start + 1, span.end - 1),
                    labels.iter().map(String::as_str),
                    "labels",
                )
                .in_file(file),
            );
        }
    }
}

/// The string literals an expression can evaluate to (the branches of
/// `if … then … else …`).
fn leaf_strings(e: &Expr, out: &mut Vec<(String, Span)>) {
    match &e.kind {
        ExprKind::Str(s) => out.push((s.value.clone(), s.span)),
        ExprKind::If {
            then, otherwise, ..
        } => {
            leaf_strings(then, out);
            leaf_strings(otherwise, out);
        }
        ExprKind::Paren(inner) => leaf_strings(inner, out),
        _ => {}
    }
}

fn mixtures(recipe: &Recipe, diags: &mut Vec<Diagnostic>) {
    for m in recipe.all("mixture") {
        for (id, w) in &m.weights {
            if w.as_f64().is_some_and(|x| x <= 0.0) {
                diags.push(
                    Diagnostic::error(
                        &BAD_WEIGHT,
                        w.span,
                        format!(
                            "task `{}` has weight {}",
                            id.name,
                            w.as_f64().unwrap_or(0.0)
                        ),
                    )
                    .in_file(m.file)
                    .label("weights must be > 0")
                    .help("remove the task, or give it a positive weight"),
                );
            }
        }
        if m.weights.len() == 1 {
            diags.push(
                Diagnostic::warning(
                    &SINGLE_TASK_MIXTURE,
                    m.name.as_ref().map(|n| n.span).unwrap_or(m.keyword.span),
                    "this mixture has one task",
                )
                .in_file(m.file)
                .label("samples exactly like its dataset")
                .help("use the dataset directly, or add tasks"),
            );
        } else if m.weights.is_empty() {
            diags.push(
                Diagnostic::error(
                    &STAGE_NO_DATA,
                    m.name.as_ref().map(|n| n.span).unwrap_or(m.keyword.span),
                    "this mixture has no tasks",
                )
                .in_file(m.file)
                .label("empty mixture")
                .help("list datasets with weights: `mixture tasks { faq = 3, papers = 1 }`"),
            );
        }
    }
}

fn curriculum(recipe: &Recipe, diags: &mut Vec<Diagnostic>) {
    let Some(c) = recipe.one("curriculum") else {
        return;
    };
    if c.stages.is_empty() {
        diags.push(
            Diagnostic::error(
                &STAGE_NO_DATA,
                c.keyword.span,
                "this curriculum has no stages",
            )
            .in_file(c.file)
            .label("no `stage … { … }` inside")
            .help("add `stage name { data = …, epochs = 1 }`"),
        );
    }
    for s in &c.stages {
        let head = s.name.as_ref().map(|n| n.span).unwrap_or(s.keyword.span);
        length(s, head, true, diags);
    }
    if let Some(p) = c.get("pacing") {
        for arg in ["start", "full_at"] {
            if let Some(v) = p.arg(arg) {
                if v.as_f64() == Some(0.0) {
                    diags.push(
                        Diagnostic::error(&BAD_PACING, v.span, format!("`{arg}` must be above 0%"))
                            .in_file(c.file)
                            .label("0% here")
                            .help("with 0% no example would be available at the start"),
                    );
                }
            }
        }
    }
}

/// Exactly one of `epochs` and `steps` (or none, where a default applies).
fn length(b: &CBlock, head: Span, required: bool, diags: &mut Vec<Diagnostic>) {
    match (b.keys.get("epochs"), b.keys.get("steps")) {
        (Some(e), Some(s)) => {
            let (first, second) = if e.key_span.start < s.key_span.start {
                (e, s)
            } else {
                (s, e)
            };
            diags.push(
                Diagnostic::error(
                    &LENGTH,
                    second.key_span,
                    "both `epochs` and `steps` are given",
                )
                .in_file(b.file)
                .label("second length here")
                .secondary(first.key_span, "first length here")
                .help("keep one of them"),
            )
        }
        (None, None) if required && !b.has("epochs") && !b.has("steps") => diags.push(
            Diagnostic::error(&LENGTH, head, "this stage has no length")
                .in_file(b.file)
                .label("neither `epochs` nor `steps`")
                .help("add `epochs = 1` or `steps = 500`"),
        ),
        _ => {}
    }
}

fn all_splits(recipe: &Recipe) -> Vec<String> {
    let mut v: Vec<String> = recipe.all("dataset").flat_map(declared_splits).collect();
    v.sort();
    v.dedup();
    v
}

fn training(recipe: &Recipe, diags: &mut Vec<Diagnostic>) {
    let head = head(recipe);
    let splits = all_splits(recipe);
    let any_broken_data = recipe.maybe_broken("dataset");
    if let Some(t) = recipe.one("train") {
        length(t, t.keyword.span, false, diags);
        if let Some(es) = t.get("early_stop") {
            if let Some(Val::Metric { split, metric }) = es.arg("metric").map(|v| &v.val) {
                metric_fits(recipe, &head, &metric.name, metric.span, t.file, diags);
                check_choice_split(
                    split,
                    &splits,
                    any_broken_data,
                    t.file,
                    "early stopping",
                    diags,
                );
            }
        }
        super::objectives::check_objective(recipe, t, &head, diags);
        if t.get("group_by_length").and_then(V::as_bool) == Some(true) {
            let curriculum = recipe.one("curriculum");
            let mixture = match t.get("data").map(|v| &v.val) {
                Some(Val::Data { name, .. }) => recipe.named("mixture", &name.name).is_some(),
                _ => curriculum.is_none() && recipe.all("mixture").count() == 1,
            };
            let ordered = curriculum.is_some_and(|c| c.has("order") || c.has("pacing"));
            if mixture || ordered {
                diags.push(
                    Diagnostic::warning(
                        &GROUPING_UNUSED,
                        t.keys["group_by_length"].key_span,
                        "length grouping does not apply to this training data",
                    )
                    .in_file(t.file)
                    .label(if mixture {
                        "the data is a mixture, drawn task by task"
                    } else {
                        "the curriculum orders or paces its examples"
                    })
                    .help("remove `group_by_length`, or train on one dataset"),
                );
            }
        }
        // Which data.
        if !t.has("data") && recipe.one("curriculum").is_none() {
            let choices: Vec<&CBlock> =
                recipe.all("mixture").chain(recipe.all("dataset")).collect();
            let mixtures = recipe.all("mixture").count();
            let datasets = recipe.all("dataset").count();
            if mixtures > 1 || (mixtures == 0 && datasets > 1) {
                diags.push(
                    Diagnostic::error(
                        &WHICH_DATA,
                        t.keyword.span,
                        "several datasets or mixtures; which one is trained on?",
                    )
                    .in_file(t.file)
                    .label("no `data = …` here")
                    .help(format!(
                        "add `data = {}`, or combine them in a `mixture`",
                        choices.first().and_then(|c| c.name_str()).unwrap_or("name")
                    )),
                );
            }
        }
    }
    if let Some(ev) = recipe.one("evaluate") {
        let on: Vec<(String, Span)> = match ev.get("on").map(|v| &v.val) {
            Some(Val::Word(w)) => {
                vec![(w.clone(), ev.get("on").map(|v| v.span).unwrap_or_default())]
            }
            Some(Val::List(items)) => items
                .iter()
                .filter_map(|i| i.as_word().map(|w| (w.to_string(), i.span)))
                .collect(),
            _ => vec![],
        };
        for (s, span) in on {
            if !splits.contains(&s) && !any_broken_data {
                diags.push(
                    Diagnostic::error(
                        &SPLIT_MISSING,
                        span,
                        format!("no dataset has a `{s}` split"),
                    )
                    .in_file(ev.file)
                    .label("not declared")
                    .help(format!(
                        "add `{s} = 10%` to a dataset's `split` (declared: {})",
                        splits.join(", ")
                    )),
                );
            }
        }
        if let Some(Val::List(ms)) = ev.get("metrics").map(|v| &v.val) {
            for m in ms {
                if let Some(w) = m.as_word() {
                    metric_fits(recipe, &head, w, m.span, ev.file, diags);
                }
            }
        }
    }
}

/// `metric` applies to the trained model: `accuracy`/`f1` to a classifier,
/// `perplexity` and the generation metrics to a causal LM, `margin` to DPO,
/// `reward` to PPO (`loss` to every model).
fn metric_fits(
    recipe: &Recipe,
    head: &Option<Option<Vec<String>>>,
    metric: &str,
    span: crate::syntax::ast::Span,
    file: usize,
    diags: &mut Vec<Diagnostic>,
) {
    let Some(h) = head else { return };
    let objective = objective(recipe);
    let fits = match metric {
        "accuracy" | "f1" => h.is_some(),
        "perplexity" | "exact_match" | "rouge_l" => h.is_none(),
        "margin" => objective.as_deref() == Some("dpo"),
        "reward" => objective.as_deref() == Some("ppo"),
        _ => true,
    };
    if fits {
        return;
    }
    let why = match metric {
        "accuracy" | "f1" => "needs a `classify` head",
        "margin" => "needs the `dpo` objective",
        "reward" => "needs the `ppo` objective",
        _ => "needs a `causal_lm` head",
    };
    let usable = match (h, objective.as_deref()) {
        (Some(_), _) => "loss, accuracy, f1",
        (None, Some("dpo")) => "loss, margin, perplexity, exact_match, rouge_l",
        (None, Some("ppo")) => "loss, reward, perplexity, exact_match, rouge_l",
        (None, _) => "loss, perplexity, exact_match, rouge_l",
    };
    diags.push(
        Diagnostic::error(
            &METRIC_MISMATCH,
            span,
            format!("`{metric}` does not apply to this model"),
        )
        .in_file(file)
        .label(why)
        .help(format!("this model's metrics are {usable}")),
    );
}

fn check_choice_split(
    split: &crate::syntax::ast::Ident,
    splits: &[String],
    broken: bool,
    file: usize,
    what: &str,
    diags: &mut Vec<Diagnostic>,
) {
    if split.name == "test" {
        diags.push(
            Diagnostic::error(
                &CHOOSES_ON_TEST,
                split.span,
                format!("{what} would choose on the test split"),
            )
            .in_file(file)
            .label("the test split must stay unseen")
            .help("use the validation split: `val.…`")
            .fix(split.span, "val", "Use the validation split"),
        );
    } else if !splits.contains(&split.name) && !broken {
        diags.push(
            Diagnostic::error(
                &CHOOSES_ON_TEST,
                split.span,
                format!(
                    "{what} watches `{}`, but no dataset has that split",
                    split.name
                ),
            )
            .in_file(file)
            .label("not declared")
            .help(format!("add `{} = 10%` to a dataset's `split`", split.name)),
        );
    }
}

fn sweep(recipe: &Recipe, diags: &mut Vec<Diagnostic>) {
    let Some(s) = recipe.one("sweep") else { return };
    let splits = all_splits(recipe);
    if let Some(pick) = s.get("pick") {
        if let Some(Val::Metric { split, metric }) = pick.arg("metric").map(|v| &v.val) {
            metric_fits(
                recipe,
                &head(recipe),
                &metric.name,
                metric.span,
                s.file,
                diags,
            );
            check_choice_split(
                split,
                &splits,
                recipe.maybe_broken("dataset"),
                s.file,
                "the sweep",
                diags,
            );
        }
    }
    super::sweep::check_axes(recipe, s, diags);
}
