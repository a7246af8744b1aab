#!/usr/bin/env python3
"""PyTorch side of scripts/gpu-check.sh: LoRA training steps of a BERT-family
classifier in eager PyTorch + PEFT, on the GPU or the CPU, with the recipe
that the script gives ft (LoRA r8 alpha16 dropout 0.05 on query,value, a new
2-label head, AdamW, batches of BATCH rows of the same TSV truncated to
MAX_LEN tokens and padded to the longest row, as ft pads).

Tokens/s counts real (unpadded) tokens, as ft's `tokens_per_s` does, over
the same window ft reports at its last step: ft restarts its window every 20
steps, so with STEPS > 20 the first 20 * floor((STEPS - 1) / 20) steps
(CUDA start-up, autotuning) are left out on both sides.

    .cache/venv-ref/bin/python scripts/reference/train_speed.py \\
        --model .cache/models/all-MiniLM-L6-v2 --data .cache/data/movie_snippets.tsv \\
        --device cuda --batch 16 --max-len 128 --steps 40

Prints one JSON object.
"""
import argparse
import csv
import json
import math
import os
import random
import sys
import time

import torch
from peft import LoraConfig, TaskType, get_peft_model
from tokenizers import Tokenizer
from transformers import AutoModelForSequenceClassification


def rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        for r in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            if len(r) == 3:
                yield r[2], 1 if float(r[1]) > 0 else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--device", choices=["cuda", "cpu"], required=True)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--max-len", type=int, default=128)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    args = ap.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: torch sees no CUDA device", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    torch.manual_seed(0)

    tok = Tokenizer.from_file(os.path.join(args.model, "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(args.max_len)
    data = list(rows(args.data))
    random.Random(0).shuffle(data)

    model = AutoModelForSequenceClassification.from_pretrained(
        args.model, num_labels=2, attn_implementation="eager", dtype=torch.float32
    )
    cfg = LoraConfig(
        task_type=TaskType.SEQ_CLS, r=8, lora_alpha=16, lora_dropout=0.05, target_modules=["query", "value"]
    )
    model = get_peft_model(model, cfg).to(dev)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)

    def batch(i):
        chunk = [data[(i * args.batch + j) % len(data)] for j in range(args.batch)]
        enc = tok.encode_batch([t for t, _ in chunk])
        width = max(len(e.ids) for e in enc)
        ids = torch.zeros(args.batch, width, dtype=torch.long)
        mask = torch.zeros(args.batch, width, dtype=torch.long)
        for r, e in enumerate(enc):
            ids[r, : len(e.ids)] = torch.tensor(e.ids)
            mask[r, : len(e.ids)] = 1
        labels = torch.tensor([l for _, l in chunk])
        return ids.to(dev), mask.to(dev), labels.to(dev)

    skip = 20 * ((args.steps - 1) // 20)
    tokens, start, losses = 0, None, []
    for step in range(args.steps):
        if step == skip:
            if args.device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        ids, mask, labels = batch(step)
        loss = torch.nn.functional.cross_entropy(model(input_ids=ids, attention_mask=mask).logits, labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())  # synchronizes with the GPU
        if step >= skip:
            tokens += int(mask.sum())
    elapsed = time.perf_counter() - start
    if not all(math.isfinite(l) for l in losses):
        print(f"error: non-finite loss: {losses}", file=sys.stderr)
        return 1
    print(
        json.dumps(
            {
                "device": torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu",
                "torch": torch.__version__,
                "steps": args.steps,
                "timed_steps": args.steps - skip,
                "tokens_per_s": tokens / elapsed,
                "ms_per_step": 1000 * elapsed / (args.steps - skip),
                "first_loss": losses[0],
                "last_loss": losses[-1],
                "trainable": sum(p.numel() for p in params),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
