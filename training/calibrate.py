"""Fit a bundle's temperature and decision threshold on labelled dev articles and store them in it.

    mudraj calibrate --model models/mudraj-e5-small --dev build/corpus/dev.jsonl
    mudraj calibrate --model models/mudraj-e5-small --dev my-articles/ --best-f1

The dev articles are scored through the serving predictor (what we measure is what we serve).
Temperature scaling minimises the dev negative log-likelihood; the threshold is the lowest one whose
dev false-alarm rate on reporting sentences meets the target (or the best-F1 one). Both go into the
bundle's metadata.json, with the dev metrics under metrics.dev_calibrated, so `mudraj predict`, the
service and `mudraj evaluate` use them. Nothing else in the bundle changes.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from serving.bundle import METADATA, BundleError, resolve_bundle
from serving.predictor import Predictor, sigmoid
from training.data import load_articles
from training.defaults import GENUINE_FLAG_RATE, TARGET_FALSE_ALARM_RATE
from training.io import atomic_write_json
from training.metrics import metrics


def fit_temperature(margins: np.ndarray, labels: np.ndarray) -> float:
    """Temperature minimising the dev negative log-likelihood (a 1-D search)."""
    from scipy.optimize import minimize_scalar

    def nll(log_t: float) -> float:
        p = np.clip(sigmoid(margins / math.exp(log_t)), 1e-7, 1 - 1e-7)
        return float(-(labels * np.log(p) + (1 - labels) * np.log(1 - p)).mean())

    res = minimize_scalar(nll, bounds=(math.log(0.05), math.log(20.0)), method="bounded")
    return float(math.exp(res.x))


def choose_threshold(probs: np.ndarray, labels: np.ndarray, target_far: float | None) -> float:
    """Lowest threshold whose false-alarm rate on reporting sentences is <= target; or best F1."""
    from sklearn.metrics import precision_recall_curve

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


def calibrate(bundle: Path | None, dev: Sequence[Path], target_far: float | None = TARGET_FALSE_ALARM_RATE,
              precision: str = "auto", genuine: Sequence[Path] = (),
              genuine_target: float = GENUINE_FLAG_RATE) -> dict:
    """Fit temperature then threshold on the dev articles, write them into the bundle's metadata.json
    (atomically) and return the dev results: articles, temperature, threshold, target and metrics.
    target_far None: the threshold with the best dev F1. bundle: as serving.bundle.resolve_bundle takes it.
    genuine: articles with no insertion from dev outlets (build/corpus/genuine-dev.jsonl); the threshold is
    then raised, if needed, until at most genuine_target of their sentences are flagged."""
    from training.evaluate import score  # not at the top: evaluate imports this module's choose_threshold

    if target_far is not None and not 0 <= target_far < 1:
        raise ValueError(f"target false-alarm rate must be in [0, 1), got {target_far}")
    if not dev:
        raise ValueError("calibration needs labelled dev articles (a .txt folder or JSONL)")
    bundle = resolve_bundle(bundle)
    predictor = Predictor(bundle, precision=precision)
    if METADATA in predictor.meta["files"]:
        raise BundleError(f"{bundle}/{METADATA} lists its own checksum; it cannot be rewritten with calibration")
    articles = load_articles(dev)
    d = score(predictor, articles)
    if not 0 < d.labels.sum() < len(d.labels):
        raise ValueError(f"dev data {', '.join(map(str, dev))}: calibration needs both reporting and inserted "
                         f"sentences; found {len(d.labels)} sentences, {int(d.labels.sum())} inserted")
    temperature = fit_temperature(d.margins, d.labels)
    probs = sigmoid(d.margins / temperature)
    threshold = choose_threshold(probs, d.labels, target_far)
    genuine_info = None
    if genuine:
        g = score(predictor, load_articles(genuine))
        if g.labels.any():
            raise ValueError(f"genuine dev data {', '.join(map(str, genuine))} holds inserted sentences")
        g_probs = sigmoid(g.margins / temperature)
        g_threshold = choose_threshold(g_probs, g.labels, genuine_target)
        genuine_info = {"articles": int(g.article_index.max() + 1) if len(g.article_index) else 0,
                        "sentences": len(g.labels), "target_flag_rate": genuine_target,
                        "threshold_for_target": g_threshold, "labelled_dev_threshold": threshold}
        threshold = max(threshold, g_threshold)
        genuine_info["sentences_flagged"] = float((g_probs >= threshold).mean())
    info = {"articles": len(articles), "temperature": temperature, "threshold": threshold,
            "target_false_alarm_rate": target_far, **metrics(d.labels, probs, threshold, d.article_index)}
    if genuine_info:
        info["genuine_dev"] = genuine_info

    meta = json.loads((bundle / METADATA).read_text(encoding="utf-8"))
    meta.update(threshold=threshold, temperature=temperature)
    meta.setdefault("metrics", {})["dev_calibrated"] = {k: v for k, v in info.items() if k != "confusion"}
    atomic_write_json(bundle / METADATA, meta)
    return info
