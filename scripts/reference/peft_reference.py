#!/usr/bin/env python3
"""Reference numbers and interop fixtures from Hugging Face PEFT for ft's
PEFT tests (runtime/tests/peft_*.rs).

    .cache/venv-ref/bin/pip install peft==0.21.2   # plus torch, transformers, gguf
    .cache/venv-ref/bin/python scripts/reference/peft_reference.py counts
    .cache/venv-ref/bin/python scripts/reference/peft_reference.py fixtures
    .cache/venv-ref/bin/python scripts/reference/peft_reference.py classifier
    .cache/venv-ref/bin/python scripts/reference/peft_reference.py saved
    .cache/venv-ref/bin/python scripts/reference/peft_reference.py check-ft DIR

`counts`   trainable parameter counts of PEFT for the configurations ft's
           tests use, on the real MiniLM and SmolLM2 ->
           runtime/tests/fixtures/peft/counts.json
`fixtures` PEFT-written adapters (seeded random weights, LoRA B non-zero so
           the adapter matters) on the real base models, with PEFT's outputs
           on fixed inputs -> runtime/tests/fixtures/peft/<case>/
           (adapter_config.json, adapter_model.safetensors, expected.json).
`classifier` a PEFT LoRA adapter of a SmolLM2 sequence classifier
           (transformers' LlamaForSequenceClassification, two labels, the
           `score` head seeded), with its logits on two right-padded
           sentences -> runtime/tests/fixtures/peft/smollm2-classify-lora/.
`saved`     PEFT LoRA adapters that train base parameters too: `bias = "all"`
           and `"lora_only"`, and `modules_to_save` (MiniLM's embedding
           LayerNorm, SmolLM2's final norm), with PEFT's outputs and
           trainable counts -> runtime/tests/fixtures/peft/<case>/.
`check-ft` loads every adapter ft exported under DIR (written by
           `cargo run -p ft-runtime --release --example peft_export -- DIR`)
           with `peft.PeftModel.from_pretrained`, and every `merged/` folder
           with transformers, and compares the outputs with ft's (in each
           case's `ft_outputs.json`): max |a-b| / max |b| <= 1e-4.
"""
import json
import os
import sys

import torch
import transformers
import peft
from peft import (
    IA3Config,
    LoraConfig,
    PeftModel,
    PrefixTuningConfig,
    PromptTuningConfig,
    TaskType,
    get_peft_model,
)
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS = os.path.join(ROOT, ".cache", "models")
MINILM = os.path.join(MODELS, "all-MiniLM-L6-v2")
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
OUT = os.path.join(ROOT, "runtime", "tests", "fixtures", "peft")

SENTENCES = ["A gripping, beautifully acted film.", "Dull and far too long."]
PROMPT = "The capital of France is"
TOLERANCE = 1e-4


def versions():
    return {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__}


def floats(t):
    return [float(f"{v:.8g}") for v in t.detach().to(torch.float32).reshape(-1).tolist()]


def minilm_base(seed=0):
    torch.manual_seed(seed)
    return AutoModelForSequenceClassification.from_pretrained(
        MINILM, num_labels=2, dtype=torch.float32, attn_implementation="eager"
    )


def smollm2_base():
    return AutoModelForCausalLM.from_pretrained(
        MODELS, gguf_file=GGUF_FILE, dtype=torch.float32, attn_implementation="eager"
    )


MINILM_CONFIGS = {
    "lora": lambda: LoraConfig(task_type=TaskType.SEQ_CLS, r=8, lora_alpha=16, target_modules=["query", "value"]),
    "rslora": lambda: LoraConfig(
        task_type=TaskType.SEQ_CLS, r=8, lora_alpha=16, target_modules=["query", "value"], use_rslora=True
    ),
    "dora": lambda: LoraConfig(
        task_type=TaskType.SEQ_CLS, r=8, lora_alpha=16, target_modules=["query", "value"], use_dora=True
    ),
    "ia3": lambda: IA3Config(
        task_type=TaskType.SEQ_CLS, target_modules=["key", "value", "output.dense"], feedforward_modules=["output.dense"]
    ),
    "prompt": lambda: PromptTuningConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=8),
    "prefix": lambda: PrefixTuningConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=8),
    "prefix-projection": lambda: PrefixTuningConfig(
        task_type=TaskType.SEQ_CLS, num_virtual_tokens=8, prefix_projection=True, encoder_hidden_size=64
    ),
}

SMOLLM2_CONFIGS = {
    "lora": lambda: LoraConfig(task_type=TaskType.CAUSAL_LM, r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"]),
    "dora": lambda: LoraConfig(
        task_type=TaskType.CAUSAL_LM, r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], use_dora=True
    ),
    "ia3": lambda: IA3Config(
        task_type=TaskType.CAUSAL_LM, target_modules=["k_proj", "v_proj", "down_proj"], feedforward_modules=["down_proj"]
    ),
    "prompt": lambda: PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=8),
    "prefix": lambda: PrefixTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=8),
}


def trainable(model):
    t, a = model.get_nb_trainable_parameters()
    return {"trainable": t, "total": a}


def counts():
    out = {"versions": versions(), "minilm": {}, "smollm2": {}}
    for name, cfg in MINILM_CONFIGS.items():
        out["minilm"][name] = trainable(get_peft_model(minilm_base(), cfg()))
        print("minilm", name, out["minilm"][name], file=sys.stderr)
    base = smollm2_base()
    for name, cfg in SMOLLM2_CONFIGS.items():
        m = get_peft_model(base, cfg())
        out["smollm2"][name] = trainable(m)
        print("smollm2", name, out["smollm2"][name], file=sys.stderr)
        base = m.unload() if hasattr(m, "unload") and name in ("lora", "dora", "ia3") else smollm2_base()
    write_json(os.path.join(OUT, "counts.json"), out)


def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")
    print("wrote", os.path.relpath(path, ROOT), file=sys.stderr)


def randomize(model, seed):
    """Seeded non-trivial adapter weights (LoRA B is zero at init, which
    would make every LoRA case the identity and test nothing)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not p.requires_grad:
                continue
            if "lora_B" in name or "lora_A" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
            elif "lora_magnitude_vector" in name or "ia3_l" in name:
                p.mul_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif "prompt_encoder" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
            else:  # the classifier head
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)


def minilm_inputs():
    tok = AutoTokenizer.from_pretrained(MINILM)
    return tok(SENTENCES, return_tensors="pt", padding=True)


def minilm_outputs(model, enc):
    model.eval()
    with torch.no_grad():
        out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], output_hidden_states=True)
    hidden = out.hidden_states[-1]
    n = hidden.shape[1] - enc["input_ids"].shape[1]  # virtual tokens of prompt tuning
    return {"logits": floats(out.logits), "hidden": floats(hidden[:, n:])}


def smollm2_inputs():
    tok = AutoTokenizer.from_pretrained(MODELS, gguf_file=GGUF_FILE)
    return tok([PROMPT], return_tensors="pt")


def smollm2_outputs(model, enc):
    model.eval()
    with torch.no_grad():
        out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], output_hidden_states=True)
    hidden = out.hidden_states[-1]
    logits = out.logits
    n = logits.shape[1] - enc["input_ids"].shape[1]
    return {"hidden": floats(hidden[:, n:]), "logits_slice": floats(logits[:, n:, 1000:1064])}


def fixtures():
    enc = minilm_inputs()
    # No MiniLM prefix case: with transformers 5.x, PEFT refuses prefix
    # tuning on BERT ("Model does not support past key values"); prefix
    # interop is checked on SmolLM2 instead.
    for i, name in enumerate(["lora", "rslora", "dora", "ia3", "prompt"]):
        model = get_peft_model(minilm_base(seed=i), MINILM_CONFIGS[name]())
        randomize(model, 100 + i)
        write_case(f"minilm-{name}", model, enc, minilm_outputs)
    enc = smollm2_inputs()
    # Small on purpose (rank 2, 4 virtual tokens): the fixtures stay < 1 MB.
    small = {
        "lora": LoraConfig(task_type=TaskType.CAUSAL_LM, r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"]),
        "prefix": PrefixTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=4),
        "prompt": PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=4),
    }
    for i, (name, cfg) in enumerate(small.items()):
        model = get_peft_model(smollm2_base(), cfg)
        randomize(model, 200 + i)
        write_case(f"smollm2-{name}", model, enc, smollm2_outputs)


def smollm2_classifier_base():
    model = AutoModelForSequenceClassification.from_pretrained(
        MODELS, gguf_file=GGUF_FILE, num_labels=2, dtype=torch.float32, attn_implementation="eager"
    )
    tok = AutoTokenizer.from_pretrained(MODELS, gguf_file=GGUF_FILE)
    model.config.pad_token_id = tok.pad_token_id
    return model


def smollm2_classifier_inputs():
    tok = AutoTokenizer.from_pretrained(MODELS, gguf_file=GGUF_FILE)
    tok.padding_side = "right"
    # Of different lengths: the shorter row is padded, so pooling must
    # find its last real token.
    return tok([SENTENCES[0], "Dull."], return_tensors="pt", padding=True)


def classifier_outputs(model, enc):
    model.eval()
    with torch.no_grad():
        out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
    return {"logits": floats(out.logits)}


def classifier():
    enc = smollm2_classifier_inputs()
    cfg = LoraConfig(task_type=TaskType.SEQ_CLS, r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"])
    model = get_peft_model(smollm2_classifier_base(), cfg)
    randomize(model, 300)
    write_case("smollm2-classify-lora", model, enc, classifier_outputs)


def saved():
    enc = minilm_inputs()
    minilm_cases = {
        "minilm-lora-bias-all": LoraConfig(
            task_type=TaskType.SEQ_CLS, r=2, lora_alpha=4, target_modules=["query", "value"], bias="all"
        ),
        "minilm-lora-only-saved": LoraConfig(
            task_type=TaskType.SEQ_CLS,
            r=2,
            lora_alpha=4,
            target_modules=["query", "value"],
            bias="lora_only",
            modules_to_save=["embeddings.LayerNorm"],
        ),
    }
    for i, (name, cfg) in enumerate(minilm_cases.items()):
        model = get_peft_model(minilm_base(seed=10 + i), cfg)
        randomize(model, 400 + i)
        write_case(name, model, enc, minilm_outputs, trainable=trainable(model)["trainable"])
    enc = smollm2_inputs()
    cfg = LoraConfig(
        task_type=TaskType.CAUSAL_LM,
        r=2,
        lora_alpha=4,
        target_modules=["q_proj"],
        layers_to_transform=[0],
        modules_to_save=["model.norm"],
    )
    model = get_peft_model(smollm2_base(), cfg)
    randomize(model, 410)
    write_case("smollm2-lora-saved-norm", model, enc, smollm2_outputs, trainable=trainable(model)["trainable"])


def write_case(name, model, enc, outputs, **extra):
    """Saves `model`'s adapter under OUT/name with PEFT's outputs on `enc`."""
    folder = os.path.join(OUT, name)
    save(model, folder)
    expected = {
        "versions": versions(),
        "input_ids": enc["input_ids"].tolist(),
        "attention_mask": enc["attention_mask"].tolist(),
        **extra,
        **outputs(model, enc),
    }
    write_json(os.path.join(folder, "expected.json"), expected)


def save(model, folder):
    model.save_pretrained(folder)
    # The generated model card is boilerplate with local paths.
    os.remove(os.path.join(folder, "README.md"))


def rel_err(a, b):
    a = torch.tensor(a)
    b = torch.tensor(b)
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


def check_ft(root):
    failures = 0
    for case in sorted(os.listdir(root)):
        folder = os.path.join(root, case)
        ft_out = os.path.join(folder, "ft_outputs.json")
        if not os.path.exists(ft_out):
            continue
        with open(ft_out) as f:
            ft = json.load(f)
        enc = {
            "input_ids": torch.tensor(ft["input_ids"]),
            "attention_mask": torch.tensor(ft["attention_mask"]),
        }
        if case.startswith("minilm"):
            base, outputs = minilm_base(), minilm_outputs
        else:
            base, outputs = smollm2_base(), smollm2_outputs
        if os.path.exists(os.path.join(folder, "adapter_config.json")):
            model = PeftModel.from_pretrained(base, folder)
            ref = outputs(model, enc)
            for key in ft:
                if key in ref:
                    e = rel_err(ft[key], ref[key])
                    ok = e <= TOLERANCE
                    failures += not ok
                    print(f"{case:24} peft    {key:13} rel err {e:.2e} {'ok' if ok else 'FAIL'}")
        merged = os.path.join(folder, "merged")
        if os.path.exists(merged):
            if case.startswith("minilm"):
                model = AutoModelForSequenceClassification.from_pretrained(
                    merged, dtype=torch.float32, attn_implementation="eager"
                )
            else:
                model = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32, attn_implementation="eager")
            ref = outputs(model, enc)
            for key in ft:
                if key in ref:
                    e = rel_err(ft[key], ref[key])
                    ok = e <= TOLERANCE
                    failures += not ok
                    print(f"{case:24} merged  {key:13} rel err {e:.2e} {'ok' if ok else 'FAIL'}")
    if failures:
        print(f"{failures} comparison(s) failed", file=sys.stderr)
        sys.exit(1)
    print("all comparisons within", TOLERANCE)


if __name__ == "__main__":
    torch.set_num_threads(2)
    cmd = sys.argv[1] if len(sys.argv) > 1 else "fixtures"
    if cmd == "counts":
        counts()
    elif cmd == "fixtures":
        fixtures()
    elif cmd == "saved":
        saved()
    elif cmd == "classifier":
        classifier()
    elif cmd == "check-ft":
        check_ft(sys.argv[2])
    else:
        sys.exit(__doc__)
