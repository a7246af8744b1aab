#!/usr/bin/env python3
"""Builds recipes/data/preferences.jsonl, a small preference set for the DPO
recipe, from the chatterbot-corpus conversations fetched by
scripts/fetch-assets.sh: `chosen` is a question's real answer, `rejected` the
answer to another question. Deterministic (fixed seed); BSD-licensed source.

Only single-line question/answer pairs are used (no YAML block scalars), so
a plain line reader is enough and no YAML package is needed."""
import glob, json, random, re, sys

def pairs(root):
    for f in sorted(glob.glob(f"{root}/*.yml")):
        conv = None
        for line in open(f, encoding="utf-8"):
            line = line.rstrip("\n")
            if m := re.match(r"^- - (.*)$", line):
                conv = [m.group(1)]
                yield conv
            elif (m := re.match(r"^  - (.*)$", line)) and conv is not None:
                conv.append(m.group(1))

def clean(s):
    return s.strip().strip("\"'")

root = sys.argv[1] if len(sys.argv) > 1 else ".cache/data/chatterbot"
out_path = sys.argv[2] if len(sys.argv) > 2 else "recipes/data/preferences.jsonl"
convs = list(pairs(root))  # complete every conversation before filtering
qa = [(clean(c[0]), clean(c[1])) for c in convs if len(c) >= 2]
qa = [(q, a) for q, a in qa if q and a and a not in "|>" and len(q) < 120 and len(a) < 160]
rng = random.Random(7)
rng.shuffle(qa)
qa = qa[:240]
with open(out_path, "w", encoding="utf-8") as f:
    for i, (q, a) in enumerate(qa):
        j = (i * 7 + 3) % len(qa)
        while qa[j][1] == a:
            j = (j + 1) % len(qa)
        f.write(json.dumps({"prompt": q, "chosen": a, "rejected": qa[j][1]}, ensure_ascii=False) + "\n")
print(f"wrote {len(qa)} pairs to {out_path}")
