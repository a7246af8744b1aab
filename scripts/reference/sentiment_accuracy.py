#!/usr/bin/env python3
"""The PyTorch + PEFT reference for a classification recipe: the same
settings and the same rows as ft, trained and evaluated in transformers.

Settings come from ft's own Plan (`ft plan RECIPE --format json`: LoRA rank,
alpha, dropout and targets; optimizer; schedule and warmup; steps or epochs;
batch; seed) and the rows from `ft data RECIPE --rows train|test` (ft's
split, the exact token ids ft feeds the model, their labels), so the two
sides differ only in the framework: initialisation draws, dropout masks and
the shuffling order come from each framework's own generator.

    .cache/venv-ref/bin/python scripts/reference/sentiment_accuracy.py \\
        --ft target/debug/ft --recipe tests/fixtures/reference/sentiment-short.ft \\
        --out tests/fixtures/reference/sentiment-short.json

Writes one JSON object (test accuracy, macro-F1, settings, versions). The
committed fixture was produced by this command; tests/sentiment_real.rs
prints it beside ft's own result.
"""
import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time

import peft
import torch
import transformers
from peft import LoraConfig, TaskType, get_peft_model
from transformers import AutoModelForSequenceClassification, get_scheduler


def ft_json(ft, *args):
    out = subprocess.run([ft, *args], check=True, capture_output=True, text=True).stdout
    return out


def rows(ft, recipe, split):
    text = ft_json(ft, "data", recipe, "--rows", split)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def suffixes(targets):
    out = []
    for t in targets:
        (kind, name), = t.items()
        if kind != "Suffix":
            raise SystemExit(f"target {t} is not a module-name suffix")
        out.append(name)
    return out


def pad(batch, width=None):
    width = width or max(len(r["input_ids"]) for r in batch)
    ids = torch.zeros(len(batch), width, dtype=torch.long)
    mask = torch.zeros(len(batch), width, dtype=torch.long)
    for i, r in enumerate(batch):
        n = len(r["input_ids"])
        ids[i, :n] = torch.tensor(r["input_ids"])
        mask[i, :n] = 1
    labels = torch.tensor([r["class_label"] for r in batch])
    return ids, mask, labels


def macro_f1(pred, gold, classes):
    f1s = []
    for c in range(classes):
        tp = sum(1 for p, g in zip(pred, gold) if p == c and g == c)
        fp = sum(1 for p, g in zip(pred, gold) if p == c and g != c)
        fn = sum(1 for p, g in zip(pred, gold) if p != c and g == c)
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return sum(f1s) / classes


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ft", required=True, help="the ft binary")
    ap.add_argument("--recipe", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    plan = json.loads(ft_json(args.ft, "plan", args.recipe, "--format", "json"))
    (method, lora), = plan["method"].items()
    if method != "Lora":
        raise SystemExit(f"this reference covers LoRA recipes, not {method}")
    labels = plan["model"]["head"]["Classify"]["labels"]
    train_cfg = plan["train"]
    (opt_kind, opt), = train_cfg["optimizer"].items()
    if opt_kind != "AdamW":
        raise SystemExit(f"this reference covers AdamW, not {opt_kind}")
    train, test = rows(args.ft, args.recipe, "train"), rows(args.ft, args.recipe, "test")
    batch = train_cfg["batch"] * train_cfg["accumulate"]
    (length_kind, length), = train_cfg["length"].items()
    per_epoch = math.ceil(len(train) / batch)
    steps = length if length_kind == "Steps" else math.ceil(length * per_epoch)
    sched = train_cfg["schedule"]
    (warm_kind, warm), = sched["warmup"].items() if sched["warmup"] else (("Steps", 0),)
    warmup = warm if warm_kind == "Steps" else round(warm * steps)

    torch.manual_seed(plan["seed"])
    model = AutoModelForSequenceClassification.from_pretrained(
        plan["model"]["path"], num_labels=len(labels), attn_implementation="eager", dtype=torch.float32
    )
    cfg = LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=lora["rank"],
        lora_alpha=lora["alpha"],
        lora_dropout=lora["dropout"],
        target_modules=suffixes(lora["targets"]),
        use_rslora=lora["rslora"],
        use_dora=lora["dora"],
    )
    model = get_peft_model(model, cfg)
    params = [p for p in model.parameters() if p.requires_grad]
    opt_t = torch.optim.AdamW(
        params, lr=opt["lr"], weight_decay=opt["weight_decay"], betas=(opt["beta1"], opt["beta2"]), eps=opt["eps"]
    )
    kind = {"Constant": "constant_with_warmup", "Linear": "linear", "Cosine": "cosine"}[sched["kind"]]
    scheduler = get_scheduler(kind, opt_t, num_warmup_steps=warmup, num_training_steps=steps)

    gen = torch.Generator().manual_seed(plan["seed"])
    order, started = [], time.perf_counter()
    model.train()
    for step in range(steps):
        if len(order) < batch:
            order += torch.randperm(len(train), generator=gen).tolist()
        chunk, order = [train[i] for i in order[:batch]], order[batch:]
        ids, mask, y = pad(chunk)
        loss = torch.nn.functional.cross_entropy(model(input_ids=ids, attention_mask=mask).logits, y)
        loss.backward()
        if train_cfg["clip"]:
            torch.nn.utils.clip_grad_norm_(params, train_cfg["clip"])
        opt_t.step()
        scheduler.step()
        opt_t.zero_grad()
    train_s = time.perf_counter() - started

    model.eval()
    pred = []
    with torch.no_grad():
        for i in range(0, len(test), 64):
            ids, mask, _ = pad(test[i : i + 64])
            pred += model(input_ids=ids, attention_mask=mask).logits.argmax(-1).tolist()
    gold = [r["class_label"] for r in test]
    result = {
        "recipe": os.path.basename(args.recipe),
        # What the test compares with the recipe's current Plan, so that a
        # changed recipe cannot be reported beside a stale reference.
        "settings": {
            "seed": plan["seed"],
            "rank": lora["rank"],
            "alpha": lora["alpha"],
            "dropout": lora["dropout"],
            "targets": suffixes(lora["targets"]),
            "optimizer": train_cfg["optimizer"],
            "schedule": sched,
            "length": train_cfg["length"],
            "batch": train_cfg["batch"],
            "accumulate": train_cfg["accumulate"],
            "max_len": train_cfg["max_len"],
            "clip": train_cfg["clip"],
        },
        "framework": f"torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}",
        "python": platform.python_version(),
        "steps": steps,
        "train_rows": len(train),
        "test_rows": len(test),
        "trainable": sum(p.numel() for p in params),
        "last_loss": loss.item(),
        "train_seconds": round(train_s, 1),
        "test": {
            "accuracy": sum(p == g for p, g in zip(pred, gold)) / len(gold),
            "f1": macro_f1(pred, gold, len(labels)),
        },
    }
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
