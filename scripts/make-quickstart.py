"""Builds the quickstart's in-repo assets (committed; rerun only to change them):

- recipes/data/quickstart-snippets.tsv: every 4th row of the movie-review
  snippets of vaderSentiment 3.3.2 (MIT licence, C.J. Hutto), id/score/text.
- recipes/models/tiny-sentiment/: a tiny BERT (2 layers, hidden 64) with a
  WordPiece tokenizer trained on those snippets, randomly initialised with a
  fixed seed: config.json, model.safetensors, tokenizer.json.

Usage: .cache/venv-ref/bin/python scripts/make-quickstart.py
(needs scripts/fetch-assets.sh first, and torch, transformers, tokenizers).
"""

import pathlib

import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
from transformers import BertConfig, BertModel

root = pathlib.Path(__file__).resolve().parent.parent
src = root / ".cache/data/movie_snippets.tsv"
data = root / "recipes/data/quickstart-snippets.tsv"
out = root / "recipes/models/tiny-sentiment"
out.mkdir(parents=True, exist_ok=True)

rows = src.read_text(encoding="utf-8").splitlines()
kept = [r for i, r in enumerate(rows) if i % 4 == 0]
data.write_text("\n".join(kept) + "\n", encoding="utf-8")
texts = [r.split("\t")[2] for r in kept]

tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
tok.normalizer = normalizers.BertNormalizer(lowercase=True)
tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
tok.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=2000, special_tokens=special))
cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
tok.post_processor = processors.TemplateProcessing(
    single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
)
tok.save(str(out / "tokenizer.json"))

torch.manual_seed(0)
config = BertConfig(
    vocab_size=tok.get_vocab_size(),
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=128,
    max_position_embeddings=128,
    pad_token_id=0,
)
model = BertModel(config)
model.save_pretrained(out, safe_serialization=True)
print(f"{len(kept)} rows; vocab {tok.get_vocab_size()}; {sum(p.numel() for p in model.parameters())} parameters")
