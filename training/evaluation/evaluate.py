"""Evaluation on held-out labelled articles, through the same predictor the service uses.

    mudraj calibrate --model models/mudraj-e5-small --dev build/corpus/dev.jsonl
    mudraj evaluate --model models/mudraj-e5-small --data build/corpus/test.jsonl \
        --train build/corpus/train.jsonl --dev build/corpus/dev.jsonl --out reports/e5-small

Evaluation only reads the bundle: it scores with the temperature and threshold stored there (fit them
with `mudraj calibrate`). With --train, the two baselines (character n-gram TF-IDF + logistic
regression, attribution-cue rule) are trained and scored on the same articles, side by side; with
--dev too, the TF-IDF baseline's threshold is chosen on dev for the bundle's false-alarm target.
Writes report.json, report.md (from training/evaluation/templates/report.md.j2) and four figures into --out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from serving.batch.io import atomic_write_json, atomic_write_text
from serving.bundle import resolve_bundle
from serving.errors import InputError
from serving.predictor import Predictor, flags, sigmoid
from training.corpus.articles import Article, load_articles
from training.defaults import TARGET_FALSE_ALARM_RATE
from training.evaluation.baselines import score_baselines
from training.evaluation.metrics import breakdown, metrics
from training.evaluation.report import figures, render_report

REDACT = ("none", "reporting", "all")


@dataclass
class Scored:
    """Per-sentence gold labels and model margins (logit inserted - logit reporting)."""

    articles: list[Article]
    labels: np.ndarray
    margins: np.ndarray
    article_index: np.ndarray
    texts: list[str]
    meta: list[dict]


def score(predictor: Predictor, articles: Sequence[Article], kinds_out: list | None = None) -> Scored:
    """Margins for every gold sentence (the bracket-aware segmentation of each article), computed by
    the predictor exactly as `mudraj predict` and the service compute them. kinds_out: filled with the
    kind head's probabilities per article, for bundles that have one."""
    per_article = predictor.article_margins([[s.text for s in a.sentences] for a in articles], kinds_out=kinds_out)
    margins = np.concatenate([m for m, _ in per_article]) if per_article else np.zeros(0)
    from training.corpus.shapes import shapes_of

    labels, art_idx, texts, meta = [], [], [], []
    for a_i, a in enumerate(articles):
        kinds = iter(a.meta.get("kinds") or [])
        voices = iter(a.meta.get("voices") or [])
        for s in a.sentences:
            labels.append(s.label)
            art_idx.append(a_i)
            texts.append(s.text)
            kind = next(kinds, None) if s.label else None
            voice = (next(voices, None) or "house") if s.label else None
            meta.append(
                {
                    "article": a.id,
                    "outlet": a.meta.get("outlet"),
                    "kind": kind,
                    "voice": voice,
                    "genre": a.meta.get("genre") or None,
                    "source": a.meta.get("source") or None,
                    # reporting sentences shaped like an insertion: the hard negatives
                    "shapes": [] if s.label else shapes_of(s.text),
                }
            )
    return Scored(list(articles), np.array(labels), margins, np.array(art_idx), texts, meta)


def stored_calibration(meta: dict) -> dict | None:
    """The dev results `mudraj calibrate` stored in the bundle, if its threshold and temperature are
    still the bundle's (None for an uncalibrated bundle, or one whose values were changed since)."""
    cal = meta.get("metrics", {}).get("dev_calibrated")
    if cal and cal.get("threshold") == meta["threshold"] and cal.get("temperature") == meta.get("temperature", 1.0):
        return cal
    return None


def hard_negatives(s: Scored, probs: np.ndarray, threshold: float) -> dict:
    """False alarms on the reporting sentences shaped like an insertion (training/corpus/shapes.py), all and per shape."""
    shaped = np.array([bool(m["shapes"]) for m in s.meta], bool)
    flagged = flags(probs, threshold)
    row = {
        "sentences": int(shaped.sum()),
        "false_alarm_rate": float(flagged[shaped].mean()) if shaped.any() else None,
        "other_reporting_false_alarm_rate": float(flagged[(s.labels == 0) & ~shaped].mean())
        if ((s.labels == 0) & ~shaped).any()
        else None,
    }
    per: dict[str, list[int]] = {}
    for i, m in enumerate(s.meta):
        for shape in m["shapes"]:
            per.setdefault(shape, []).append(i)
    row["per_shape"] = {
        k: {"sentences": len(v), "false_alarm_rate": float(flagged[v].mean())} for k, v in sorted(per.items())
    }
    return row


def article_voice(s: Scored) -> list[str | None]:
    """Each sentence's group by the voice of its article's insertions (every host is written into by one
    voice): the reporting sentences of a voice's articles count against it, so each voice gets an F1.
    Clean articles: None."""
    voices: dict[int, str] = {}
    for i, m in enumerate(s.meta):
        if m["voice"]:
            voices.setdefault(int(s.article_index[i]), m["voice"])
    return [voices.get(int(a)) for a in s.article_index]


def unseen_writers(s: Scored, probs: np.ndarray, threshold: float, voices: Sequence[str]) -> dict | None:
    """F1 at the threshold on the articles of the test-only voices (written by writers who never saw the
    corpus, the kinds or the training voices' briefs): pooled, and per voice. None when there are none."""
    groups = article_voice(s)
    keep = np.array([g in voices for g in groups], bool)
    if not keep.any():
        return None
    pooled = metrics(s.labels[keep], probs[keep], threshold, s.article_index[keep])
    return {
        "voices": [v for v in voices if v in groups],
        "pooled": {k: v for k, v in pooled.items() if k != "confusion"},
        "per_voice": breakdown(s.labels[keep], probs[keep], threshold, [g for g, k in zip(groups, keep) if k]),
    }


def genuine_false_alarms(predictor: Predictor, articles: Sequence[Article], threshold: float) -> dict:
    """The genuine-text benchmark: share of sentences and of articles flagged, overall and per source,
    genre and style (news/opinion), for articles in which nothing was inserted."""
    bad = [a.id for a in articles if any(x.label for x in a.sentences)]
    if bad:
        raise InputError(f"the genuine benchmark holds {len(bad)} articles with inserted sentences, e.g. {bad[:3]}")
    per = predictor.score_articles([[x.text for x in a.sentences] for a in articles])
    flagged = [flags(p, threshold) for p, _ in per]

    def row(idx: list[int]) -> dict:
        n = sum(len(flagged[i]) for i in idx)
        return {
            "articles": len(idx),
            "sentences": n,
            "sentences_flagged": float(sum(int(flagged[i].sum()) for i in idx) / max(1, n)),
            "articles_flagged": float(sum(bool(flagged[i].any()) for i in idx) / max(1, len(idx))),
        }

    out = {"all": row(list(range(len(articles))))}
    for key in ("source", "genre", "style"):
        groups: dict[str, list[int]] = {}
        for i, a in enumerate(articles):
            groups.setdefault(str(a.meta.get(key) or "unknown"), []).append(i)
        out[f"per_{key}"] = {g: row(idx) for g, idx in sorted(groups.items())}
    return out


def kind_head(s: Scored, kind_probs: list, kinds: list[str], out: Path) -> dict | None:
    """The kind head on the gold inserted sentences whose kind is annotated: accuracy, macro-F1, per-kind
    precision/recall, the pairs most confused, accuracy per voice (test-only voices apart), and a
    confusion-matrix figure (kind_confusion.png). None for a bundle without a kind head."""
    if not kinds or not kind_probs:
        return None
    from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

    probs = np.concatenate(kind_probs)
    idx = [i for i, m in enumerate(s.meta) if s.labels[i] == 1 and m["kind"] in kinds]
    if not idx:
        return None
    gold = np.array([kinds.index(s.meta[i]["kind"]) for i in idx])
    pred = probs[idx].argmax(1)
    present = sorted(set(gold.tolist()))
    p, r, f, n = precision_recall_fscore_support(gold, pred, labels=present, zero_division=0)
    cm = confusion_matrix(gold, pred, labels=list(range(len(kinds))))
    pairs = [
        (kinds[a], kinds[b], int(cm[a, b])) for a in range(len(kinds)) for b in range(len(kinds)) if a != b and cm[a, b]
    ]
    pairs.sort(key=lambda x: -x[2])
    voices: dict[str, list[int]] = {}
    for j, i in enumerate(idx):
        voices.setdefault(s.meta[i]["voice"] or "house", []).append(j)
    figure(out, cm, kinds)
    return {
        "sentences": len(idx),
        "accuracy": float((gold == pred).mean()),
        "macro_f1": float(f1_score(gold, pred, labels=present, average="macro", zero_division=0)),
        "per_kind": {
            kinds[k]: {"n": int(nk), "precision": float(pk), "recall": float(rk), "f1": float(fk)}
            for k, pk, rk, fk, nk in zip(present, p, r, f, n)
        },
        "most_confused": [{"gold": a, "predicted": b, "count": c} for a, b, c in pairs[:8]],
        "per_voice": {
            v: {"n": len(js), "accuracy": float((gold[js] == pred[js]).mean())} for v, js in sorted(voices.items())
        },
        "figure": "kind_confusion.png",
    }


def figure(out: Path, cm: np.ndarray, kinds: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = cm.sum(1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros_like(cm, dtype=float), where=rows > 0)
    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(kinds)), kinds, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(kinds)), [f"{k} ({int(n)})" for k, n in zip(kinds, rows[:, 0])], fontsize=8)
    for a in range(len(kinds)):
        for b in range(len(kinds)):
            if cm[a, b]:
                ax.text(
                    b,
                    a,
                    str(int(cm[a, b])),
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="white" if share[a, b] > 0.5 else "black",
                )
    ax.set_xlabel("predicted kind")
    ax.set_ylabel("gold kind (test insertions)")
    ax.set_title("Kind head: confusion on the test split (row share)")
    fig.tight_layout()
    Path(out).mkdir(parents=True, exist_ok=True)
    fig.savefig(Path(out) / "kind_confusion.png", dpi=110)
    plt.close(fig)


def worst_errors(s: Scored, probs: np.ndarray, threshold: float, n: int, redact: str) -> list[dict]:
    """The n most confident mistakes; redacted sentences are named by article#index instead of quoted."""
    first: dict[str, int] = {}
    for i, m in enumerate(s.meta):
        first.setdefault(m["article"], i)
    errors = []
    for i in np.argsort(-np.abs(probs - s.labels))[: n * 3]:
        if flags(probs[i], threshold) != bool(s.labels[i]):
            m = s.meta[i]
            hidden = redact == "all" or (redact == "reporting" and not s.labels[i])
            where = f"{m['article']}#{i - first[m['article']]}"
            errors.append(
                {
                    "article": m["article"],
                    "outlet": m["outlet"],
                    "gold": "inserted" if s.labels[i] else "reporting",
                    "score": round(float(probs[i]), 4),
                    "kind": m["kind"],
                    "text": f"(text not reproduced: sentence {where})" if hidden else s.texts[i],
                }
            )
        if len(errors) >= n:
            break
    return errors


def evaluate(
    model: Path | None,
    data: Sequence[Path],
    out: Path,
    train: Sequence[Path] = (),
    dev: Sequence[Path] = (),
    precision: str = "auto",
    n_errors: int = 25,
    redact: str = "none",
    compare: bool = False,
    genuine: Sequence[Path] = (),
) -> dict:
    """Score the labelled articles in data with the bundle's stored temperature and threshold; write
    report.json, report.md and figures into out; return the report. Never writes into the bundle.
    model: a bundle or a training run (its bundle); None: the default one (serving.bundle.resolve_bundle).
    redact: "none", "reporting" (do not reproduce the text of reporting sentences, e.g. licensed host
    articles) or "all" (no sentence text in the report at all).
    compare: labels from aligning each published text with its source (training/evaluation/compare_labels.py).
    genuine: articles with no insertion (build/corpus/genuine-test.jsonl): the genuine false-alarm benchmark."""
    t0 = time.time()
    if redact not in REDACT:
        raise InputError(f"redact must be one of {list(REDACT)}, got {redact!r}")
    model, out = resolve_bundle(model), Path(out)
    if out.resolve().is_relative_to(model.resolve()):
        raise InputError(f"report folder {out} is inside the bundle {model}; evaluation never writes into a bundle")
    predictor = Predictor(model, precision=precision)
    temperature, threshold = predictor.temperature, predictor.threshold
    calibration = stored_calibration(predictor.meta)

    alignment = None
    if compare:
        from training.evaluation.compare_labels import compare_articles

        articles, alignment = compare_articles(data)
    else:
        articles = load_articles(data)
    kind_probs: list = []
    s = score(predictor, articles, kinds_out=kind_probs)
    probs = sigmoid(s.margins / temperature)
    result = {
        "model": predictor.info | {"bundle": str(model), "temperature": temperature, "threshold": threshold},
        "data": [str(p) for p in data],
        "dev": calibration,
        "test": metrics(s.labels, probs, threshold, s.article_index),
        "per_outlet": breakdown(s.labels, probs, threshold, [m["outlet"] for m in s.meta]),
        "per_kind": breakdown(s.labels, probs, threshold, [m["kind"] for m in s.meta], false_alarms=False),
        "per_voice": breakdown(s.labels, probs, threshold, [m["voice"] for m in s.meta], false_alarms=False),
        "per_source": breakdown(s.labels, probs, threshold, [m["source"] for m in s.meta]),
        "per_genre": breakdown(s.labels, probs, threshold, [m["genre"] for m in s.meta]),
        "per_article_voice": breakdown(s.labels, probs, threshold, article_voice(s)),
        "hard_negatives": hard_negatives(s, probs, threshold),
    }
    from training.corpus.insertions import TEST_ONLY_VOICES

    result["unseen_writers"] = unseen_writers(s, probs, threshold, TEST_ONLY_VOICES)
    result["kind_head"] = kind_head(s, kind_probs, predictor.kinds, out)
    if genuine:
        result["genuine"] = genuine_false_alarms(predictor, load_articles(genuine), threshold) | {
            "data": [str(p) for p in genuine]
        }
    if alignment is not None:
        result["alignment"] = alignment
    # The TF-IDF baseline aims at the false-alarm target the model was calibrated for.
    target_far = calibration["target_false_alarm_rate"] if calibration else TARGET_FALSE_ALARM_RATE
    result["baselines"], tfidf_probs = score_baselines(
        s.texts,
        s.labels,
        s.article_index,
        load_articles(train) if train else [],
        load_articles(dev) if (train and dev) else [],
        predictor.encoder.normalization,
        target_far,
    )
    result["worst_errors"] = worst_errors(s, probs, threshold, n_errors, redact)
    result["seconds"] = round(time.time() - t0, 1)

    out.mkdir(parents=True, exist_ok=True)
    figs = figures(out, s.labels, probs, threshold, tfidf_probs)
    atomic_write_json(out / "report.json", result)
    atomic_write_text(out / "report.md", render_report(result, figs))
    return result
