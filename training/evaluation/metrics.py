"""Metrics for the `inserted` class: pure functions of gold labels (0/1) and P(inserted)."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Sequence

import numpy as np

from serving.predictor import flags, score_of, sigmoid


def metrics(labels: np.ndarray, probs: np.ndarray, thr: float, art_idx: np.ndarray | None = None) -> dict:
    """Sentence-level precision, recall, F1, false-alarm rate, PR/ROC-AUC and ECE; with art_idx (the
    article of each sentence), article-level false alarms and detection too."""
    from sklearn.metrics import average_precision_score, confusion_matrix, roc_auc_score

    pred = flags(probs, thr).astype(int)
    tn, fp, fn, tp = confusion_matrix(labels, pred, labels=[0, 1]).ravel()
    out = {
        "sentences": int(len(labels)),
        "inserted": int(labels.sum()),
        **prf(labels, pred),
        "confusion": {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)},
    }
    if 0 < labels.sum() < len(labels):
        out["pr_auc"] = float(average_precision_score(labels, probs))
        out["roc_auc"] = float(roc_auc_score(labels, probs))
    out["ece"] = expected_calibration_error(labels, probs)
    if art_idx is not None:
        has_ins = np.zeros(art_idx.max() + 1, bool)
        flagged = np.zeros_like(has_ins)
        false_alarm = np.zeros_like(has_ins)
        np.logical_or.at(has_ins, art_idx, labels == 1)
        np.logical_or.at(flagged, art_idx, pred == 1)
        np.logical_or.at(false_alarm, art_idx, (pred == 1) & (labels == 0))
        clean = ~has_ins
        out["articles"] = int(len(has_ins))
        out["clean_articles"] = int(clean.sum())
        out["clean_articles_with_false_alarm"] = float(false_alarm[clean].mean()) if clean.any() else 0.0
        out["article_detection_rate"] = float(flagged[has_ins].mean()) if has_ins.any() else 0.0
    return out


def prf(labels: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """The one place precision, recall, F1 (of the inserted class) and the false-alarm rate (flagged share of
    reporting sentences) are computed from gold labels and predicted labels (0/1)."""
    from sklearn.metrics import precision_recall_fscore_support

    labels, pred = np.asarray(labels).astype(int), np.asarray(pred).astype(int)
    p, r, f, _ = precision_recall_fscore_support(labels, pred, labels=[1], average=None, zero_division=0)
    reporting = labels == 0
    return {
        "precision": float(p[0]),
        "recall": float(r[0]),
        "f1": float(f[0]),
        "false_alarm_rate": float(pred[reporting].mean()) if reporting.any() else 0.0,
    }


def f1_of(precision: float, recall: float) -> float:
    """F1 from precision and recall; 0 when both are 0."""
    return float(2 * precision * recall / (precision + recall)) if precision + recall else 0.0


def expected_calibration_error(labels: np.ndarray, probs: np.ndarray, bins: int = 15) -> float:
    """Mean |predicted - observed share inserted| over equal-width probability bins, weighted by bin size."""
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(probs, edges[1:-1]), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            ece += m.mean() * abs(probs[m].mean() - labels[m].mean())
    return float(ece)


def breakdown(
    labels: np.ndarray, probs: np.ndarray, thr: float, groups: Sequence[str | None], false_alarms: bool = True
) -> dict:
    """Recall (and, with false_alarms, false-alarm rate) per group, e.g. per outlet or per insertion
    kind; groups[i] is sentence i's group, None or "" for none. Rows sorted by group name."""
    members: dict[str, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        if g:
            members[g].append(i)
    out = {}
    for g, idx in sorted(members.items()):
        idx = np.array(idx)
        y, pr = labels[idx], flags(probs[idx], thr)
        row = {
            "sentences": int(len(idx)),
            "inserted": int(y.sum()),
            "recall": float(pr[y == 1].mean()) if y.any() else None,
        }
        if false_alarms:
            row["false_alarm_rate"] = float(pr[y == 0].mean()) if (y == 0).any() else None
            if y.any() and (y == 0).any():  # a group with both classes (a source, a genre): F1 too
                both = prf(y, pr)
                row["precision"], row["f1"] = both["precision"], both["f1"]
        out[g] = row
    return out


def fit_temperature(margins: np.ndarray, labels: np.ndarray) -> float:
    """Temperature minimising the dev negative log-likelihood (a 1-D search)."""
    from scipy.optimize import minimize_scalar

    def nll(log_t: float) -> float:
        p = np.clip(sigmoid(margins / math.exp(log_t)), 1e-7, 1 - 1e-7)
        return float(-(labels * np.log(p) + (1 - labels) * np.log(1 - p)).mean())

    res = minimize_scalar(nll, bounds=(math.log(0.05), math.log(20.0)), method="bounded")
    return float(math.exp(res.x))


def choose_threshold(probs: np.ndarray, labels: np.ndarray, target_far: float | None) -> float:
    """Lowest threshold whose false-alarm rate on reporting sentences is <= target; or best F1. Chosen on
    the scores clients see (`score_of`), so the sentences it counts as flagged are exactly those the
    one decision rule (`flags`, `decide`) flags."""
    from sklearn.metrics import precision_recall_curve

    probs = np.array([score_of(p) for p in probs])
    if target_far is None:
        p, r, t = precision_recall_curve(labels, probs)
        f1 = 2 * p * r / np.maximum(p + r, 1e-12)
        return float(t[int(np.argmax(f1[:-1]))])
    neg = np.sort(probs[labels == 0])
    if len(neg) == 0:
        return 0.5
    # Allow at most floor(target * n) reporting sentences at or above the threshold.
    k = int(math.floor(target_far * len(neg)))
    thr = neg[len(neg) - k - 1] if k < len(neg) else neg[0]
    return float(np.nextafter(thr, 1.0))
