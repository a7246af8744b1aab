"""Hugging Face `datasets.map` baseline for docs/benchmarks.md (issue 4).

Tokenizes the same data with the same fast tokenizers as
`cargo run --release -p ft-pipeline --example tokenize_bench` (which writes
them to /tmp/ft-bench/*.tokenizer.json first): movie snippets (the `text`
column, with special tokens, as the MiniLM classifier sees it) and aclsum
train+val+test (the multitask recipe's prompt template and the approach
summary as completion, EOS appended), from the files, batched map, no cache.

    .cache/venv-ref/bin/python bench/data_tokenize.py
"""

import os
import statistics
import sys
import time

import datasets
from transformers import PreTrainedTokenizerFast

ROOT = os.path.join(os.path.dirname(__file__), "..")
TOK = os.environ.get("OUT_DIR", "/tmp/ft-bench")
RUNS = 5

datasets.disable_caching()
datasets.disable_progress_bars()


def timed(label, run):
    times, rows, tokens = [], 0, 0
    for _ in range(RUNS):
        t = time.perf_counter()
        rows, tokens = run()
        times.append(time.perf_counter() - t)
    med = statistics.median(times)
    print(f"{label}: {rows} rows, {tokens} tokens; median {med:.3f} s over {RUNS} runs "
          f"→ {rows / med:.0f} rows/s, {tokens / med:.0f} tokens/s")


def movies():
    tok = PreTrainedTokenizerFast(tokenizer_file=f"{TOK}/movie_snippets.tokenizer.json")
    path = os.path.join(ROOT, ".cache/data/movie_snippets.tsv")

    def run():
        ds = datasets.load_dataset("csv", data_files=path, delimiter="\t",
                                   column_names=["id", "score", "text"],
                                   quoting=3, keep_in_memory=True)["train"]
        out = ds.map(lambda b: tok(b["text"]), batched=True, keep_in_memory=True)
        return len(out), sum(len(x) for x in out["input_ids"])

    timed("movie_snippets", run)


def aclsum():
    tok = PreTrainedTokenizerFast(tokenizer_file=f"{TOK}/aclsum.tokenizer.json")
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    files = [os.path.join(ROOT, f".cache/data/aclsum/{s}.jsonl") for s in ("train", "val", "test")]

    def render(b):
        prompts = [f'\nSummarize the approach of "{t}":\n{" ".join(s["abstract"])}\nApproach:\n'
                   for t, s in zip(b["title"], b["sentences"])]
        comps = [s["approach"] for s in b["summary"]]
        p = tok(prompts)["input_ids"]
        c = tok(comps, add_special_tokens=False)["input_ids"]
        ids = [x + y + [eos] for x, y in zip(p, c)]
        return {"input_ids": ids, "prompt_len": [len(x) for x in p]}

    def run():
        ds = datasets.load_dataset("json", data_files=files, keep_in_memory=True)["train"]
        out = ds.map(render, batched=True, keep_in_memory=True, remove_columns=ds.column_names)
        return len(out), sum(len(x) for x in out["input_ids"])

    timed("aclsum", run)


if __name__ == "__main__":
    print("datasets", datasets.__version__, "python", sys.version.split()[0])
    movies()
    aclsum()
