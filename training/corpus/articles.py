"""Labelled articles -> sentence records, the dataset the trainer reads.

A record: article id, index, text, start/end offsets into the bracket-free text, label,
and the neighbouring sentences. Sentences come from the one segmenter in serving/, with
each bracketed span kept whole.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from serving.batch.inputs import RawArticle, read_articles, strip_article
from serving.brackets import FormatError
from serving.bundle import LABELS
from serving.segment import Span, segment


@dataclass
class Sentence:
    start: int
    end: int
    text: str
    label: int  # index into LABELS


@dataclass
class Article:
    id: str
    text: str  # bracket-free
    sentences: list[Sentence]
    spans: list[tuple[int, int]]  # bracketed spans in `text`
    meta: dict = field(default_factory=dict)
    source: str = ""


def _label_of(s: Span, spans: Sequence[tuple[int, int]]) -> int:
    return int(any(a <= s.start and s.end <= b for a, b in spans))


def parse_article(raw: RawArticle) -> Article:
    if raw.sentences is not None:
        # Pre-split form: rebuild a text (sentences joined by a space) so offsets exist.
        parts, sents, pos = [], [], 0
        for s in raw.sentences:
            t = s["text"].strip()
            label = s.get("label", "reporting")
            label = LABELS.index(label) if isinstance(label, str) else int(label)
            sents.append(Sentence(pos, pos + len(t), t, label))
            parts.append(t)
            pos += len(t) + 1
        text = " ".join(parts)
        spans = [(s.start, s.end) for s in sents if s.label == 1]
        return Article(raw.id, text, sents, spans, raw.meta, raw.source)
    clean, spans = strip_article(raw)
    if not clean.strip():
        raise FormatError(raw.source, raw.line, "article has no text outside the brackets")
    sents = [Sentence(s.start, s.end, s.text, _label_of(s, spans)) for s in segment(clean, spans)]
    return Article(raw.id, clean, sents, spans, raw.meta, raw.source)


def load_articles(paths: Iterable[Path]) -> list[Article]:
    return [parse_article(r) for r in read_articles(paths)]


def alignment(articles: Sequence[Article]) -> dict:
    """How often the segmenter, not told where the brackets are, cuts exactly at them."""
    n_spans = aligned = 0
    n_bounds = matched = 0
    for a in articles:
        free = segment(a.text)
        free_pairs = {(s.start, s.end) for s in free}
        aligned += sum(sp in free_pairs for sp in a.spans)
        n_spans += len(a.spans)
        forced_ends = {s.end for s in a.sentences}
        free_ends = {s.end for s in free}
        n_bounds += len(forced_ends)
        matched += len(forced_ends & free_ends)
    return {
        "articles": len(articles),
        "inserted_spans": n_spans,
        "spans_aligned": aligned,
        "span_alignment_rate": aligned / n_spans if n_spans else 1.0,
        "boundary_agreement": matched / n_bounds if n_bounds else 1.0,
    }


def to_records(articles: Sequence[Article], context_width: int = 1) -> list[dict]:
    recs = []
    for a in articles:
        texts = [s.text for s in a.sentences]
        for i, s in enumerate(a.sentences):
            recs.append(
                {
                    "article_id": a.id,
                    "index": i,
                    "start": s.start,
                    "end": s.end,
                    "text": s.text,
                    "label": LABELS[s.label],
                    "prev": texts[max(0, i - context_width) : i],
                    "next": texts[i + 1 : i + 1 + context_width],
                    **{k: v for k, v in a.meta.items() if k in ("outlet", "split", "genre", "source", "style")},
                }
            )
    return recs


def data_hash(articles: Sequence[Article]) -> str:
    """sha256 over article ids, texts and labels: what a model was trained on."""
    h = hashlib.sha256()
    for a in sorted(articles, key=lambda a: a.id):
        h.update(
            json.dumps([a.id, a.text, [(s.start, s.end, s.label) for s in a.sentences]], ensure_ascii=False).encode(
                "utf-8"
            )
        )
    return h.hexdigest()


def split_articles(articles: Sequence[Article], dev_fraction: float, seed: int) -> tuple[list[Article], list[Article]]:
    """Article-level split: all sentences of an article land on the same side."""
    ids = sorted({a.id for a in articles})
    random.Random(seed).shuffle(ids)
    n_dev = max(1, round(dev_fraction * len(ids))) if dev_fraction > 0 and len(ids) > 1 else 0
    dev_ids = set(ids[:n_dev])
    return [a for a in articles if a.id not in dev_ids], [a for a in articles if a.id in dev_ids]
