#!/usr/bin/env python3
"""Time from saving a recipe to `ft watch` having redrawn its diagnostics.

    python3 bench/watch_latency.py [FT_BINARY] [RECIPE]

Copies the recipe into a temporary folder (model and data paths made
absolute), starts `ft watch --no-clear` on it, then saves it 20 times (a
value changes each time, alternating plain writes and saves by rename) and
measures, for each save, the time until the next `── check` line appears.
Prints the median and the maximum."""
import os, re, statistics, subprocess, sys, tempfile, threading, time

repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ft = sys.argv[1] if len(sys.argv) > 1 else os.path.join(repo, "target/release/ft")
src = sys.argv[2] if len(sys.argv) > 2 else os.path.join(repo, "recipes/sentiment-minilm.ft")
text = open(src).read().replace('"../.cache', '"' + os.path.join(repo, ".cache"))
tmp = tempfile.mkdtemp()
recipe = os.path.join(tmp, "r.ft")
open(recipe, "w").write(text)

proc = subprocess.Popen([ft, "watch", "--no-clear", recipe], stdout=subprocess.PIPE, text=True)
checks, cond = [], threading.Condition()

def reader():
    for line in proc.stdout:
        if line.startswith("── check"):
            with cond:
                checks.append(time.perf_counter())
                cond.notify_all()

threading.Thread(target=reader, daemon=True).start()

def wait_for(n, timeout=10):
    with cond:
        cond.wait_for(lambda: len(checks) >= n, timeout)
        return checks[n - 1] if len(checks) >= n else None

wait_for(1)
lat = []
for i in range(20):
    body = re.sub(r"batch\s*=\s*\d+", f"batch = {16 + i + 1}", text)
    with cond:
        n = len(checks) + 1
    t0 = time.perf_counter()
    if i % 2:
        with open(recipe + ".swp", "w") as f:
            f.write(body)
        os.replace(recipe + ".swp", recipe)
    else:
        with open(recipe, "w") as f:
            f.write(body)
    t = wait_for(n)
    if t is not None:
        lat.append((t - t0) * 1000)
    else:
        print(f"save {i} ({'rename' if i % 2 else 'write'}): no redraw within 10 s", file=sys.stderr)
    time.sleep(0.3)
proc.terminate()
proc.wait()
print(f"saves: {len(lat)}/20 redrawn; save→redraw median {statistics.median(lat):.1f} ms, max {max(lat):.1f} ms "
      f"(debounce 50 ms included)")
