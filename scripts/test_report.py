#!/usr/bin/env python3
"""The table at the end of scripts/test.sh: each phase's time and outcome,
every test binary's time and counts (slowest first), and a closing line
`N passed, M failed, K skipped` that names each skipped and failed test.

Reads the folder test.sh writes: `start` (epoch seconds), `phases.tsv`
(name, seconds, exit status), `artifacts.jsonl` (cargo's JSON messages of
the test build, which name each executable's source) and `tests.log`
(cargo test's output). Exits 1 when a binary stopped without a result
(a crash), which cargo alone reports only as an exit status.
"""

import json
import os
import re
import sys
import time

RESULT = re.compile(
    r"test result: (\w+)\. (\d+) passed; (\d+) failed; (\d+) ignored; "
    r"\d+ measured; \d+ filtered out; finished in ([\d.]+)s"
)
RUNNING = re.compile(r"^\s*Running (.+) \((.+)\)$")
DOCTESTS = re.compile(r"^\s*Doc-tests (\S+)$")
IGNORED = re.compile(r"^test (.+?) \.\.\. ignored(?:, (.*))?$")
FAILED = re.compile(r"^test (.+?) \.\.\. FAILED$")


def clock(seconds):
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def sources(folder, root):
    """Executable file name -> its test target's source, from the repo root."""
    names = {}
    path = os.path.join(folder, "artifacts.jsonl")
    if not os.path.exists(path):
        return names
    with open(path) as f:
        for line in f:
            try:
                m = json.loads(line)
            except ValueError:
                continue
            exe = m.get("executable")
            if m.get("reason") != "compiler-artifact" or not exe:
                continue
            src = os.path.relpath(m["target"]["src_path"], root)
            names[os.path.basename(exe)] = src
    return names


def binaries(folder, names):
    """Each test binary's header, time, counts, skipped and failed tests."""
    runs = []
    path = os.path.join(folder, "tests.log")
    if not os.path.exists(path):
        return runs
    current = None
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            m = RUNNING.match(line)
            d = DOCTESTS.match(line)
            if m or d:
                if m:
                    exe = os.path.basename(m.group(2))
                    label = names.get(exe, m.group(1))
                else:
                    label = f"{d.group(1)}: doc-tests"
                current = {"label": label, "result": None, "skipped": [], "failed": []}
                runs.append(current)
                continue
            if current is None:
                continue
            if m := IGNORED.match(line):
                current["skipped"].append((m.group(1), m.group(2) or "ignored"))
            elif m := FAILED.match(line):
                current["failed"].append(m.group(1))
            elif m := RESULT.search(line):
                current["result"] = {
                    "passed": int(m.group(2)),
                    "failed": int(m.group(3)),
                    "ignored": int(m.group(4)),
                    "seconds": float(m.group(5)),
                }
    return runs


def main():
    folder = sys.argv[1]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(folder, "start")) as f:
        total = time.time() - int(f.read().strip())

    phases = {}
    path = os.path.join(folder, "phases.tsv")
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                name, seconds, status = line.rstrip("\n").split("\t")
                p = phases.setdefault(name, [0, 0])
                p[0] += int(seconds)
                p[1] = p[1] or int(status)

    runs = binaries(folder, sources(folder, root))
    crashed = [r for r in runs if r["result"] is None]
    passed = sum(r["result"]["passed"] for r in runs if r["result"])
    failed = sum(r["result"]["failed"] for r in runs if r["result"])
    skipped = [(r["label"], n, why) for r in runs for n, why in r["skipped"]]

    width = max([len(n) for n in phases] + [len(r["label"]) + 2 for r in runs] + [5])
    print()
    print(f"{'phase':<{width}}  {'time':>6}  result")
    for name, (seconds, status) in phases.items():
        print(f"{name:<{width}}  {clock(seconds):>6}  {'ok' if status == 0 else f'FAILED (exit {status})'}")
        if name == "tests":
            timed = sorted(runs, key=lambda r: -(r["result"] or {"seconds": 1e9})["seconds"])
            for r in timed:
                res = r["result"]
                if res is None:
                    print(f"  {r['label']:<{width - 2}}  {'':>6}  stopped without a result")
                    continue
                counts = f"{res['passed']} passed"
                if res["failed"]:
                    counts += f", {res['failed']} FAILED"
                if res["ignored"]:
                    counts += f", {res['ignored']} skipped"
                print(f"  {r['label']:<{width - 2}}  {clock(res['seconds']):>6}  {counts}")
    print(f"{'total':<{width}}  {clock(total):>6}")
    print()
    for label, name, why in skipped:
        print(f"skipped: {label}: {name} ({why})")
    for r in runs:
        for name in r["failed"]:
            print(f"FAILED: {r['label']}: {name}")
    for r in crashed:
        print(f"FAILED: {r['label']}: the binary stopped without a result")
    print(f"{passed} passed, {failed} failed, {len(skipped)} skipped")
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
