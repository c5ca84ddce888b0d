"""Release a trained run as the shipped bundle: prune, export, calibrate, evaluate, card.

    mudraj release runs/e5-small --out models/mudraj-e5-small

Steps (each one the same code a user runs by hand):
1. `prune` the vocabulary to what Arabic news needs (reference: the whole SaudiNewsNet corpus and
   our train/dev insertions; never the test split).
2. `export` both the full and the pruned run; the pruned int8 bundle must give the same dev
   scores as the full int8 bundle within PRUNE_TOLERANCE. The full model's dev scores are kept in
   the bundle (`reference_dev_scores.json`) so a test can re-check the shipped model.
3. `calibrate` the pruned bundle on dev: temperature and threshold are fitted and stored in it.
4. `evaluate` it (read-only) on the out-of-outlet test split, and on the shipped example article
   when it is there.
5. Copy the int8 model, tokenizer and metadata (no fp32: the repo copy must stay small) and
   write the model card (training/evaluation/templates/model_card.md.j2).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from serving.batch.io import atomic_dir, atomic_write_json, atomic_write_text
from serving.bundle import METADATA, MODEL_FILES, write_metadata
from serving.predictor import Predictor, sigmoid
from training.corpus.articles import load_articles
from training.defaults import PRUNE_TOLERANCE, TARGET_FALSE_ALARM_RATE
from training.model.backbones import BACKBONE_NOTES

REFERENCE = "reference_dev_scores.json"


# What the model card says about a backbone spec (training/model/backbones.py) beyond its config; a spec
# not listed here is named as it is, and the card points at its own licence.
def dev_scores(bundle: Path, dev: Path) -> tuple[list[str], np.ndarray]:
    """P(inserted) at temperature 1 for every dev sentence: comparable whatever temperature a bundle
    was later calibrated to. Default batch size: what predict, evaluate and the service use."""
    p = Predictor(bundle, precision="int8")
    arts = load_articles([dev])
    margins = p.article_margins([[s.text for s in a.sentences] for a in arts])
    ids = [f"{a.id}:{i}" for a in arts for i in range(len(a.sentences))]
    return ids, sigmoid(np.concatenate([m for m, _ in margins]))


def release(
    run_dir: Path,
    out: Path,
    corpus: Path,
    corpus_dir: Path,
    reports: Path,
    example: Path | None = None,
    target_far: float | None = TARGET_FALSE_ALARM_RATE,
) -> dict:
    from training.evaluation.evaluate import evaluate
    from training.ship.calibrate import calibrate
    from training.ship.export import export
    from training.ship.prune import prune

    run_dir, out, corpus_dir, reports = Path(run_dir), Path(out), Path(corpus_dir), Path(reports)
    train, dev, test = (corpus_dir / f"{s}.jsonl" for s in ("train", "dev", "test"))
    work = run_dir.parent / f"{run_dir.name}-release"
    pruned = work / "pruned-run"
    stats = prune(run_dir, pruned, corpus, extra=[train, dev])
    # The pruned model chooses which MatMuls stay fp32 (training/ship/export.py); the full-vocabulary
    # reference keeps the same ones, so the two differ by the vocabulary alone.
    small_bundle = export(pruned, work / "pruned-bundle")
    kept = json.loads((small_bundle / METADATA).read_text(encoding="utf-8"))["parity"].get("int8_recipe", {})
    full_bundle = export(run_dir, work / "full-bundle", fp32_matmuls=kept.get("fp32_matmuls", []))

    ids, full = dev_scores(full_bundle, dev)
    ids2, small = dev_scores(small_bundle, dev)
    assert ids == ids2
    diff = float(np.abs(full - small).max())
    agree = float(((full >= 0.5) == (small >= 0.5)).mean())
    if diff > PRUNE_TOLERANCE:
        raise RuntimeError(f"pruning changed dev scores by {diff:.4f} > {PRUNE_TOLERANCE}")
    stats.update(
        dev_sentences=len(ids), dev_max_abs_score_diff=diff, dev_label_agreement_at_0_5=agree, tolerance=PRUNE_TOLERANCE
    )

    # The genuine-text benchmark (issue 20), when the corpus has it: its dev-outlet half caps the threshold's
    # flag rate on human text, its test-outlet half is reported.
    g_dev, g_test = corpus_dir / "genuine-dev.jsonl", corpus_dir / "genuine-test.jsonl"
    calibrate(small_bundle, [dev], target_far, genuine=[g_dev] if g_dev.is_file() else [])
    # Reports are committed: host sentences (CC BY-NC-SA) and the example's are never reproduced in them.
    report = evaluate(
        small_bundle,
        [test],
        reports / "test",
        train=[train],
        dev=[dev],
        redact="reporting",
        genuine=[g_test] if g_test.is_file() else [],
    )
    ex = None
    if example is not None and Path(example).is_file():
        ex = evaluate(small_bundle, [example], reports / "example", redact="all")

    with atomic_dir(out) as tmp:
        for name in (MODEL_FILES["int8"], "tokenizer.json"):
            shutil.copyfile(small_bundle / name, tmp / name)
        atomic_write_json(
            tmp / REFERENCE,
            {
                "note": "P(inserted) of the full-vocabulary int8 model on the dev split",
                "tolerance": PRUNE_TOLERANCE,
                "ids": ids,
                "scores": [round(float(x), 6) for x in full],
            },
        )
        meta = json.loads((small_bundle / METADATA).read_text(encoding="utf-8"))
        meta["name"] = out.name
        meta["metrics"]["test"] = {k: v for k, v in report["test"].items() if k != "confusion"}
        meta["pruning"] = stats
        write_metadata(tmp, meta, checksums=True)
        atomic_write_text(tmp / "README.md", model_card(meta, report, ex, run_dir))
    size = sum(p.stat().st_size for p in out.iterdir())
    return {
        "bundle": str(out),
        "bytes": size,
        "pruning": stats,
        "test": report["test"],
        "baselines": report["baselines"],
        "example": ex and ex["test"],
    }


def describe_machine(machine: dict | None) -> str | None:
    """The training machine as run.json records it, in words; None when it records nothing."""
    if not machine:
        return None
    if machine.get("gpu"):
        return f"{machine['gpu']} (GPU)"
    cores = f"{machine['cpu_count']}-core " if machine.get("cpu_count") else ""
    cpu = f" ({machine['cpu']})" if machine.get("cpu") else ""
    return f"a {cores}CPU{cpu}"


def model_card(meta: dict, report: dict, example: dict | None, run_dir: Path) -> str:
    """README.md of a released bundle, from training/evaluation/templates/model_card.md.j2. The backbone comes
    from the bundle metadata and the run's model config; the machine from what run.json records."""
    from training.evaluation.evaluate import stored_calibration
    from training.evaluation.report import render

    run_dir = Path(run_dir)
    run = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    config_json = run_dir / "model" / "config.json"
    arch = json.loads(config_json.read_text(encoding="utf-8")) if config_json.is_file() else {}
    spec = meta["backbone"]["name"]
    notes = BACKBONE_NOTES.get(spec, {})
    shape = [f"`{spec}`"] if "name" in notes else []  # an unknown spec is named in the title already
    if meta["backbone"].get("config"):
        shape.append(meta["backbone"]["config"])  # the architecture, e.g. bert
    if arch.get("num_hidden_layers"):
        shape += [f"{arch['num_hidden_layers']} layers", f"hidden {arch.get('hidden_size')}"]
    backbone = {
        "spec": spec,
        "title": notes.get("name", f"`{spec}`"),
        "shape": ", ".join(shape),
        "source": notes.get("source"),
        "licence": notes.get("licence"),
    }
    rows = {"model": report["test"], **report["baselines"]}
    return render(
        "model_card.md.j2",
        meta=meta,
        run=run,
        cfg=run["config"],
        run_dir=run_dir,
        backbone=backbone,
        report=report,
        calibration=stored_calibration(meta),
        pruning=meta.get("pruning"),
        test=report["test"],
        rows=rows,
        machine=describe_machine(run.get("machine")),
        config_file=run.get("config_file"),
        example=example and example["test"],
        example_name=example and ", ".join(Path(p).name for p in example["data"]),
    )
