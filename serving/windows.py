"""Article -> token windows: the input of the article model (model_type "article"), one way for
training and serving.

The article's sentences are laid out in one token sequence, each sentence preceded by a marker
token (the tokenizer's classification token) that delimits it; the model pools each sentence's
vector from its own tokens (training/model/article_model.py, pool_units):

    [CLS] s1 [CLS] s2 [CLS] s3 ... [SEP]

An article longer than `max_length` tokens is cut into windows at sentence boundaries. Consecutive
windows share two sentences, and each sentence is scored from the one window where it has the most
context on both sides (the larger of the two smaller sides, in tokens): the last sentence of a
window but one, and the second of the next, so every sentence but the article's first and last
sees at least one whole sentence on each side (the pair model's context), most of them many more.
A wider overlap would give edge sentences more context at the price of encoding more tokens twice. A sentence longer than `piece_budget` tokens is cut into pieces, each
with its own marker; the predictor keeps the highest piece score, as the pair model does with its
windows, so nothing is truncated silently.

Everything here depends on one article only: a sentence's score cannot depend on other articles.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from serving.errors import InputError
from serving.features import Encoder


@dataclass(frozen=True)
class Window:
    input_ids: list[int]
    markers: list[int]  # position of each unit's marker token in input_ids
    units: list[int]  # index into ArticleWindows.unit_sentence of each marker
    scored: list[bool]  # True where this window is the one that scores the unit


@dataclass(frozen=True)
class ArticleWindows:
    windows: list[Window]
    unit_sentence: list[int]  # sentence index of every unit (a sentence or a piece of a long one)
    n_sentences: int


class ArticleEncoder:
    """Tokenizes like the pair model's Encoder (same normalisation, same sanitising) and lays out windows."""

    def __init__(self, encoder: Encoder):
        if encoder.max_length < 16:
            raise InputError(f"max_length must be at least 16, got {encoder.max_length}")
        self.encoder = encoder
        self.max_length = encoder.max_length
        t = encoder.t
        if len(t.prefix) != 1:
            raise InputError("the article model needs a tokenizer with one leading special token ([CLS] or <s>)")
        self.marker = t.prefix[0]
        self.end = list(t.single_suffix)
        self.pad_id = encoder.pad_id
        # Room for one unit next to its marker, and for the end token: a window always holds two pieces.
        self.piece_budget = max(4, (self.max_length - len(self.end)) // 2 - 1)

    @property
    def normalization(self) -> tuple[str, ...]:
        return self.encoder.normalization

    def encode_article(self, sentences: Sequence[str]) -> ArticleWindows:
        ids = self.encoder.tokenize(sentences) if sentences else []
        units: list[list[int]] = []
        owner: list[int] = []
        for k, sent in enumerate(ids):
            for i in range(0, max(len(sent), 1), self.piece_budget):
                units.append(sent[i : i + self.piece_budget])
                owner.append(k)
        return ArticleWindows(self._windows(units), owner, len(ids))

    def _spans(self, sizes: list[int]) -> list[tuple[int, int]]:
        """[start, end) unit ranges of the windows, covering every unit, consecutive ones overlapping."""
        room = self.max_length - len(self.end)
        spans: list[tuple[int, int]] = []
        start = 0
        while True:
            end, used = start, 0
            while end < len(sizes) and used + 1 + sizes[end] <= room:
                used += 1 + sizes[end]
                end += 1
            spans.append((start, end))
            if end >= len(sizes):
                return spans
            # Two units of overlap; a window of two units (long pieces) still moves on by one.
            start = max(end - 2, start + 1)

    def _windows(self, units: list[list[int]]) -> list[Window]:
        if not units:
            return []
        spans = self._spans([len(u) for u in units])
        best: dict[int, tuple[int, int]] = {}  # unit -> (context on its thinner side, window)
        layouts = []
        for w, (a, b) in enumerate(spans):
            tokens: list[int] = []
            markers: list[int] = []
            for u in range(a, b):
                markers.append(len(tokens))
                tokens.append(self.marker)
                tokens.extend(units[u])
            total = len(tokens)
            for u, pos in zip(range(a, b), markers):
                context = min(pos, total - pos - 1 - len(units[u]))
                if u not in best or context > best[u][0]:
                    best[u] = (context, w)
            layouts.append((tokens + self.end, markers, list(range(a, b))))
        return [
            Window(tokens, markers, us, [best[u][1] == w for u in us])
            for w, (tokens, markers, us) in enumerate(layouts)
        ]


def pad_windows(windows: Sequence[Window], pad_id: int) -> dict[str, np.ndarray]:
    """The article model's inputs, right-padded: input_ids, attention_mask, token_type_ids [batch, tokens]
    and marker_positions [batch, markers] (padding markers point at position 0)."""
    width = max(len(w.input_ids) for w in windows)
    n = max(len(w.markers) for w in windows)
    ids = np.full((len(windows), width), pad_id, dtype=np.int64)
    mask = np.zeros_like(ids)
    markers = np.zeros((len(windows), n), dtype=np.int64)
    for r, w in enumerate(windows):
        ids[r, : len(w.input_ids)] = w.input_ids
        mask[r, : len(w.input_ids)] = 1
        markers[r, : len(w.markers)] = w.markers
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids), "marker_positions": markers}
