#!/usr/bin/env python3
"""Forward-pass benchmark of ft (Burn, CPU) against PyTorch on the real models.

Both sides run as long-lived workers fed `run` requests alternately
(ft, torch, ft, torch, ...) so that machine noise hits both equally; we
report medians, the ft/torch ratio, load time and peak RSS (VmHWM).

    cargo build --release -p ft-runtime --example bench_worker
    .cache/venv-ref/bin/python bench/models.py [--reps 7] [--threads 2]
"""
import argparse
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = {
    "minilm": (os.path.join(ROOT, ".cache/models/all-MiniLM-L6-v2"), 16, 128),
    "smollm2": (os.path.join(ROOT, ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"), 4, 128),
}


class Worker:
    def __init__(self, cmd, env):
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        line = self.p.stdout.readline().split()
        assert line and line[0] == "ready", f"{cmd[0]} failed to start"
        self.load_s = float(line[1])

    def run(self):
        self.p.stdin.write("run\n")
        self.p.stdin.flush()
        ms, checksum = self.p.stdout.readline().split()
        return float(ms), float(checksum)

    def peak_rss_mib(self):
        with open(f"/proc/{self.p.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def close(self):
        self.p.stdin.write("quit\n")
        self.p.stdin.flush()
        self.p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--profile", default="release", help="cargo profile directory the worker was built in (release or debug)")
    ap.add_argument("--target-dir", default=os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")))
    args = ap.parse_args()
    ft_bin = os.path.join(args.target_dir, args.profile, "examples/bench_worker")
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads), OMP_NUM_THREADS=str(args.threads))
    print(f"| model | batch × seq | ft forward (median) | PyTorch forward (median) | ft / PyTorch | ft load | PyTorch load | ft peak RSS | PyTorch peak RSS |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, (path, batch, seq) in MODELS.items():
        argv = [name, path, str(batch), str(seq)]
        ft = Worker([ft_bin, *argv], env)
        torch = Worker([sys.executable, os.path.join(ROOT, "bench/torch_worker.py"), *argv, str(args.threads)], env)
        ft.run(), torch.run()  # warm-up
        ft_ms, torch_ms = [], []
        for _ in range(args.reps):
            ms, s_ft = ft.run()
            ft_ms.append(ms)
            ms, s_torch = torch.run()
            torch_ms.append(ms)
        a, b = statistics.median(ft_ms), statistics.median(torch_ms)
        print(
            f"| {name} | {batch} × {seq} | {a:.0f} ms | {b:.0f} ms | {a / b:.2f} | {ft.load_s:.2f} s | "
            f"{torch.load_s:.2f} s | {ft.peak_rss_mib():.0f} MiB | {torch.peak_rss_mib():.0f} MiB |",
            flush=True,
        )
        print(f"<!-- {name}: output sums ft {s_ft:.6g} torch {s_torch:.6g}; ft runs {ft_ms}; torch runs {torch_ms} -->")
        ft.close()
        torch.close()


if __name__ == "__main__":
    main()
