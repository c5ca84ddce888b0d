"""Two baselines the model must beat: character n-gram TF-IDF + logistic regression, and a rule that
calls a sentence `inserted` when it names no source and uses no reporting verb."""

from __future__ import annotations

import re
from typing import Callable, Sequence

import numpy as np

from serving.normalize import normalize
from training.corpus.articles import Article
from training.corpus.hosts import ATTRIBUTION_CUES
from training.evaluation.metrics import choose_threshold, metrics

TFIDF = "char TF-IDF + LR"
CUE_RULE = "attribution-cue rule"


def sentences(articles: Sequence[Article]) -> tuple[list[str], np.ndarray]:
    """Every sentence's text and gold label (0 reporting, 1 inserted), article after article."""
    texts = [s.text for a in articles for s in a.sentences]
    return texts, np.array([s.label for a in articles for s in a.sentences])


def tfidf_baseline(train: Sequence[Article], normalization: Sequence[str]) -> Callable[[Sequence[str]], np.ndarray]:
    """Character 2-5-gram TF-IDF + logistic regression; returns a scoring function."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    texts, y = sentences(train)
    model = make_pipeline(
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True, max_features=300_000),
        LogisticRegression(max_iter=2000, C=4.0, class_weight="balanced"),
    )
    model.fit([normalize(t, normalization) for t in texts], y)
    return lambda ts: model.predict_proba([normalize(t, normalization) for t in ts])[:, 1]


_SOURCE = re.compile(r"(?:وزير|متحدث|مصدر|مسؤول|رئيس|مدير|بيان|وكالة|صحيفة|الشرطة|الوزارة|الهيئة|المرصد|«|\"|“)")


def cue_rule(texts: Sequence[str]) -> np.ndarray:
    """A sentence with no reporting verb and no named source is `inserted` (1.0), else 0.0."""
    return np.array([0.0 if (ATTRIBUTION_CUES.search(t) or _SOURCE.search(t)) else 1.0 for t in texts])


def score_baselines(
    texts: Sequence[str],
    labels: np.ndarray,
    art_idx: np.ndarray,
    train: Sequence[Article],
    dev: Sequence[Article],
    normalization: Sequence[str],
    target_far: float | None,
) -> tuple[dict[str, dict], np.ndarray | None]:
    """Metrics of each baseline on the test sentences, and the TF-IDF model's P(inserted) (None
    without training articles). The TF-IDF threshold is chosen on dev for target_far (None: best
    F1) when dev articles are given, else 0.5; the rule's scores are 0 or 1."""
    out, tfidf_probs = {}, None
    if train:
        scorer = tfidf_baseline(train, normalization)
        tfidf_probs = scorer(texts)
        thr = 0.5
        if dev:
            dev_texts, dev_labels = sentences(dev)
            thr = choose_threshold(scorer(dev_texts), dev_labels, target_far)
        out[TFIDF] = metrics(labels, tfidf_probs, thr, art_idx) | {"threshold": thr}
    out[CUE_RULE] = metrics(labels, cue_rule(texts), 0.5, art_idx)
    return out, tfidf_probs
