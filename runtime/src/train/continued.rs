//! Continuing from a model's `adapter`: the adapter's method must be the
//! recipe's, or training would change a different set of parameters than
//! the recipe declares.

use ft_plan::method::{Ia3Module, Lora, TargetModule};
use ft_plan::Method;

/// What differs between an adapter's method (`found`) and the recipe's
/// (`planned`), in words; `None` when they are the same kind, shape and
/// modules (dropout and initialisation do not matter once trained).
pub fn difference(found: &Method, planned: &Method) -> Option<String> {
    let differs = |what: &str, a: String, b: String| {
        (a != b).then(|| format!("{what}: the adapter's {a}, the recipe's {b}"))
    };
    match (found, planned) {
        (Method::Lora(a), Method::Lora(b)) => lora(a, b),
        (Method::Ia3 { modules: a, .. }, Method::Ia3 { modules: b, .. }) => {
            let ff = |m: &[Ia3Module]| paths(m.iter().filter(|x| x.feedforward).map(|x| &x.target));
            differs(
                "modules",
                paths(a.iter().map(|x| &x.target)).join(", "),
                paths(b.iter().map(|x| &x.target)).join(", "),
            )
            .or_else(|| differs("feed-forward modules", ff(a).join(", "), ff(b).join(", ")))
        }
        (
            Method::Prompt {
                virtual_tokens: a, ..
            },
            Method::Prompt {
                virtual_tokens: b, ..
            },
        ) => differs("virtual tokens", a.to_string(), b.to_string()),
        (
            Method::Prefix {
                virtual_tokens: a,
                projection: pa,
                ..
            },
            Method::Prefix {
                virtual_tokens: b,
                projection: pb,
                ..
            },
        ) => differs("virtual tokens", a.to_string(), b.to_string())
            .or_else(|| differs("projection", pa.to_string(), pb.to_string())),
        (
            Method::Adapter {
                style: sa, size: a, ..
            },
            Method::Adapter {
                style: sb, size: b, ..
            },
        ) => differs("style", format!("{sa:?}"), format!("{sb:?}"))
            .or_else(|| differs("size", a.to_string(), b.to_string())),
        (a, b) => Some(format!(
            "the adapter is {}, the recipe {}",
            a.name(),
            b.name()
        )),
    }
}

fn paths<'a>(targets: impl Iterator<Item = &'a TargetModule>) -> Vec<String> {
    let mut v: Vec<String> = targets.map(|t| t.path.clone()).collect();
    v.sort();
    v
}

fn lora(a: &Lora, b: &Lora) -> Option<String> {
    let differs = |what: &str, x: String, y: String| {
        (x != y).then(|| format!("{what}: the adapter's {x}, the recipe's {y}"))
    };
    let modules = |l: &Lora| paths(l.modules.iter().map(|m| &m.target)).join(", ");
    let per_module = |l: &Lora, f: &dyn Fn(&ft_plan::method::LoraModule) -> String| {
        let mut v: Vec<String> = l
            .modules
            .iter()
            .map(|m| format!("{} {}", m.target.path, f(m)))
            .collect();
        v.sort();
        v.join(", ")
    };
    let saved = |l: &Lora| {
        let mut v: Vec<&str> = l
            .modules_to_save
            .iter()
            .map(String::as_str)
            .filter(|m| !["classifier", "score"].contains(m))
            .collect();
        v.sort();
        v.join(", ")
    };
    differs("modules", modules(a), modules(b))
        .or_else(|| {
            differs(
                "ranks",
                per_module(a, &|m| m.rank.to_string()),
                per_module(b, &|m| m.rank.to_string()),
            )
        })
        .or_else(|| {
            differs(
                "alphas",
                per_module(a, &|m| m.alpha.to_string()),
                per_module(b, &|m| m.alpha.to_string()),
            )
        })
        .or_else(|| differs("dora", a.dora.to_string(), b.dora.to_string()))
        .or_else(|| differs("rslora", a.rslora.to_string(), b.rslora.to_string()))
        .or_else(|| differs("bias", format!("{:?}", a.bias), format!("{:?}", b.bias)))
        .or_else(|| differs("modules_to_save", saved(a), saved(b)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ft_plan::method::{LoraBias, LoraModule};

    fn lora(alpha: f64, dora: bool) -> Method {
        Method::Lora(Lora {
            rank: 4,
            alpha,
            dropout: 0.1,
            targets: vec![],
            layers: None,
            rank_for: Default::default(),
            alpha_for: Default::default(),
            rslora: false,
            dora,
            bias: LoraBias::None,
            modules_to_save: vec!["classifier".into()],
            modules: vec![LoraModule {
                target: TargetModule {
                    path: "encoder.layer.0.attention.self.query".into(),
                    layer: Some(0),
                    in_features: 384,
                    out_features: 384,
                },
                rank: 4,
                alpha,
            }],
        })
    }

    #[test]
    fn the_difference_is_named() {
        assert_eq!(difference(&lora(8.0, false), &lora(8.0, false)), None);
        assert_eq!(
            difference(&lora(8.0, false), &lora(64.0, false)).unwrap(),
            "alphas: the adapter's encoder.layer.0.attention.self.query 8, \
             the recipe's encoder.layer.0.attention.self.query 64"
        );
        assert_eq!(
            difference(&lora(8.0, false), &lora(8.0, true)).unwrap(),
            "dora: the adapter's false, the recipe's true"
        );
        assert_eq!(
            difference(&lora(8.0, false), &Method::Full { freeze: vec![] }).unwrap(),
            "the adapter is lora, the recipe full"
        );
    }
}
