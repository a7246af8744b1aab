#!/usr/bin/env python3
"""Training-step time and peak memory, ft against PyTorch + PEFT, same run.

LoRA r8 alpha16 (dropout 0.1) on the attention query and value
projections, AdamW lr 1e-4, f32 on the CPU: all-MiniLM-L6-v2 with a new
2-label classifier (batch 16 x 128) and SmolLM2-135M with the causal LM
loss (batch 4 x 128). Both sides are long-lived workers, loaded once, one
warm-up step each, then driven alternately (ft step, torch step, ft, ...)
so that machine noise hits both; each pair gives a ratio. Reported: median
step of each, median of the per-pair ratios, peak RSS (VmHWM) of each
worker, the CPU time (user + system, all threads) of each step of each
worker and the median of their per-pair ratios (a loaded machine
stretches the wall time of a step more than its CPU time, though threads
that spin while waiting still count), the machine's f32 matmul rate
(torch, 2048^2, measured at the start and end of the run) and the load
average.

    cargo build --release -p ft-runtime --example step_worker
    .cache/venv-ref/bin/python bench/step.py [--steps 5] [--threads 2] [--models minilm,smollm2]
        [--precision f32|bf16] [--torch-precision f32|bf16] [--checkpointing] [--shape BATCHxSEQ]

`--precision bf16` runs ft as a recipe with `precision = bf16` (frozen-weight
products in bfloat16 on AMX); `--torch-precision bf16` runs the reference
under `torch.autocast("cpu", dtype=torch.bfloat16)`, PyTorch's own CPU
bf16 mode (oneDNN, AMX where the CPU has it), for the like-for-like pair.
`--checkpointing` recomputes the layers in the backward pass on both sides
(ft's `gradient_checkpointing = true`; transformers'
`gradient_checkpointing_enable()`, non-reentrant); `--shape` replaces the
models' batch × seq (long sequences, where activations dominate memory).
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = {
    "minilm": (os.path.join(ROOT, ".cache/models/all-MiniLM-L6-v2"), 16, 128),
    "smollm2": (os.path.join(ROOT, ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"), 4, 128),
}


def vm_hwm_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def torch_worker(kind, path, batch, seq, threads, precision, checkpointing=False):
    """Same protocol as runtime/examples/step_worker.rs."""
    import contextlib

    import torch

    torch.set_num_threads(threads)
    t = time.perf_counter()
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    torch.manual_seed(0)
    ids = (1000 + (torch.arange(batch * seq) * 7919) % 20000).reshape(batch, seq)
    if kind == "minilm":
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2, attn_implementation="eager")
        cfg = LoraConfig(task_type=TaskType.SEQ_CLS, r=8, lora_alpha=16, lora_dropout=0.1, target_modules=["query", "value"])
        labels = torch.arange(batch) % 2

        def loss_of(m):
            return torch.nn.functional.cross_entropy(m(input_ids=ids).logits, labels)

    else:
        model = AutoModelForCausalLM.from_pretrained(
            os.path.dirname(path), gguf_file=os.path.basename(path), dtype=torch.float32
        )
        cfg = LoraConfig(task_type=TaskType.CAUSAL_LM, r=8, lora_alpha=16, lora_dropout=0.1, target_modules=["q_proj", "v_proj"])

        def loss_of(m):
            return m(input_ids=ids, labels=ids).loss

    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model = get_peft_model(model, cfg)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    print(f"ready {time.perf_counter() - t:.3f} {sum(p.numel() for p in params)}", flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "step":
            t = time.perf_counter()
            if precision == "bf16":
                ctx = torch.autocast("cpu", dtype=torch.bfloat16)
            else:
                ctx = contextlib.nullcontext()
            with ctx:
                loss = loss_of(model)
            loss.backward()
            opt.step()
            opt.zero_grad()
            print(f"{(time.perf_counter() - t) * 1000:.3f} {loss.item()}", flush=True)
        elif cmd == "rss":
            print(vm_hwm_kib(), flush=True)
        else:
            break


class Worker:
    def __init__(self, cmd, env):
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        line = self.p.stdout.readline().split()
        assert line and line[0] == "ready", f"{cmd} failed to start"
        self.load_s, self.trainable = float(line[1]), int(line[2])

    def ask(self, cmd):
        self.p.stdin.write(cmd + "\n")
        self.p.stdin.flush()
        return self.p.stdout.readline().split()

    def cpu_s(self):
        """User + system CPU seconds of the worker so far (all its threads)."""
        with open(f"/proc/{self.p.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def step(self):
        before = self.cpu_s()
        ms, loss = self.ask("step")
        self.last_cpu_ms = (self.cpu_s() - before) * 1000
        return float(ms), float(loss)

    def close(self):
        rss = int(self.ask("rss")[0]) / 1024
        self.p.stdin.write("quit\n")
        self.p.stdin.flush()
        self.p.wait()
        return rss


def matmul_gflops(threads):
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    times = []
    for _ in range(5):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * 2048**3 / statistics.median(times) / 1e9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", default="minilm,smollm2")
    ap.add_argument("--target-dir", default=os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")))
    ap.add_argument("--ft-bin", help="the step_worker binary (default: TARGET_DIR/release/examples/step_worker)")
    ap.add_argument("--precision", choices=["f32", "bf16"], default="f32", help="ft's precision (the recipe's)")
    ap.add_argument("--torch-precision", choices=["f32", "bf16"], default="f32", help="bf16: torch.autocast to bfloat16")
    ap.add_argument("--checkpointing", action="store_true", help="recompute the layers in the backward pass (both sides)")
    ap.add_argument("--shape", help="BATCHxSEQ instead of each model's default")
    ap.add_argument("--worker", nargs=4, metavar=("KIND", "PATH", "BATCH", "SEQ"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        kind, path, batch, seq = args.worker
        return torch_worker(kind, path, int(batch), int(seq), args.threads, args.torch_precision, args.checkpointing)

    ft_bin = args.ft_bin or os.path.join(args.target_dir, "release/examples/step_worker")
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads), OMP_NUM_THREADS=str(args.threads))
    gflops_start, load_start = matmul_gflops(args.threads), os.getloadavg()
    rows = []
    for name in args.models.split(","):
        path, batch, seq = MODELS[name]
        if args.shape:
            batch, seq = (int(x) for x in args.shape.split("x"))
        argv = [name, path, str(batch), str(seq)]
        mode = args.precision + ("+recompute" if args.checkpointing else "")
        ft = Worker([ft_bin, *argv, mode], env)
        pt = Worker([sys.executable, os.path.abspath(__file__), "--threads", str(args.threads),
                     "--torch-precision", args.torch_precision, *(["--checkpointing"] if args.checkpointing else []),
                     "--worker", *argv], env)
        ft.step(), pt.step()  # warm-up
        ft_ms, pt_ms, ratios = [], [], []
        ft_cpu, pt_cpu, cpu_ratios = [], [], []
        for _ in range(args.steps):
            a, ft_loss = ft.step()
            b, pt_loss = pt.step()
            ft_ms.append(a)
            pt_ms.append(b)
            ratios.append(a / b)
            ft_cpu.append(ft.last_cpu_ms)
            pt_cpu.append(pt.last_cpu_ms)
            cpu_ratios.append(ft.last_cpu_ms / pt.last_cpu_ms)
        ft_rss, pt_rss = ft.close(), pt.close()
        rows.append(
            f"| {name} | {mode} / {args.torch_precision}{'+recompute' if args.checkpointing else ''} | {batch} × {seq} | {ft.trainable:,} / {pt.trainable:,} | {statistics.median(ft_ms):.0f} ms | "
            f"{statistics.median(pt_ms):.0f} ms | {statistics.median(ratios):.2f} | {ft_rss:.0f} MiB | {pt_rss:.0f} MiB | "
            f"{ft_rss / pt_rss:.2f} | {statistics.median(ft_cpu):.0f} / {statistics.median(pt_cpu):.0f} ms | "
            f"{statistics.median(cpu_ratios):.2f} |"
        )
        print(f"<!-- {name}: ft {[round(x) for x in ft_ms]} (last loss {ft_loss:.4f}); "
              f"torch {[round(x) for x in pt_ms]} (last loss {pt_loss:.4f}) -->", flush=True)
    gflops_end, load_end = matmul_gflops(args.threads), os.getloadavg()
    print(f"f32 matmul 2048²: {gflops_start:.0f} GFLOP/s at the start, {gflops_end:.0f} at the end "
          f"({args.threads} threads); load average {load_start[0]:.2f} at the start, {load_end[0]:.2f} at the end")
    print()
    print("| model | precision ft / PyTorch | batch × seq | trainable ft / PEFT | ft step (median) | PyTorch step (median) | ft / PyTorch (median of pairs) "
          "| ft peak RSS | PyTorch peak RSS | RSS ratio | CPU time per step ft / PyTorch (medians) | CPU-time ratio (median of pairs) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(r)


if __name__ == "__main__":
    sys.exit(main())
