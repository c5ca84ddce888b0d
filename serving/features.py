"""Sentence + neighbours -> token ids: the model input, built one way for training and serving.

A sentence is the first segment; its neighbouring sentences (up to `context_width` on each
side) are the second segment, left context then a separator then right context, because an
inserted sentence often breaks the flow of its neighbours. A sentence longer than its token
budget is cut into windows; each window is one model input and the predictor keeps the
highest score, so nothing is truncated silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from tokenizers import Tokenizer

from serving.errors import InputError
from serving.normalize import check_steps, normalize, sanitize


@dataclass(frozen=True)
class Feature:
    sentence: int  # index of the sentence within its article
    window: int  # 0 for the first (or only) window of the sentence
    input_ids: list[int]
    token_type_ids: list[int]


@dataclass(frozen=True)
class _Template:
    """Special tokens around one or two segments, read off the tokenizer's post-processor."""

    prefix: list[int]
    middle: list[int]
    suffix: list[int]
    prefix_types: list[int]
    middle_types: list[int]
    suffix_types: list[int]
    first_type: int
    second_type: int
    single_suffix: list[int]
    single_suffix_types: list[int]


def _template(tok: Tokenizer) -> _Template:
    a = tok.encode("a", add_special_tokens=False)
    b = tok.encode("b", add_special_tokens=False)
    pair = tok.post_process(a, b, add_special_tokens=True)
    single = tok.post_process(tok.encode("a", add_special_tokens=False), None, add_special_tokens=True)
    # Content positions are the non-special ones: the first len(a) are segment A, then B.
    content = [i for i, m in enumerate(pair.special_tokens_mask) if not m]
    if len(content) != len(a.ids) + len(b.ids) or not a.ids or not b.ids:
        raise InputError("tokenizer has no pair post-processor; cannot build sentence+context inputs")
    first, second = content[: len(a.ids)], content[len(a.ids) :]
    ids, types = pair.ids, pair.type_ids
    s_first = [i for i, m in enumerate(single.special_tokens_mask) if not m]
    return _Template(
        prefix=ids[: first[0]],
        middle=ids[first[-1] + 1 : second[0]],
        suffix=ids[second[-1] + 1 :],
        prefix_types=types[: first[0]],
        middle_types=types[first[-1] + 1 : second[0]],
        suffix_types=types[second[-1] + 1 :],
        first_type=types[first[0]],
        second_type=types[second[0]],
        single_suffix=single.ids[s_first[-1] + 1 :],
        single_suffix_types=single.type_ids[s_first[-1] + 1 :],
    )


def load_tokenizer(path: Path) -> Tokenizer:
    tok = Tokenizer.from_file(str(path))
    tok.no_truncation()
    tok.no_padding()
    return tok


class Encoder:
    def __init__(self, tokenizer: Tokenizer, max_length: int, context_width: int, normalization: Sequence[str] = ()):
        if max_length < 16:
            raise InputError(f"max_length must be at least 16, got {max_length}")
        if context_width < 0:
            raise InputError(f"context_width must be >= 0, got {context_width}")
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.context_width = context_width
        self.normalization = check_steps(normalization)
        self.t = _template(tokenizer)
        specials = len(self.t.prefix) + len(self.t.middle) + len(self.t.suffix)
        if context_width:
            # A quarter of the length is kept for context even next to a long sentence.
            self.sentence_budget = max_length - specials - 1 - max_length // 4
        else:
            self.sentence_budget = max_length - len(self.t.prefix) - len(self.t.single_suffix)
        self.separator = self.t.suffix[-1:] if self.t.suffix else []
        pad = tokenizer.token_to_id("<pad>")
        self.pad_id = pad if pad is not None else (tokenizer.token_to_id("[PAD]") or 0)

    def tokenize(self, sentences: Sequence[str]) -> list[list[int]]:
        # sanitize always runs, before the bundle's named steps: it is not a step a bundle opts into, so
        # bundles trained before it existed are covered too (their training text had almost none of it).
        texts = [normalize(sanitize(s), self.normalization) for s in sentences]
        return [e.ids for e in self.tokenizer.encode_batch(texts, add_special_tokens=False)]

    def encode_article(self, sentences: Sequence[str]) -> list[Feature]:
        """Features for every sentence of one article, in order (windows of one sentence adjacent)."""
        ids = self.tokenize(sentences)
        t, w = self.t, self.context_width
        out: list[Feature] = []
        for k, sent in enumerate(ids):
            budget = self.sentence_budget
            windows = [sent[i : i + budget] for i in range(0, max(len(sent), 1), budget)]
            for n, piece in enumerate(windows):
                if not w:
                    out.append(
                        Feature(
                            k,
                            n,
                            t.prefix + piece + t.single_suffix,
                            t.prefix_types + [t.first_type] * len(piece) + t.single_suffix_types,
                        )
                    )
                    continue
                room = (
                    self.max_length - len(t.prefix) - len(piece) - len(t.middle) - len(t.suffix) - len(self.separator)
                )
                left = [i for s in ids[max(0, k - w) : k] for i in s]
                right = [i for s in ids[k + 1 : k + 1 + w] for i in s]
                n_left = min(len(left), max(room // 2, room - len(right)))
                n_right = min(len(right), room - n_left)
                context = (left[len(left) - n_left :] if n_left else []) + self.separator + right[:n_right]
                out.append(
                    Feature(
                        k,
                        n,
                        t.prefix + piece + t.middle + context + t.suffix,
                        t.prefix_types
                        + [t.first_type] * len(piece)
                        + t.middle_types
                        + [t.second_type] * len(context)
                        + t.suffix_types,
                    )
                )
        return out


def pad_batch(features: Sequence[Feature], pad_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """input_ids, attention_mask, token_type_ids as int64 arrays, right-padded to the longest."""
    width = max(len(f.input_ids) for f in features)
    ids = np.full((len(features), width), pad_id, dtype=np.int64)
    mask = np.zeros_like(ids)
    types = np.zeros_like(ids)
    for r, f in enumerate(features):
        ids[r, : len(f.input_ids)] = f.input_ids
        types[r, : len(f.token_type_ids)] = f.token_type_ids
        mask[r, : len(f.input_ids)] = 1
    return ids, mask, types
