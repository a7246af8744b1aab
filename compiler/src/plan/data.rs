//! Datasets, mixtures and curricula into the Plan's data parts.

use ft_data::curriculum::{Direction, Pacing};
use ft_data::render::{ChatTurn, Fields, Text};
use ft_data::split::{SplitKey, SplitPart, SplitSpec};
use ft_plan::{
    CurriculumPlan, DataRef, DataSource, DatasetPlan, Length, MixturePlan, OnBadRow, OrderKey,
    Shots, StagePlan, Stratify, TrainData, Truncate,
};

use crate::check::blocks::CBlock;
use crate::check::schema::PACINGS;
use crate::check::value::{ChatMessages, OrderKey as COrderKey, Val, V};
use crate::check::Recipe;
use crate::driver::Analysis;
use crate::syntax::ast::Order;
use crate::world::data::spec_of;

use super::util::{call_name, call_num, find_call, key_num, key_word, row_expr, template};
use super::{fail, LowerError};

/// The canonical order of per-split sources.
const SPLIT_ORDER: [&str; 3] = ["train", "val", "test"];

pub fn datasets(a: &Analysis, seed: u64) -> Result<Vec<DatasetPlan>, LowerError> {
    a.recipe
        .all("dataset")
        .map(|d| dataset(a, d, seed))
        .collect()
}

fn spec(v: &V, a: &Analysis, d: &CBlock) -> Option<ft_data::SourceSpec> {
    let mut spec = spec_of(v, &a.sources, d.file)?;
    spec.pattern = super::util::clean_path(&spec.pattern);
    Some(spec)
}

fn dataset(a: &Analysis, d: &CBlock, seed: u64) -> Result<DatasetPlan, LowerError> {
    let name = d.name_str().unwrap_or_default().to_string();
    let Some(src) = &d.source else {
        return fail(format!("dataset `{name}` has no source"), Some(d));
    };
    let source = match src.as_call() {
        Some(("splits", Some(args))) => {
            let mut parts: Vec<(String, ft_data::SourceSpec)> = Vec::new();
            for (split, e) in args {
                let Some(spec) = spec(&e.value, a, d) else {
                    return fail(format!("the `{split}` source of `{name}`"), Some(d));
                };
                parts.push((split.clone(), spec));
            }
            parts.sort_by_key(|(s, _)| SPLIT_ORDER.iter().position(|o| o == s).unwrap_or(3));
            DataSource::PerSplit(parts)
        }
        _ => match spec(src, a, d) {
            Some(spec) => DataSource::Single(spec),
            None => return fail(format!("the source of dataset `{name}`"), Some(d)),
        },
    };
    let mut fields = Fields::default();
    for (key, slot) in [
        ("prompt", &mut fields.prompt),
        ("completion", &mut fields.completion),
        ("input", &mut fields.input),
        ("label", &mut fields.label),
        ("messages", &mut fields.messages),
        ("chosen", &mut fields.chosen),
        ("rejected", &mut fields.rejected),
    ] {
        if let Some(v) = d.get(key) {
            *slot = Some(text(v, d)?);
        }
    }
    let (split, stratify) = match (&source, d.get("split").map(|v| &v.val)) {
        (DataSource::Single(_), Some(Val::Split(s))) => {
            let stratify = s.stratify.as_ref().map(|st| {
                if st.name == "label" && d.has("label") {
                    Stratify::Label
                } else {
                    Stratify::Field(st.name.clone())
                }
            });
            let spec = SplitSpec {
                parts: s
                    .parts
                    .iter()
                    .map(|(n, f, _)| SplitPart {
                        name: n.clone(),
                        fraction: *f,
                    })
                    .collect(),
                seed: s.seed.unwrap_or(seed),
                stratify: match &stratify {
                    Some(Stratify::Field(f)) => Some(f.clone()),
                    _ => None,
                },
                key: if s.key.is_empty() {
                    SplitKey::Content
                } else {
                    SplitKey::Fields(s.key.iter().map(|k| k.name.clone()).collect())
                },
            };
            (Some(spec), stratify)
        }
        _ => (None, None),
    };
    let shots = match d.get("shots").map(|v| &v.val) {
        Some(Val::Shots { count, split }) => Some(Shots {
            count: *count as usize,
            split: split.name.clone(),
        }),
        _ => None,
    };
    let filter = match d.get("filter").map(|v| &v.val) {
        Some(Val::RowExpr(e)) => Some(row_expr(e, d)?),
        _ => None,
    };
    Ok(DatasetPlan {
        name,
        source,
        fields,
        split,
        stratify,
        shots,
        filter,
        truncate: match key_word(d, "truncate") {
            Some("drop") => Truncate::Drop,
            Some("error") => Truncate::Error,
            _ => Truncate::Truncate,
        },
        on_bad_row: match key_word(d, "on_bad_row") {
            Some("skip") => OnBadRow::Skip,
            _ => OnBadRow::Fail,
        },
    })
}

fn text(v: &V, d: &CBlock) -> Result<Text, LowerError> {
    Ok(match &v.val {
        Val::Template(t) => Text::Template(template(t)),
        Val::Str(s) => Text::Template(ft_data::render::Template {
            parts: vec![ft_data::render::Part::Text(s.clone())],
        }),
        Val::Chat(ChatMessages::Turns(turns)) => Text::Chat(
            turns
                .iter()
                .map(|(role, t)| ChatTurn {
                    role: role.name.clone(),
                    content: template(t),
                })
                .collect(),
        ),
        Val::Chat(ChatMessages::Field(f)) => Text::ChatField(f.name.clone()),
        Val::RowExpr(e) => Text::Expr(row_expr(e, d)?),
        _ => {
            return fail(
                "a dataset part that is not a template or expression",
                Some(d),
            )
        }
    })
}

fn mixture(m: &CBlock, seed: u64) -> MixturePlan {
    MixturePlan {
        name: m.name_str().unwrap_or_default().to_string(),
        tasks: m
            .weights
            .iter()
            .map(|(id, w)| (id.name.clone(), w.as_f64()))
            .collect(),
        temperature: m.get("temperature").and_then(V::as_f64),
        cap: m.get("cap").and_then(V::as_f64),
        seed: m
            .get("seed")
            .and_then(|v| v.as_i64())
            .map_or(seed, |s| s as u64),
    }
}

fn data_ref(v: &V, b: &CBlock) -> Result<DataRef, LowerError> {
    match &v.val {
        Val::Data { name, filter } => Ok(DataRef {
            name: name.name.clone(),
            filter: filter.as_ref().map(|f| row_expr(f, b)).transpose()?,
        }),
        _ => fail("`data` does not name a dataset or mixture", Some(b)),
    }
}

/// What the trainer samples: `train.data`, else the curriculum, else the
/// only mixture, else the only dataset.
pub fn train_data(recipe: &Recipe, seed: u64) -> Result<TrainData, LowerError> {
    let mixtures: Vec<MixturePlan> = recipe.all("mixture").map(|m| mixture(m, seed)).collect();
    let train = recipe.one("train");
    if let Some((t, v)) = train.and_then(|t| t.get("data").map(|v| (t, v))) {
        let r = data_ref(v, t)?;
        return Ok(match mixtures.iter().find(|m| m.name == r.name) {
            Some(m) => TrainData::Mixture {
                mixture: m.clone(),
                filter: r.filter,
            },
            None => TrainData::Dataset(r),
        });
    }
    if let Some(c) = recipe.one("curriculum") {
        return Ok(TrainData::Curriculum {
            curriculum: curriculum(c)?,
            mixtures,
        });
    }
    if let [m] = mixtures.as_slice() {
        return Ok(TrainData::Mixture {
            mixture: m.clone(),
            filter: None,
        });
    }
    let datasets: Vec<&CBlock> = recipe.all("dataset").collect();
    match datasets.as_slice() {
        [d] => Ok(TrainData::Dataset(DataRef {
            name: d.name_str().unwrap_or_default().to_string(),
            filter: None,
        })),
        [] => fail("the recipe declares no dataset", None),
        _ => fail(
            "several datasets and no `train.data`, mixture or curriculum: say what to train on",
            train,
        ),
    }
}

fn curriculum(c: &CBlock) -> Result<CurriculumPlan, LowerError> {
    let order = match c.get("order").map(|v| &v.val) {
        Some(Val::Ordering { key, order }) => Some((
            match key {
                COrderKey::Tokens(id) => OrderKey::Tokens(id.name.clone()),
                COrderKey::Field(id) => OrderKey::Field(id.name.clone()),
            },
            match order {
                Order::Ascending => Direction::Ascending,
                Order::Descending => Direction::Descending,
            },
        )),
        _ => None,
    };
    let pacing = match c.get("pacing") {
        Some(v) => match call_name(v).and_then(|n| find_call(PACINGS, n).map(|d| (n, d))) {
            Some(("linear", def)) => Pacing::Linear {
                start: call_num(v, def, "start"),
                full_at: call_num(v, def, "full_at"),
            },
            Some(("root", def)) => Pacing::Root {
                start: call_num(v, def, "start"),
                full_at: call_num(v, def, "full_at"),
            },
            _ => Pacing::None,
        },
        None => Pacing::None,
    };
    let stages = c
        .stages
        .iter()
        .map(|s| {
            let Some(data) = s.get("data") else {
                return fail("a stage without `data`", Some(s));
            };
            Ok(StagePlan {
                name: s.name_str().unwrap_or_default().to_string(),
                data: data_ref(data, s)?,
                length: match s.get("steps").and_then(|v| v.as_i64()) {
                    Some(n) => Length::Steps(n as u64),
                    None => Length::Epochs(key_num(s, "epochs").unwrap_or(1.0)),
                },
                lr: s.get("lr").and_then(V::as_f64),
                batch: s.get("batch").and_then(|v| v.as_i64()).map(|b| b as usize),
                max_len: s
                    .get("max_len")
                    .and_then(|v| v.as_i64())
                    .map(|b| b as usize),
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(CurriculumPlan {
        order,
        pacing,
        stages,
    })
}
