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
from pathlib import Path
from typing import Sequence

from serving.bundle import METADATA, BundleError, resolve_bundle, write_metadata
from serving.errors import InputError
from serving.predictor import Predictor, flags, sigmoid
from training.corpus.articles import load_articles
from training.defaults import GENUINE_FLAG_RATE, TARGET_FALSE_ALARM_RATE
from training.evaluation.evaluate import score
from training.evaluation.metrics import choose_threshold, fit_temperature, metrics


def is_calibrated(bundle: Path) -> bool:
    """Whether `calibrate` has stored its threshold and temperature in the bundle (metrics.dev_calibrated),
    read from the bundle itself rather than guessed from which files exist."""
    meta = json.loads((Path(bundle) / METADATA).read_text(encoding="utf-8"))
    return "dev_calibrated" in meta.get("metrics", {})


def calibrate(
    bundle: Path | None,
    dev: Sequence[Path],
    target_far: float | None = TARGET_FALSE_ALARM_RATE,
    precision: str = "auto",
    genuine: Sequence[Path] = (),
    genuine_target: float = GENUINE_FLAG_RATE,
) -> dict:
    """Fit temperature then threshold on the dev articles, write them into the bundle's metadata.json
    (atomically) and return the dev results: articles, temperature, threshold, target and metrics.
    target_far None: the threshold with the best dev F1. bundle: as serving.bundle.resolve_bundle takes it.
    genuine: articles with no insertion from dev outlets (build/corpus/genuine-dev.jsonl); the threshold is
    then raised, if needed, until at most genuine_target of their sentences are flagged."""

    if target_far is not None and not 0 <= target_far < 1:
        raise InputError(f"target false-alarm rate must be in [0, 1), got {target_far}")
    if not dev:
        raise InputError("calibration needs labelled dev articles (a .txt folder or JSONL)")
    bundle = resolve_bundle(bundle)
    predictor = Predictor(bundle, precision=precision)
    if METADATA in predictor.meta["files"]:
        raise BundleError(f"{bundle}/{METADATA} lists its own checksum; it cannot be rewritten with calibration")
    articles = load_articles(dev)
    d = score(predictor, articles)
    if not 0 < d.labels.sum() < len(d.labels):
        raise InputError(
            f"dev data {', '.join(map(str, dev))}: calibration needs both reporting and inserted "
            f"sentences; found {len(d.labels)} sentences, {int(d.labels.sum())} inserted"
        )
    temperature = fit_temperature(d.margins, d.labels)
    probs = sigmoid(d.margins / temperature)
    threshold = choose_threshold(probs, d.labels, target_far)
    genuine_info = None
    if genuine:
        g = score(predictor, load_articles(genuine))
        if g.labels.any():
            raise InputError(f"genuine dev data {', '.join(map(str, genuine))} holds inserted sentences")
        g_probs = sigmoid(g.margins / temperature)
        g_threshold = choose_threshold(g_probs, g.labels, genuine_target)
        genuine_info = {
            "articles": int(g.article_index.max() + 1) if len(g.article_index) else 0,
            "sentences": len(g.labels),
            "target_flag_rate": genuine_target,
            "threshold_for_target": g_threshold,
            "labelled_dev_threshold": threshold,
        }
        threshold = max(threshold, g_threshold)
        genuine_info["sentences_flagged"] = float(flags(g_probs, threshold).mean())
    info = {
        "articles": len(articles),
        "temperature": temperature,
        "threshold": threshold,
        "target_false_alarm_rate": target_far,
        **metrics(d.labels, probs, threshold, d.article_index),
    }
    if genuine_info:
        info["genuine_dev"] = genuine_info

    meta = json.loads((bundle / METADATA).read_text(encoding="utf-8"))
    meta.update(threshold=threshold, temperature=temperature)
    meta.setdefault("metrics", {})["dev_calibrated"] = {k: v for k, v in info.items() if k != "confusion"}
    write_metadata(bundle, meta)
    return info
