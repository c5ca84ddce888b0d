"""The one predictor: a model bundle run by ONNX Runtime (no torch, no transformers).

Used by `mudraj predict`, `mudraj evaluate` and the HTTP service alike.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import onnxruntime as ort

from serving.brackets import offsets_text
from serving.bundle import LABELS, MODEL_FILES, MODEL_TYPES, read_metadata
from serving.defaults import default_threads
from serving.errors import InputError, MissingError
from serving.features import Encoder, Feature, load_tokenizer, pad_batch
from serving.segment import segment
from serving.windows import ArticleEncoder, pad_windows


@dataclass
class SentencePrediction:
    start: int
    end: int
    text: str
    label: str
    score: float
    windows: int = 1  # >1 when a long sentence was scored in several windows
    # The kind of insertion (bundles with a kind head; sentences labelled inserted only):
    # {"name": ..., "p": ..., "top": [{"name": ..., "p": ...} x 3]}
    kind: dict | None = None

    def as_dict(self) -> dict:
        d = asdict(self)
        if d["windows"] == 1:
            del d["windows"]
        if d["kind"] is None:
            del d["kind"]
        return d


class DeadlineExceeded(TimeoutError):
    """Raised between model batches once a deadline has passed: `done` of `total` batches were run."""

    def __init__(self, done: int, total: int):
        super().__init__(f"deadline passed: stopped after {done} of {total} model batches")
        self.done, self.total = done, total


def sigmoid(x: np.ndarray) -> np.ndarray:
    """P(inserted) from a margin (logit inserted - logit reporting), overflow-safe."""
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - np.max(x))
    return e / e.sum()


SCORE_DECIMALS = 6  # what responses show of a probability


def score_of(probability: float) -> float:
    """The score a client sees: the probability rounded to SCORE_DECIMALS."""
    return round(float(probability), SCORE_DECIMALS)


def decide(probability: float, threshold: float) -> tuple[str, float]:
    """The one decision rule, for one sentence: (label, score). The label is decided on the score the
    client sees, so 'score >= threshold' holds for every response; metrics and calibration flag
    sentences with `flags`, the same rule over an array."""
    score = score_of(probability)
    return LABELS[int(score >= threshold)], score


def flags(probabilities, threshold: float) -> np.ndarray:
    """`decide` over an array: True where the sentence is labelled inserted."""
    return np.fromiter(
        (score_of(p) >= threshold for p in np.ravel(probabilities)), bool, count=np.size(probabilities)
    ).reshape(np.shape(probabilities))


class Predictor:
    """Scores sentences of articles with a bundle.

    precision: "int8" (CPU default), "fp32" (GPU default), or "auto".
    """

    def __init__(
        self,
        bundle: Path | str,
        precision: str = "auto",
        device: str = "auto",
        threads: int | None = None,
        batch_size: int = 32,
        verify: bool = True,
    ):
        self.bundle = Path(bundle)
        self.meta = read_metadata(self.bundle, verify=verify)
        available = ort.get_available_providers()
        use_cuda = device in ("auto", "cuda") and "CUDAExecutionProvider" in available
        if device == "cuda" and not use_cuda:
            raise RuntimeError(f"device 'cuda' asked for, but onnxruntime offers only {available}")
        if precision == "auto":
            has = {k for k, f in MODEL_FILES.items() if f in self.meta["files"]}
            precision = "fp32" if ("fp32" in has and (use_cuda or "int8" not in has)) else "int8"
        if precision not in MODEL_FILES:
            raise InputError(f"precision must be one of {sorted(MODEL_FILES)} or 'auto', got {precision!r}")
        model_path = self.bundle / MODEL_FILES[precision]
        if MODEL_FILES[precision] not in self.meta["files"]:
            raise MissingError(f"{self.bundle} has no {precision} model ({MODEL_FILES[precision]})")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or default_threads()
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if use_cuda else ["CPUExecutionProvider"]
        self.session = ort.InferenceSession(str(model_path), opts, providers=providers)
        self.input_names = {i.name for i in self.session.get_inputs()}
        self.precision, self.device = precision, "cuda" if use_cuda else "cpu"
        self.batch_size = batch_size
        self.encoder = Encoder(
            load_tokenizer(self.bundle / "tokenizer.json"),
            self.meta["max_length"],
            self.meta["context_width"],
            self.meta["normalization"],
        )
        # "pair" (a sentence with its neighbours, one input each) or "article" (serving/windows.py).
        self.model_type = self.meta.get("model_type", "pair")
        if self.model_type not in MODEL_TYPES:
            raise InputError(f"{self.bundle}: unknown model_type {self.model_type!r} (known: {MODEL_TYPES})")
        self.windows = ArticleEncoder(self.encoder) if self.model_type == "article" else None
        self.threshold = float(self.meta["threshold"])
        # The kind head's classes (article bundles trained with kind_loss_weight > 0), in output order.
        self.kinds = list(self.meta.get("kinds") or [])
        if self.kinds and "kind_logits" not in {o.name for o in self.session.get_outputs()}:
            raise InputError(
                f"{self.bundle}: metadata names {len(self.kinds)} kinds but the model has no kind_logits output"
            )
        self.temperature = float(self.meta.get("temperature", 1.0))

    @property
    def info(self) -> dict:
        return {
            "name": self.meta["name"],
            "version": self.meta.get("version", "0"),
            "threshold": self.threshold,
            "precision": self.precision,
            "device": self.device,
            "backbone": self.meta["backbone"].get("name"),
            "model_type": self.model_type,
        }

    def logits(
        self, features: Sequence[Feature], groups: Sequence[Sequence[int]] | None = None, deadline: float | None = None
    ) -> np.ndarray:
        """Raw logits [n, 2] in length-sorted batches. A batch never mixes two groups: dynamic int8
        quantisation scales activations per batch, so a score would otherwise depend on what else
        happened to share its batch (other articles, other requests).

        deadline: a time.monotonic() value; once it has passed, DeadlineExceeded is raised before the
        next batch (None, the default: run every batch)."""
        out = np.zeros((len(features), len(LABELS)), dtype=np.float32)
        batches = []
        for group in groups if groups is not None else [range(len(features))]:
            order = sorted(group, key=lambda i: len(features[i].input_ids))
            batches += [order[b : b + self.batch_size] for b in range(0, len(order), self.batch_size)]
        for k, idx in enumerate(batches):
            if deadline is not None and time.monotonic() >= deadline:
                raise DeadlineExceeded(k, len(batches))
            ids, mask, types = pad_batch([features[i] for i in idx], self.encoder.pad_id)
            feed = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self.input_names:
                feed["token_type_ids"] = types
            out[idx] = self.session.run(["logits"], feed)[0]
        return out

    def probabilities(self, margins: np.ndarray) -> np.ndarray:
        """Calibrated P(inserted) from margins (logit inserted - logit reporting), with the bundle's temperature."""
        return sigmoid(margins / self.temperature)

    def article_margins(
        self,
        articles: Sequence[Sequence[str]],
        isolate: bool = True,
        deadline: float | None = None,
        kinds_out: list | None = None,
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per sentence of each article: the margin of its worst window, and its window count.

        isolate=True (the default, used by predict, evaluate and /classify): each article is computed
        in batches of its own, so its scores do not depend on the other articles of the call.
        deadline: see logits().
        kinds_out: a list that receives, per article, the kind head's probabilities [sentences, kinds]
        (bundles with a kind head; nothing is appended otherwise).
        """
        if self.windows is not None:
            return self._article_model_margins(articles, isolate, deadline, kinds_out)
        feats: list[Feature] = []
        owner: list[tuple[int, int]] = []
        groups: list[list[int]] = []
        for a, sentences in enumerate(articles):
            start = len(feats)
            for f in self.encoder.encode_article(sentences):
                feats.append(f)
                owner.append((a, f.sentence))
            groups.append(list(range(start, len(feats))))
        logits = self.logits(feats, groups if isolate else None, deadline) if feats else np.zeros((0, len(LABELS)))
        result = [(np.full(len(s), -np.inf), np.zeros(len(s), dtype=np.int64)) for s in articles]
        for (a, k), m in zip(owner, logits[:, 1] - logits[:, 0]):
            margins, windows = result[a]
            margins[k] = max(margins[k], float(m))  # a long sentence is as suspicious as its worst window
            windows[k] += 1
        return result

    def _article_model_margins(
        self, articles: Sequence[Sequence[str]], isolate: bool, deadline: float | None, kinds_out: list | None = None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """article_margins for the article model: each sentence's margin comes from the window that
        scores it (the highest over the pieces of a long sentence); window counts are piece counts.
        Windows of one article are always batched on their own: `isolate` is accepted for the same
        signature and has no other effect."""
        encoded = [self.windows.encode_article(s) for s in articles]
        batches = [
            (a, enc.windows[b : b + self.batch_size])
            for a, enc in enumerate(encoded)
            for b in range(0, len(enc.windows), self.batch_size)
        ]
        result = [(np.full(enc.n_sentences, -np.inf), np.zeros(enc.n_sentences, dtype=np.int64)) for enc in encoded]
        kinds = [np.zeros((enc.n_sentences, len(self.kinds)), np.float32) for enc in encoded] if self.kinds else None
        outputs = ["logits", "kind_logits"] if kinds is not None else ["logits"]
        for k, (a, windows) in enumerate(batches):
            if deadline is not None and time.monotonic() >= deadline:
                raise DeadlineExceeded(k, len(batches))
            feed = pad_windows(windows, self.encoder.pad_id)
            ran = self.session.run(outputs, {n: v for n, v in feed.items() if n in self.input_names})
            logits = ran[0]
            margins, counts = result[a]
            for r, w in enumerate(windows):
                for j, (unit, scored) in enumerate(zip(w.units, w.scored)):
                    if scored:
                        sent = encoded[a].unit_sentence[unit]
                        m = float(logits[r, j, 1] - logits[r, j, 0])
                        if kinds is not None and m > margins[sent]:  # the kind of the piece that decides
                            kinds[a][sent] = softmax(ran[1][r, j])
                        margins[sent] = max(margins[sent], m)
                        counts[sent] += 1
        if kinds_out is not None and kinds is not None:
            kinds_out.extend(kinds)
        return result

    def score_articles(
        self, articles: Sequence[Sequence[str]], isolate: bool = True, deadline: float | None = None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """P(inserted) and window counts for each sentence of each article."""
        return [(self.probabilities(m), w) for m, w in self.article_margins(articles, isolate, deadline)]

    def predict_texts(
        self, texts: Sequence[str], threshold: float | None = None, deadline: float | None = None
    ) -> list[list[SentencePrediction]]:
        """Segment and classify whole articles. Brackets, if any, are removed first.
        deadline: stop with DeadlineExceeded between model batches once it has passed (see logits())."""
        thr = self.threshold if threshold is None else threshold
        cut = []
        for t in texts:
            clean = offsets_text(t)
            cut.append(segment(clean))
        kinds: list = []
        margins = self.article_margins([[s.text for s in spans] for spans in cut], deadline=deadline, kinds_out=kinds)
        out = []
        for a, (spans, (m, windows)) in enumerate(zip(cut, margins)):
            sents = []
            for i, (s, p, w) in enumerate(zip(spans, self.probabilities(m), windows)):
                label, score = decide(p, thr)
                kind = self.kind_of(kinds[a][i]) if kinds and label == LABELS[1] else None
                sents.append(SentencePrediction(s.start, s.end, s.text, label, score, int(w), kind))
            out.append(sents)
        return out

    def kind_of(self, probs: np.ndarray) -> dict:
        """The kind head's answer for one sentence: the likeliest kind, its probability, and the top 3."""
        order = np.argsort(-probs)[:3]
        top = [{"name": self.kinds[i], "p": round(float(probs[i]), 4)} for i in order]
        return {"name": top[0]["name"], "p": top[0]["p"], "top": top}
