#!/usr/bin/env python3
"""Training-step time of each PEFT method on MiniLM, ft (Burn, NdArray CPU)
against PEFT on PyTorch: 2-label classifier, batch 16 x 128, AdamW, LoRA
dropout 0.1, same configurations on both sides, alternating ft and torch per
method so that machine noise hits both alike. Medians of STEPS steps after
one warm-up step.

    cargo build --release -p ft-runtime --example peft_step
    .cache/venv-ref/bin/python bench/peft_step.py [--steps 5] [--threads 2]
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

import torch
from peft import IA3Config, LoraConfig, PrefixTuningConfig, PromptTuningConfig, TaskType, get_peft_model
from transformers import AutoModelForSequenceClassification

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MINILM = os.path.join(ROOT, ".cache/models/all-MiniLM-L6-v2")
FT = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release/examples/peft_step")

CONFIGS = {
    "full": None,
    "lora": lambda: LoraConfig(task_type=TaskType.SEQ_CLS, r=8, lora_alpha=16, lora_dropout=0.1, target_modules=["query", "value"]),
    "dora": lambda: LoraConfig(
        task_type=TaskType.SEQ_CLS, r=8, lora_alpha=16, lora_dropout=0.1, target_modules=["query", "value"], use_dora=True
    ),
    "ia3": lambda: IA3Config(task_type=TaskType.SEQ_CLS, target_modules=["key", "value", "output.dense"], feedforward_modules=["output.dense"]),
    "prompt": lambda: PromptTuningConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=20),
    # PEFT cannot run prefix tuning on BERT with transformers 5.x.
    "prefix": "unsupported",
    # No bottleneck adapters in PEFT.
    "houlsby": "unsupported",
}


def torch_step_ms(name, steps):
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(MINILM, num_labels=2, attn_implementation="eager")
    cfg = CONFIGS[name]
    if cfg == "unsupported":
        return None, None
    if cfg is not None:
        model = get_peft_model(model, cfg())
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    ids = (1000 + (torch.arange(16 * 128) * 7919) % 20000).reshape(16, 128)
    labels = torch.arange(16) % 2
    times = []
    for step in range(steps + 1):
        t = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(input_ids=ids).logits, labels)
        loss.backward()
        opt.step()
        opt.zero_grad()
        if step > 0:
            times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), sum(p.numel() for p in params)


def ft_step_ms(name, steps, threads):
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    out = subprocess.run([FT, name, str(steps)], capture_output=True, text=True, env=env, check=True).stdout.split()
    return float(out[1]), int(out[2])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print("| method | ft ms/step | PEFT ms/step | ft / PEFT | trainable (ft) | trainable (PEFT) |")
    print("|---|---|---|---|---|---|")
    for name in CONFIGS:
        ft_ms, ft_n = ft_step_ms(name, args.steps, args.threads)
        t_ms, t_n = torch_step_ms(name, args.steps)
        ratio = f"{ft_ms / t_ms:.2f}" if t_ms else "—"
        t_cell = f"{t_ms:.0f}" if t_ms else "—"
        t_n = f"{t_n:,}" if t_n else "—"
        print(f"| {name} | {ft_ms:.0f} | {t_cell} | {ratio} | {ft_n:,} | {t_n} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
