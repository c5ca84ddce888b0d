"""Evaluation on held-out labelled articles, through the same predictor the service uses.

    mudraj evaluate --model models/mudraj-e5-small --data build/corpus/test.jsonl \
        --dev build/corpus/dev.jsonl --train build/corpus/train.jsonl --out reports/e5-small

With --dev: temperature scaling and the decision threshold are fitted on the dev split and
stored in the bundle (so `mudraj predict` and the service use them). With --train: the two
baselines (character n-gram TF-IDF + logistic regression, attribution-cue rule) are trained
and scored on the same split, side by side.
"""
from __future__ import annotations

import json
import math
import re
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from serving.bundle import METADATA
from serving.normalize import normalize
from serving.predictor import Predictor, sigmoid
from training.data import Article, load_articles
from training.hosts import ATTRIBUTION_CUES
from training.io import atomic_write_json, atomic_write_text


@dataclass
class Scored:
    """Per-sentence gold labels and model margins (logit inserted - logit reporting)."""

    articles: list[Article]
    labels: np.ndarray
    margins: np.ndarray
    article_index: np.ndarray
    texts: list[str]
    meta: list[dict]


def score(predictor: Predictor, articles: Sequence[Article]) -> Scored:
    """Margins for every gold sentence (the bracket-aware segmentation of each article), computed by
    the predictor exactly as `mudraj predict` and the service compute them."""
    per_article = predictor.article_margins([[s.text for s in a.sentences] for a in articles])
    margins = np.concatenate([m for m, _ in per_article]) if per_article else np.zeros(0)
    labels, art_idx, texts, meta = [], [], [], []
    for a_i, a in enumerate(articles):
        kinds = iter(a.meta.get("kinds") or [])
        for s in a.sentences:
            labels.append(s.label)
            art_idx.append(a_i)
            texts.append(s.text)
            kind = next(kinds, None) if s.label else None
            meta.append({"article": a.id, "outlet": a.meta.get("outlet"), "kind": kind})
    return Scored(list(articles), np.array(labels), margins, np.array(art_idx), texts, meta)


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


def metrics(labels: np.ndarray, probs: np.ndarray, thr: float, art_idx: np.ndarray | None = None) -> dict:
    from sklearn.metrics import (average_precision_score, confusion_matrix, precision_recall_fscore_support,
                                 roc_auc_score)

    pred = (probs >= thr).astype(int)
    p, r, f, _ = precision_recall_fscore_support(labels, pred, labels=[1], average=None, zero_division=0)
    tn, fp, fn, tp = confusion_matrix(labels, pred, labels=[0, 1]).ravel()
    out = {
        "sentences": int(len(labels)), "inserted": int(labels.sum()),
        "precision": float(p[0]), "recall": float(r[0]), "f1": float(f[0]),
        "false_alarm_rate": float(fp / max(1, fp + tn)),
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


def expected_calibration_error(labels: np.ndarray, probs: np.ndarray, bins: int = 15) -> float:
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(probs, edges[1:-1]), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            ece += m.mean() * abs(probs[m].mean() - labels[m].mean())
    return float(ece)


def breakdown(scored: Scored, probs: np.ndarray, thr: float, key: str) -> dict:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, m in enumerate(scored.meta):
        if key == "kind":
            if m["kind"]:
                groups[m["kind"]].append(i)
        elif m.get(key):
            groups[m[key]].append(i)
    out = {}
    for g, idx in sorted(groups.items()):
        idx = np.array(idx)
        y, pr = scored.labels[idx], probs[idx] >= thr
        row = {"sentences": int(len(idx)), "inserted": int(y.sum()), "recall": float(pr[y == 1].mean()) if y.any() else None}
        if key != "kind":
            row["false_alarm_rate"] = float(pr[y == 0].mean()) if (y == 0).any() else None
        out[g] = row
    return out


# ---------------------------------------------------------------- baselines
def _sentences(articles: Sequence[Article]) -> tuple[list[str], np.ndarray]:
    texts = [s.text for a in articles for s in a.sentences]
    return texts, np.array([s.label for a in articles for s in a.sentences])


def tfidf_baseline(train: Sequence[Article], normalization: Sequence[str]):
    """Character 2-5-gram TF-IDF + logistic regression; returns a scoring function."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    texts, y = _sentences(train)
    model = make_pipeline(
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True, max_features=300_000),
        LogisticRegression(max_iter=2000, C=4.0, class_weight="balanced"))
    model.fit([normalize(t, normalization) for t in texts], y)
    return lambda ts: model.predict_proba([normalize(t, normalization) for t in ts])[:, 1]


_SOURCE = re.compile(r"(?:وزير|متحدث|مصدر|مسؤول|رئيس|مدير|بيان|وكالة|صحيفة|الشرطة|الوزارة|الهيئة|المرصد|«|\"|“)")


def cue_rule(texts: Sequence[str]) -> np.ndarray:
    """A sentence with no reporting verb and no named source is `inserted` (1.0), else 0.0."""
    return np.array([0.0 if (ATTRIBUTION_CUES.search(t) or _SOURCE.search(t)) else 1.0 for t in texts])


# ---------------------------------------------------------------- report
def _figures(out: Path, labels: np.ndarray, probs: np.ndarray, thr: float, tfidf: np.ndarray | None) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import ConfusionMatrixDisplay, PrecisionRecallDisplay

    names = []
    fig, ax = plt.subplots(figsize=(5, 4))
    PrecisionRecallDisplay.from_predictions(labels, probs, ax=ax, name="model")
    if tfidf is not None:
        PrecisionRecallDisplay.from_predictions(labels, tfidf, ax=ax, name="char TF-IDF + LR")
    ax.set_title("Precision-recall, inserted class")
    fig.tight_layout(); fig.savefig(out / "pr_curve.png", dpi=110); plt.close(fig); names.append("pr_curve.png")

    fig, ax = plt.subplots(figsize=(5, 4))
    frac, mean = calibration_curve(labels, probs, n_bins=10, strategy="quantile")
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect")
    ax.plot(mean, frac, "o-", label="model")
    ax.set_xlabel("predicted P(inserted)"); ax.set_ylabel("observed share inserted"); ax.legend()
    ax.set_title("Reliability diagram")
    fig.tight_layout(); fig.savefig(out / "reliability.png", dpi=110); plt.close(fig); names.append("reliability.png")

    fig, ax = plt.subplots(figsize=(4.5, 4))
    ConfusionMatrixDisplay.from_predictions(labels, (probs >= thr).astype(int), display_labels=["reporting", "inserted"],
                                            ax=ax, colorbar=False)
    ax.set_title(f"Confusion matrix (threshold {thr:.3f})")
    fig.tight_layout(); fig.savefig(out / "confusion.png", dpi=110); plt.close(fig); names.append("confusion.png")

    fig, ax = plt.subplots(figsize=(5, 4))
    bins = np.linspace(0, 1, 41)
    ax.hist(probs[labels == 0], bins=bins, alpha=0.6, label="reporting", log=True)
    ax.hist(probs[labels == 1], bins=bins, alpha=0.6, label="inserted", log=True)
    ax.axvline(thr, color="k", ls="--", label="threshold")
    ax.set_xlabel("P(inserted)"); ax.set_ylabel("sentences (log)"); ax.legend()
    ax.set_title("Scores by true class")
    fig.tight_layout(); fig.savefig(out / "score_hist.png", dpi=110); plt.close(fig); names.append("score_hist.png")
    return names


def _md_table(rows: dict[str, dict], cols: list[str]) -> str:
    head = "| | " + " | ".join(cols) + " |\n|---|" + "---|" * len(cols) + "\n"
    body = ""
    for name, r in rows.items():
        cells = []
        for c in cols:
            v = r.get(c)
            cells.append("–" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v)))
        body += f"| {name} | " + " | ".join(cells) + " |\n"
    return head + body


def evaluate(model: Path, data: Sequence[Path], out: Path, dev: Sequence[Path] = (), train: Sequence[Path] = (),
             target_far: float | None = 0.02, calibrate: bool = True, write_bundle: bool = True,
             precision: str = "auto", n_errors: int = 25, redact: str = "none") -> dict:
    """redact: "none", "reporting" (do not reproduce the text of reporting sentences, e.g. licensed host
    articles) or "all" (no sentence text in the report at all)."""
    t0 = time.time()
    model = Path(model)
    if (model / "run.json").is_file() and not (model / METADATA).is_file():
        model = model / "bundle"  # a training run: its exported bundle
    predictor = Predictor(model, precision=precision)
    test_articles = load_articles(data)
    temperature, threshold = predictor.temperature, predictor.threshold
    dev_info = None
    if dev:
        dev_articles = load_articles(dev)
        d = score(predictor, dev_articles)
        temperature = fit_temperature(d.margins, d.labels) if calibrate else temperature
        d_probs = sigmoid(d.margins / temperature)
        threshold = choose_threshold(d_probs, d.labels, target_far)
        dev_info = {"articles": len(dev_articles), "temperature": temperature, "threshold": threshold,
                    "target_false_alarm_rate": target_far, **metrics(d.labels, d_probs, threshold, d.article_index)}
    s = score(predictor, test_articles)
    probs = sigmoid(s.margins / temperature)
    result = {"model": predictor.info | {"bundle": str(model), "temperature": temperature, "threshold": threshold},
              "data": [str(p) for p in data], "dev": dev_info,
              "test": metrics(s.labels, probs, threshold, s.article_index),
              "per_outlet": breakdown(s, probs, threshold, "outlet"),
              "per_kind": breakdown(s, probs, threshold, "kind")}
    baselines = {}
    tfidf_probs = None
    if train:
        train_articles = load_articles(train)
        scorer = tfidf_baseline(train_articles, predictor.encoder.normalization)
        tfidf_probs = scorer(s.texts)
        tf_thr = 0.5
        if dev:
            dt, dy = _sentences(dev_articles)
            tf_thr = choose_threshold(scorer(dt), dy, target_far if target_far is not None else None)
        baselines["char TF-IDF + LR"] = metrics(s.labels, tfidf_probs, tf_thr, s.article_index) | {"threshold": tf_thr}
    baselines["attribution-cue rule"] = metrics(s.labels, cue_rule(s.texts), 0.5, s.article_index)
    result["baselines"] = baselines
    order = np.argsort(-np.abs(probs - s.labels))
    errors = []
    first = {}
    for i, m in enumerate(s.meta):
        first.setdefault(m["article"], i)
    for i in order[: n_errors * 3]:
        if (probs[i] >= threshold) != bool(s.labels[i]):
            hidden = redact == "all" or (redact == "reporting" and not s.labels[i])
            where = f"{s.meta[i]['article']}#{i - first[s.meta[i]['article']]}"
            errors.append({"article": s.meta[i]["article"], "outlet": s.meta[i]["outlet"],
                           "gold": "inserted" if s.labels[i] else "reporting", "score": round(float(probs[i]), 4),
                           "kind": s.meta[i]["kind"],
                           "text": f"(text not reproduced: sentence {where})" if hidden else s.texts[i]})
        if len(errors) >= n_errors:
            break
    result["worst_errors"] = errors
    result["seconds"] = round(time.time() - t0, 1)

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figs = _figures(out, s.labels, probs, threshold, tfidf_probs)
    atomic_write_json(out / "report.json", result)
    atomic_write_text(out / "report.md", render(result, figs))
    if write_bundle and dev:
        meta = json.loads((model / METADATA).read_text(encoding="utf-8"))
        meta.update(threshold=threshold, temperature=temperature)
        meta.setdefault("metrics", {})["test"] = {k: v for k, v in result["test"].items() if k != "confusion"}
        meta["metrics"]["dev_calibrated"] = {k: v for k, v in dev_info.items() if k != "confusion"}
        atomic_write_json(model / METADATA, meta)
    return result


def render(r: dict, figs: list[str]) -> str:
    cols = ["precision", "recall", "f1", "false_alarm_rate", "pr_auc", "roc_auc", "ece",
            "clean_articles_with_false_alarm", "article_detection_rate"]
    rows = {f"**model** ({r['model']['name']}, {r['model']['precision']})": r["test"], **r["baselines"]}
    t = r["test"]
    md = [f"# Evaluation: {r['model']['name']}", "",
          f"Data: {', '.join(r['data'])} ({t['articles']} articles, {t['sentences']} sentences, "
          f"{t['inserted']} inserted). Threshold {r['model']['threshold']:.4f}, temperature "
          f"{r['model']['temperature']:.3f}" + (" (both fitted on the dev split)." if r["dev"] else "."), "",
          "## Headline", "", _md_table(rows, cols)]
    if r["dev"]:
        md += ["", f"Dev split ({r['dev']['articles']} articles): threshold chosen for false-alarm rate "
               f"<= {r['dev']['target_false_alarm_rate']}; dev F1 {r['dev']['f1']:.3f}, false alarms "
               f"{r['dev']['false_alarm_rate']:.3f}."]
    if r["per_outlet"]:
        md += ["", "## Per outlet", "", _md_table(r["per_outlet"], ["sentences", "inserted", "recall", "false_alarm_rate"])]
    if r["per_kind"]:
        md += ["## Recall per insertion kind", "", _md_table(r["per_kind"], ["inserted", "recall"])]
    md += ["## Figures", ""] + [f"![{f}]({f})" for f in figs] + ["", "## Worst errors", "",
           "| gold | score | kind | outlet | sentence |", "|---|---|---|---|---|"]
    for e in r["worst_errors"]:
        md.append(f"| {e['gold']} | {e['score']:.3f} | {e['kind'] or ''} | {e['outlet'] or ''} | {e['text'].replace('|', '/')} |")
    md += ["", f"Report written in {r['seconds']} s."]
    return "\n".join(md) + "\n"
