//! Stage 3, world: checks a recipe against the real files it names, reading
//! only headers — a model's `config.json` and safetensors header or GGUF
//! tensor table, a data file's header row or first rows. A LoRA target the
//! model lacks, a template field the data lacks, a `max_len` beyond the
//! model's positions: found in milliseconds, before any data is processed.

mod adapter;
pub mod data;
mod model;

use std::path::{Path, PathBuf};

use crate::check::Recipe;
use crate::diagnostics::Diagnostic;
use crate::source::SourceMap;

pub use data::DataInfo;
pub use model::ModelInfo;

crate::declare_codes! {
    /// A data file named by a dataset does not exist, or a glob matches no
    /// file.
    ///
    /// Paths are relative to the recipe's folder. The real datasets used by
    /// the example recipes are fetched by `scripts/fetch-assets.sh`.
    DATA_NOT_FOUND = "FT0601", "data file not found";

    /// A template, label or filter uses a field that the data does not have.
    ///
    /// Fields are read from the CSV/TSV header (or the declared `columns`)
    /// or from the first rows of JSON Lines, JSON and YAML files. The
    /// message names the file and the line where the fields were read, and
    /// suggests the closest field. Nested fields are written with dots:
    /// `{meta.title}`.
    UNKNOWN_FIELD = "FT0602", "field not in the data";

    /// A data file cannot be read as its declared format.
    ///
    /// The header or the first rows do not parse (for example a `.jsonl`
    /// file whose first line is not JSON, or a CSV header with an unclosed
    /// quote). The message gives the file and line.
    DATA_UNREADABLE = "FT0603", "data file unreadable";

    /// The model path does not exist.
    ///
    /// `hf("…")` names a folder with `config.json`, `model.safetensors` and
    /// `tokenizer.json`; `gguf("…")` names a `.gguf` file. Paths are
    /// relative to the recipe. The example models are fetched by
    /// `scripts/fetch-assets.sh`.
    MODEL_NOT_FOUND = "FT0604", "model not found";

    /// The model folder has no weights or no `config.json`.
    ///
    /// ft reads `model.safetensors` or a sharded
    /// `model.safetensors.index.json`, with the architecture from
    /// `config.json`.
    MODEL_NO_WEIGHTS = "FT0605", "model without weights";

    /// The model has no tokenizer.
    ///
    /// A Hugging Face folder needs `tokenizer.json` (the fast-tokenizer
    /// file; `vocab.txt` alone is not enough); a GGUF file needs
    /// `tokenizer.ggml.*` metadata. Or point `tokenizer = "…"` at one.
    MODEL_NO_TOKENIZER = "FT0606", "model without tokenizer";

    /// A PEFT target matches no module of the model.
    ///
    /// Targets are matched like PEFT: an entry matches module paths that end
    /// with it (`query` matches `encoder.layer.3.attention.self.query`).
    /// Module names differ between families — BERT's `query`/`value` are
    /// Llama's `q_proj`/`v_proj` — so the real names of the model's linear
    /// layers are suggested. This is found from the model's header, before
    /// any data is read.
    UNKNOWN_TARGET = "FT0607", "target not in the model";

    /// A target matches the module in only some layers.
    ///
    /// For example a target written with a layer index. If that is
    /// intended, say so with `layers = […]`; the note gives the coverage.
    PARTIAL_TARGET = "FT0608", "target covers only some layers";

    /// A LoRA rank is larger than a targeted layer's dimensions.
    ///
    /// A rank-r update of an `out × in` matrix is only low-rank when
    /// r < min(in, out); larger ranks waste parameters and are rejected.
    RANK_TOO_LARGE = "FT0609", "rank larger than the layer";

    /// `max_len` is larger than the number of positions the model supports.
    ///
    /// Positions beyond the model's `max_position_embeddings` have no
    /// learned embedding (BERT) or were never seen in pre-training (Llama).
    MAX_LEN_TOO_LARGE = "FT0610", "max_len beyond the model's positions";

    /// The model's files are malformed.
    ///
    /// A truncated safetensors file, a header with offsets out of bounds, a
    /// GGUF with an unknown tensor type, a `config.json` missing a field: the
    /// message names the file and the problem.
    MODEL_MALFORMED = "FT0611", "model files malformed";

    /// The model is a pickle checkpoint (`pytorch_model.bin`, `.pt`).
    ///
    /// Unpickling runs arbitrary code, so ft never loads pickle files.
    /// Convert once with PyTorch and the `safetensors` package:
    /// `model.save_pretrained(dir, safe_serialization=True)`.
    PICKLE_REFUSED = "FT0612", "pickle checkpoint refused";

    /// `layers` names a layer index the model does not have.
    ///
    /// Layers are numbered from 0 to the model's layer count minus one.
    LAYER_OUT_OF_RANGE = "FT0613", "layer index out of range";

    /// The model's architecture is not one ft implements.
    ///
    /// ft implements the Llama family (Llama, Mistral, Qwen2, SmolLM) and the
    /// BERT family (BERT, MiniLM, RoBERTa-style encoders).
    UNSUPPORTED_MODEL = "FT0614", "unsupported model";

    /// Some of the first rows of a data file are malformed.
    ///
    /// Found while reading the first rows for field names: a line that is
    /// not JSON, a row with the wrong number of columns. With
    /// `on_bad_row = skip` such rows are skipped and counted; with the
    /// default `fail`, training would stop at the first one.
    BAD_ROWS = "FT0615", "malformed rows in the data";

    /// The head does not fit the model family.
    ///
    /// Encoders (BERT family) have no language-model head here: use
    /// `classify(labels = …)`. Decoders can do both.
    HEAD_FAMILY = "FT0616", "head does not fit the model";

    /// A model's `adapter` folder does not exist or holds no
    /// `adapter_config.json`.
    ///
    /// `adapter = "…"` applies a trained PEFT adapter (as `ft run` writes
    /// it into a run's `adapter/` folder, or PEFT's `save_pretrained`) when
    /// the model is loaded; a PPO reward model gets its trained classifier
    /// this way. Train the classifier first — for example
    /// `ft run recipes/sentiment-minilm.ft` — and point `adapter` at the
    /// run's `adapter/` folder. Paths are relative to the recipe.
    ADAPTER_NOT_FOUND = "FT0617", "adapter folder not found";

    /// A model's `adapter` does not fit the model it is declared on.
    ///
    /// The adapter's `base_model_name_or_path` (in `adapter_config.json`)
    /// must name this model — the same folder, or, for a path that does
    /// not exist on this machine such as a hub id
    /// (`sentence-transformers/all-MiniLM-L6-v2`), the same last component
    /// — and the classifier it saved (`modules_to_save`) must have as many
    /// labels as the model's `head = classify(labels = […])` declares, in
    /// the order it was trained with: the reward is the first label's
    /// log-odds. The tensors themselves are checked when training loads
    /// the adapter.
    ADAPTER_MISMATCH = "FT0618", "adapter does not fit the model";

    /// A DPO `reference` whose vocabulary is not the policy's.
    ///
    /// DPO compares the log-probabilities the policy and the reference give
    /// the same token ids, which means the same thing only when both models
    /// share one tokenizer. Name a reference of the same family and
    /// vocabulary (the same base model, or a fine-tune of it), or leave
    /// `reference` out to compare against the policy as it starts.
    REFERENCE_VOCAB = "FT0620", "reference vocabulary differs";
}

/// What the world checks learnt: the models' inventories and the data
/// files' fields. The language server completes target and field names from
/// it.
#[derive(Debug, Clone, Default)]
pub struct World {
    pub models: Vec<ModelInfo>,
    pub data: Vec<DataInfo>,
}

pub fn check(recipe: &Recipe, sources: &SourceMap, diags: &mut Vec<Diagnostic>) -> World {
    let models = model::check_models(recipe, sources, diags);
    check_reference(recipe, &models, diags);
    adapter::check_continued(recipe, sources, diags);
    let data = data::check_data(recipe, sources, diags);
    World { models, data }
}

/// A DPO reference shares the policy's vocabulary.
fn check_reference(recipe: &Recipe, models: &[ModelInfo], diags: &mut Vec<Diagnostic>) {
    let Some(t) = recipe.one("train") else { return };
    let Some(objective) = t.get("objective") else {
        return;
    };
    let Some(crate::check::value::Val::ModelRef(id)) = objective.arg("reference").map(|v| &v.val)
    else {
        return;
    };
    let vocab = |name: Option<&str>| {
        models
            .iter()
            .find(|m| m.name.as_deref() == name)
            .and_then(|m| m.inventory.as_ref())
            .map(|i| i.config.vocab_size)
    };
    let policy = recipe.model().and_then(|m| m.name_str());
    if let (Some(p), Some(r)) = (vocab(policy), vocab(Some(&id.name))) {
        if p != r {
            diags.push(
                Diagnostic::error(
                    &REFERENCE_VOCAB,
                    id.span,
                    format!("DPO reference `{}` has {r} tokens, the policy {p}", id.name),
                )
                .in_file(t.file)
                .label("another vocabulary")
                .help("name a model with the policy's tokenizer, or leave `reference` out"),
            );
        }
    }
}

/// A path in a recipe is relative to the recipe's folder.
pub fn resolve(sources: &SourceMap, file: usize, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        sources.get(file).dir().join(p)
    }
}
