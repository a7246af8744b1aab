#!/usr/bin/env bash
# The GPU check: trains a short LoRA recipe with `backend = cuda` with a
# CUDA build of ft, checks the run folder, and compares ft's
# tokens/s with eager PyTorch + PEFT on the same GPU, printing a table.
# With --tests, first runs the generic-path tests (tests/generic_backend.rs)
# built with CUDA: every model family × PEFT method × objective trained on
# CUDA and on ft's CPU kernels, compared step by step.
#
#   cargo build --release --features cuda     # beforehand, on the GPU machine
#   cargo test --release --features cuda --test generic_backend --no-run
#   scripts/gpu-check.sh [--steps N] [--model DIR --data TSV] [--ft BINARY]
#                        [--tests TEST_BINARY]
#
# `--cpu` runs exactly the same steps on the CPU (any build of ft), so that
# everything the GPU check runs is exercised on machines without a GPU:
#
#   scripts/gpu-check.sh --cpu --ft target/debug/ft --steps 4
#
# Defaults: MiniLM (scripts/fetch-assets.sh) on the GPU, the quickstart's
# tiny BERT (in the repository) with --cpu; 40 steps on the GPU, so both
# sides report steps 21–40 (after start-up and autotuning).
# Needs .cache/venv-ref (torch, transformers, peft) for the PyTorch side.
# Exits 2 when no GPU is present (without --cpu), 1 when a check fails.
# (`--tests` with --cpu runs a test binary built without CUDA: Burn's own
# operations on the CPU against ft's kernels.)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

device=cuda
steps=""
model=""
data=""
ft="${CARGO_TARGET_DIR:-$root/target}/release/ft"
python="$root/.cache/venv-ref/bin/python"
tests=""
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu) device=cpu ;;
    --steps) steps="$2"; shift ;;
    --model) model="$2"; shift ;;
    --data) data="$2"; shift ;;
    --ft) ft="$2"; shift ;;
    --python) python="$2"; shift ;;
    --tests) tests="$2"; shift ;;
    -h|--help) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown argument \`$1\` (see --help)" >&2; exit 2 ;;
  esac
  shift
done

fail() { echo "gpu-check: FAILED: $*" >&2; exit 1; }

if [ "$device" = cuda ]; then
  if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
    echo "error: no NVIDIA GPU found (\`nvidia-smi -L\` lists none): this check needs one." >&2
    echo "       \`scripts/gpu-check.sh --cpu\` runs the same steps on the CPU." >&2
    exit 2
  fi
  : "${steps:=40}"
  : "${model:=$root/.cache/models/all-MiniLM-L6-v2}"
  : "${data:=$root/.cache/data/movie_snippets.tsv}"
else
  : "${steps:=4}"
  : "${model:=$root/recipes/models/tiny-sentiment}"
  : "${data:=$root/recipes/data/quickstart-snippets.tsv}"
fi
[ -x "$ft" ] || fail "no ft binary at $ft: build it first (cargo build --release --features cuda) or pass --ft"
[ -x "$python" ] || fail "no Python at $python (the reference venv with torch, transformers and peft)"
[ -f "$model/config.json" ] || fail "no model at $model (scripts/fetch-assets.sh fetches MiniLM)"
[ -f "$data" ] || fail "no data at $data"
model="$(cd "$model" && pwd)"
data="$(cd "$(dirname "$data")" && pwd)/$(basename "$data")"

if [ -n "$tests" ]; then
  [ -x "$tests" ] || fail "no test binary at $tests"
  echo "gpu-check: the generic-path tests ($(basename "$tests"))" >&2
  # The tests find their assets and fixtures from the repository root.
  (cd "$root" && "$tests" --test-threads 1) >&2 || fail "the generic-path tests failed"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/ft-gpu-check.XXXXXX")"
trap 'rm -rf "$work"' EXIT
batch=16
max_len=128
# The recipe: LoRA on a new 2-label head, the same settings as the
# PyTorch worker's (constant learning rate, clipping at 1.0); no evaluation
# during training, the final one on a small test split.
cat > "$work/check.ft" <<EOF
model encoder = hf("$model") {
  head = classify(labels = ["negative", "positive"])
}

dataset reviews = tsv("$data", columns = ["id", "score", "text"]) {
  input = "{text}"
  label = if score > 0 then "positive" else "negative"
  split = { train = 90%, test = 10%, seed = 42 }
}

peft lora {
  rank    = 8
  alpha   = 16
  dropout = 0.05
  targets = [query, value]
}

train {
  steps      = $steps
  batch      = $batch
  max_len    = $max_len
  optimizer  = adamw(lr = 2e-4, weight_decay = 0.01)
  schedule   = constant
  clip       = 1.0
  eval_every = $((steps + 1))
  backend    = $device
}

evaluate { on = test, metrics = [accuracy] }
EOF

echo "gpu-check: ft run, backend = $device ($steps steps, batch $batch × max_len $max_len, $(basename "$model"))" >&2
"$ft" check "$work/check.ft" >&2 || fail "the check recipe does not check"
start=$(date +%s)
"$ft" run "$work/check.ft" --runs "$work/runs" --no-cache --quiet --format json \
  > "$work/events.jsonl" || fail "ft run (backend = $device) exited with $?"
ft_wall=$(( $(date +%s) - start ))
run_dir="$(find "$work/runs" -mindepth 2 -maxdepth 2 -type d -name '[0-9]*' | sort | tail -n 1)"
[ -n "$run_dir" ] || fail "ft run wrote no run folder under $work/runs"

echo "gpu-check: PyTorch eager ($device)" >&2
"$python" scripts/reference/train_speed.py --model "$model" --data "$data" --device "$device" \
  --batch "$batch" --max-len "$max_len" --steps "$steps" > "$work/torch.json" \
  || fail "the PyTorch reference exited with $?"

# Checks on the run folder, then the table.
"$python" - "$run_dir" "$work/torch.json" "$device" "$steps" "$ft_wall" <<'EOF'
import json, math, os, sys

run, torch_json, device, steps, ft_wall = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
def check(ok, what):
    if not ok:
        sys.exit(f"gpu-check: FAILED: {what}")

plan = json.load(open(os.path.join(run, "plan.json")))
check(plan["train"]["device"].lower() == device, f"plan.json says device {plan['train']['device']}, not {device}")
lines = [json.loads(l) for l in open(os.path.join(run, "metrics.jsonl"))]
train = [l for l in lines if l.get("split") == "train"]
check(len(train) == steps, f"{len(train)} train steps in metrics.jsonl, expected {steps}")
check(all(math.isfinite(l["loss"]) and math.isfinite(l["grad_norm"]) for l in train), "a non-finite loss or gradient norm")
final = [l for l in lines if l.get("final")]
check(final, "no final evaluation in metrics.jsonl")
check(os.path.getsize(os.path.join(run, "adapter", "adapter_model.safetensors")) > 0, "no adapter written")
summary = json.load(open(os.path.join(run, "summary.json")))
torch = json.load(open(torch_json))

ft_tps = train[-1]["tokens_per_s"]
acc = final[0]["metrics"].get("accuracy")
print(f"device: {torch['device']} (torch {torch['torch']}); {steps} steps, tokens/s over steps {steps - torch['timed_steps'] + 1}–{steps}")
print()
print("| | tokens/s | first loss | last loss | notes |")
print("|---|---|---|---|---|")
print(f"| ft ({device}) | {ft_tps:,.0f} | {train[0]['loss']:.4f} | {train[-1]['loss']:.4f} | run {ft_wall} s in all; test accuracy {acc:.3f} |")
print(f"| PyTorch eager + PEFT ({device}) | {torch['tokens_per_s']:,.0f} | {torch['first_loss']:.4f} | {torch['last_loss']:.4f} | {torch['ms_per_step']:.1f} ms/step, {torch['trainable']:,} trainable |")
print()
print(f"ft / PyTorch tokens/s: {ft_tps / torch['tokens_per_s']:.2f}")
EOF
echo "gpu-check: passed" >&2
