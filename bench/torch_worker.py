"""PyTorch side of bench/models.py; same protocol as runtime/examples/bench_worker.rs."""
import sys
import time

import torch

kind, path, batch, seq = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(int(sys.argv[5]) if len(sys.argv) > 5 else torch.get_num_threads())
vocab = 30522 if kind == "minilm" else 49152
state, ids = 12345, []
for _ in range(batch * seq):
    state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
    ids.append((state >> 33) % (vocab - 1000) + 1000)
ids = torch.tensor(ids).reshape(batch, seq)

t = time.perf_counter()
from transformers import AutoModel, AutoModelForCausalLM  # noqa: E402 (import is part of load time)

if kind == "minilm":
    model = AutoModel.from_pretrained(path, dtype=torch.float32).eval()
else:
    import os

    model = AutoModelForCausalLM.from_pretrained(
        os.path.dirname(path), gguf_file=os.path.basename(path), dtype=torch.float32
    ).eval()
print(f"ready {time.perf_counter() - t:.3f}", flush=True)
for line in sys.stdin:
    if line.strip() != "run":
        break
    t = time.perf_counter()
    with torch.inference_mode():
        out = model(ids)
        s = (out.last_hidden_state if kind == "minilm" else out.logits).sum().item()
    print(f"{(time.perf_counter() - t) * 1000:.3f} {s}", flush=True)
