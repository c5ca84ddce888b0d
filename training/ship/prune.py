"""Vocabulary pruning: keep the embedding rows the tokenizer can produce on Arabic news.

e5's XLM-R vocabulary has 250k pieces and its embedding matrix is three quarters of the model.
We keep the pieces that the tokenizer emits on a reference text (the whole SaudiNewsNet corpus,
our insertions, the project's own articles) plus every piece that is a single character, a digit
run, punctuation or short Latin, and remap the tokenizer and the matrix consistently.

Why predictions do not change on such text: a Unigram tokenizer picks the highest-scoring
segmentation. Every piece of the full vocabulary's best segmentation of a reference text is kept,
so that segmentation is still available, and nothing better can appear in a subset.

    mudraj prune runs/e5-small --out runs/e5-small-pruned
"""

from __future__ import annotations

import copy
import json
import re
import shutil
from pathlib import Path
from typing import Iterable

from tqdm import tqdm

from serving.batch.io import atomic_dir, atomic_write_json
from serving.errors import InputError
from serving.features import load_tokenizer
from serving.normalize import normalize

# Kept whatever the reference text says: single Arabic or ASCII characters, digit runs, short Latin
# pieces and punctuation, so unseen names and numbers still tokenize sensibly.
_ALWAYS = re.compile(r"^▁?(?:[\u0600-\u06FF]|[\x21-\x7e]|[0-9]+|[A-Za-z]{1,3}|[^\w\s]{1,3})$")


def reference_texts(corpus: Path | None, extra: Iterable[Path] = ()) -> Iterable[str]:
    from training.corpus.hosts import iter_corpus

    if corpus is not None:
        for host in iter_corpus(corpus):
            yield from host.paragraphs
    for path in extra:
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            yield line


def used_pieces(tokenizer_json: Path, texts: Iterable[str], normalization: list[str], batch: int = 2000) -> set[int]:
    tok = load_tokenizer(tokenizer_json)
    used: set[int] = set()
    buf: list[str] = []
    for t in tqdm(texts, desc="tokenizing reference text", unit=" paragraphs", mininterval=2):
        # Both as written and as normalised: prediction sees the normalised form.
        buf.append(t)
        buf.append(normalize(t, normalization))
        if len(buf) >= batch:
            for e in tok.encode_batch(buf, add_special_tokens=False):
                used.update(e.ids)
            buf.clear()
    for e in tok.encode_batch(buf, add_special_tokens=False):
        used.update(e.ids)
    return used


def prune_tokenizer(spec: dict, keep: list[int]) -> dict:
    """A tokenizer.json with only the kept Unigram pieces, in their old order."""
    if spec["model"]["type"] != "Unigram":
        raise InputError(f"vocabulary pruning supports Unigram tokenizers, not {spec['model']['type']}")
    new = copy.deepcopy(spec)
    old_vocab = spec["model"]["vocab"]
    remap = {old: new_id for new_id, old in enumerate(keep)}
    new["model"]["vocab"] = [old_vocab[i] for i in keep]
    new["model"]["unk_id"] = remap[spec["model"]["unk_id"]]
    for added in new.get("added_tokens", []):
        added["id"] = remap[added["id"]]
    post = new.get("post_processor") or {}

    def fix(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ("sep", "cls") and isinstance(v, list) and len(v) == 2 and isinstance(v[1], int):
                    node[k] = [v[0], remap[v[1]]]
                elif k == "ids" and isinstance(v, list):
                    node[k] = [remap[i] for i in v]
                else:
                    fix(v)
        elif isinstance(node, list):
            for x in node:
                fix(x)

    fix(post)
    return new


def prune(run_dir: Path, out: Path, corpus: Path | None, extra: Iterable[Path] = ()) -> dict:
    """Write a pruned copy of a training run (model + tokenizer), ready for `mudraj export`."""
    import torch

    from training.model.article_model import load_model

    run_dir, out = Path(run_dir), Path(out)
    run = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    spec = json.loads((run_dir / "tokenizer.json").read_text(encoding="utf-8"))
    used = used_pieces(run_dir / "tokenizer.json", reference_texts(corpus, extra), run["normalization"])
    specials = {a["id"] for a in spec.get("added_tokens", [])}
    always = {i for i, (piece, _) in enumerate(spec["model"]["vocab"]) if _ALWAYS.match(piece)}
    keep = sorted(used | specials | always | {spec["model"]["unk_id"]})
    model = load_model(run_dir / "model", run["config"].get("model_type", "pair"))
    old = model.get_input_embeddings().weight.data
    if old.shape[0] < len(spec["model"]["vocab"]):
        raise InputError(f"embedding matrix has {old.shape[0]} rows, tokenizer {len(spec['model']['vocab'])} pieces")
    emb = torch.nn.Embedding(len(keep), old.shape[1], padding_idx=None)
    emb.weight.data = old[torch.tensor(keep)].clone()
    model.set_input_embeddings(emb)
    model.config.vocab_size = len(keep)
    pad = spec["model"]["vocab"][model.config.pad_token_id][0] if model.config.pad_token_id is not None else None
    new_spec = prune_tokenizer(spec, keep)
    if pad is not None:
        model.config.pad_token_id = [p for p, _ in new_spec["model"]["vocab"]].index(pad)

    stats = {
        "vocab_before": len(spec["model"]["vocab"]),
        "vocab_after": len(keep),
        "used_on_reference": len(used),
        "kept_always": len(always - used),
    }
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp / "model")
        (tmp / "tokenizer.json").write_text(json.dumps(new_spec, ensure_ascii=False), encoding="utf-8")
        shutil.copyfile(run_dir / "dev.jsonl", tmp / "dev.jsonl")
        atomic_write_json(tmp / "run.json", {**run, "pruned_from": str(run_dir), "pruning": stats})
    return stats
