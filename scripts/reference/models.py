#!/usr/bin/env python3
"""Reference outputs from PyTorch + transformers for ft's model parity tests.

Writes runtime/tests/fixtures/{minilm,smollm2,tokenizers}.json from the real
models fetched by scripts/fetch-assets.sh. Run with the reference venv:

    python3 -m venv .cache/venv-ref
    .cache/venv-ref/bin/pip install torch transformers gguf safetensors accelerate
    .cache/venv-ref/bin/python scripts/reference/models.py

Deterministic: re-running reproduces the fixtures byte for byte (same
library versions, CPU, float32, eager attention). The versions used are
recorded in each fixture.
"""
import json
import os
import sys

import torch
import transformers
from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS = os.path.join(ROOT, ".cache", "models")
MINILM = os.path.join(MODELS, "all-MiniLM-L6-v2")
GGUF_DIR = MODELS
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
OUT = os.path.join(ROOT, "runtime", "tests", "fixtures")

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Fine-tuning language models from declarative recipes!",
    "Café, naïve façade — 東京 is 3.5 km² away?",
]
PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):\n    ",
    "Once upon a time, in a land far away,",
]
TOKENIZER_STRINGS = [
    "Hello world",
    "  leading and   multiple    spaces\tand\ttabs\n\nnewlines  ",
    "Unicode: café naïve 東京 😀 Ωmega ß",
    "<|im_start|>user\nHi there<|im_end|>\n",
    "[CLS] already special? [SEP] [MASK]",
    "numbers 1234567 and 3.14159, punctuation!?...",
    "",
]
CHAT_QUESTION = "What is the capital of France?"


def versions():
    return {"torch": torch.__version__, "transformers": transformers.__version__}


def floats(t):
    # repr of a Python float round-trips exactly; 9 significant digits are
    # enough for f32 and keep the files small.
    return [float(f"{v:.9g}") for v in t.detach().to(torch.float32).reshape(-1).tolist()]


def write(name, obj):
    path = os.path.join(OUT, name)
    with open(path, "w") as f:
        json.dump(obj, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print("wrote", os.path.relpath(path, ROOT), file=sys.stderr)


def minilm():
    tok = AutoTokenizer.from_pretrained(MINILM)
    model = AutoModel.from_pretrained(MINILM, dtype=torch.float32, attn_implementation="eager").eval()
    cases = []
    for s in SENTENCES:
        enc = tok(s, return_tensors="pt")
        with torch.no_grad():
            out = model(**enc)
        h = out.last_hidden_state[0]
        n = h.shape[0]
        mid = n // 2
        cases.append(
            {
                "text": s,
                "input_ids": enc["input_ids"][0].tolist(),
                "cls": floats(h[0]),
                "token_positions": [1, mid, n - 1],
                "tokens": [floats(h[1]), floats(h[mid]), floats(h[n - 1])],
                "pooled": floats(out.pooler_output[0]),
            }
        )
    # A padded batch: the first sentence padded to the longest; its real
    # positions must not change.
    enc = tok(SENTENCES[:2], return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model(**enc)
    batch = {
        "input_ids": enc["input_ids"].tolist(),
        "attention_mask": enc["attention_mask"].tolist(),
        "cls": [floats(out.last_hidden_state[i, 0]) for i in range(2)],
    }
    write("minilm.json", {"versions": versions(), "cases": cases, "padded_batch": batch})


def smollm2():
    tok = AutoTokenizer.from_pretrained(GGUF_DIR, gguf_file=GGUF_FILE)
    model = AutoModelForCausalLM.from_pretrained(
        GGUF_DIR, gguf_file=GGUF_FILE, dtype=torch.float32, attn_implementation="eager"
    ).eval()
    cases = []
    for p in PROMPTS:
        ids = tok(p, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            logits = model(ids).logits[0, -1]
        assert logits.dtype == torch.float32
        top = torch.topk(logits, 10)
        cases.append(
            {
                "prompt": p,
                "input_ids": ids[0].tolist(),
                "top_ids": top.indices.tolist(),
                "top_logits": floats(top.values),
                "slice_start": 1000,
                "slice": floats(logits[1000:1064]),
                "logsumexp": float(f"{torch.logsumexp(logits, 0).item():.9g}"),
            }
        )
    chat = tok.apply_chat_template(
        [{"role": "user", "content": CHAT_QUESTION}], add_generation_prompt=True, tokenize=False
    )
    ids = tok(chat, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        gen = model.generate(ids, max_new_tokens=20, do_sample=False)
    new = gen[0, ids.shape[1]:].tolist()
    write(
        "smollm2.json",
        {
            "versions": versions(),
            "cases": cases,
            "chat": {
                "question": CHAT_QUESTION,
                "rendered": chat,
                "input_ids": ids[0].tolist(),
                "greedy_ids": new,
                "greedy_text": tok.decode(new, skip_special_tokens=False),
            },
        },
    )


def tokenizers():
    bert = AutoTokenizer.from_pretrained(MINILM)
    smol = AutoTokenizer.from_pretrained(GGUF_DIR, gguf_file=GGUF_FILE)
    cases = [
        {
            "text": s,
            "minilm": bert(s)["input_ids"],
            "smollm2": smol(s)["input_ids"],
        }
        for s in TOKENIZER_STRINGS
    ]
    write("tokenizers.json", {"versions": versions(), "cases": cases})


if __name__ == "__main__":
    torch.manual_seed(0)
    torch.set_num_threads(int(os.environ.get("FT_REF_THREADS", "2")))
    os.makedirs(OUT, exist_ok=True)
    tokenizers()
    minilm()
    smollm2()
