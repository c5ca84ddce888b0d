"""Leave-one-source-out: train on two host sources, test on the third, for each source.

    mudraj transfer --config configs/e5-small.yaml --max-steps 300 \
        --against all-sources=reports/e5-small/test/report.json

For each source S: build the corpus without S (`mudraj corpus build --hold-out-source S`, into
build/loso-S, unless it is there), train the config on it (runs/<name>-loso-S; an interrupted run
resumes), export, calibrate on its dev split, and evaluate on the articles of S in the ordinary
test split. Those are the same articles the per-source rows of an ordinary test report count, so
each model trained with all sources (`--against NAME=report.json`) is compared on the same cells.
Writes reports/transfer/S/ (one evaluation report each), transfer.json and README.md, the table.
"""

from __future__ import annotations

import json
from pathlib import Path

from serving.errors import InputError
from training import defaults as D

METRICS = ("f1", "precision", "recall", "false_alarm_rate")


def source_split(test: Path, source: str, out: Path) -> Path:
    """The articles of one source in a corpus split (JSON lines), written to `out`."""
    from serving.batch.inputs import read_jsonl
    from serving.batch.io import atomic_write_jsonl

    rows = [r for _, r in read_jsonl(test) if r.get("source") == source]
    if not rows:
        raise InputError(f"{test} has no article from source {source!r}")
    atomic_write_jsonl(out, rows)
    return out


def leave_one_out(
    config: Path, source: str, max_steps: int, corpora: Path, data: Path, test: Path, reports: Path, runs: Path
) -> dict:
    """One row of the table: train without `source`, evaluate on its test articles; returns the report."""
    from training.corpus.build import build
    from training.evaluation.evaluate import evaluate
    from training.model.config import TrainConfig
    from training.model.train import train
    from training.ship.calibrate import calibrate, is_calibrated
    from training.ship.export import export

    corpus = D.REPO / "build" / f"loso-{source}"
    if not (corpus / "train.jsonl").is_file():
        build(data, corpora, corpus, hold_out_source=source)
    cfg = TrainConfig.load(config)
    name = f"{cfg.name}-loso-{source}"
    run = runs / name
    sets = [
        f"name={name}",
        f"output_dir={run}",
        f"train_data=[{corpus / 'train.jsonl'}]",
        f"dev_data=[{corpus / 'dev.jsonl'}]",
    ] + ([f"max_steps={max_steps}"] if max_steps > 0 else [])
    if not (run / "run.json").is_file():
        train(TrainConfig.load(config, sets), resume=(run / "checkpoints").is_dir(), config_file=config)
    bundle = run / "bundle"
    if not (bundle / "metadata.json").is_file():
        export(run, bundle)
    if not is_calibrated(bundle):  # stored state: an export whose calibration was interrupted is calibrated now
        calibrate(bundle, [corpus / "dev.jsonl"])
    held_out = source_split(test, source, D.REPO / "build" / "transfer" / f"test-{source}.jsonl")
    genuine = genuine_of(test.parent, source, D.REPO / "build" / "transfer" / f"genuine-{source}.jsonl")
    report = evaluate(bundle, [held_out], reports / source, redact="reporting", genuine=[genuine] if genuine else [])
    run_json = json.loads((run / "run.json").read_text(encoding="utf-8"))
    return {
        "source": source,
        "train_articles": run_json["train"]["articles"],
        "steps": run_json["steps"],
        "train_seconds": run_json["train_seconds"],
        "test": report["test"],
        "per_voice": report.get("per_voice"),
        "hard_negatives": report.get("hard_negatives"),
        "genuine": (report.get("genuine") or {}).get("all"),
    }


def genuine_of(corpus_dir: Path, source: str, out: Path) -> Path | None:
    """The genuine benchmark's articles of one source (both halves: a held-out source is unseen whole),
    for the genuine-text false alarms of the model trained without it; None when the corpus has none."""
    from serving.batch.inputs import read_jsonl
    from serving.batch.io import atomic_write_jsonl

    rows = [
        r
        for name in ("genuine-dev.jsonl", "genuine-test.jsonl")
        if (Path(corpus_dir) / name).is_file()
        for _, r in read_jsonl(Path(corpus_dir) / name)
        if r.get("source") == source
    ]
    if not rows:
        return None
    atomic_write_jsonl(out, rows)
    return out


def completed(cell: dict) -> dict:
    """A per-source cell with precision and F1, derived exactly from its counts (sentences, inserted,
    recall, false-alarm rate) where an older report gives recall and false alarms only."""
    from training.evaluation.metrics import f1_of

    if cell.get("f1") is not None or cell.get("recall") is None or cell.get("false_alarm_rate") is None:
        return cell
    tp = round(cell["recall"] * cell["inserted"])
    fp = round(cell["false_alarm_rate"] * (cell["sentences"] - cell["inserted"]))
    precision = tp / (tp + fp) if tp + fp else 0.0
    return {**cell, "precision": precision, "f1": f1_of(precision, cell["recall"])}


def against_cell(report: dict, source: str) -> dict:
    """A model given with --against, on one held-out source: its report's per-source cell, completed."""
    return completed((report.get("per_source") or {}).get(source) or {})


def plot(rows: list[dict], against: dict[str, dict], path: Path) -> Path:
    """transfer.png: F1, recall and false alarms on each held-out source, for the model trained without
    it next to each model given with --against."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from serving.batch.io import atomic_write_bytes

    models = ["trained without it", *against]
    cells = {r["source"]: [r["test"], *(against_cell(a, r["source"]) for a in against.values())] for r in rows}
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8))
    x = np.arange(len(rows))
    width = 0.8 / len(models)
    for ax, metric, title in zip(axes, ("f1", "recall", "false_alarm_rate"), ("F1", "recall", "false alarms")):
        for i, name in enumerate(models):
            values = [cells[r["source"]][i].get(metric) for r in rows]
            ax.bar(
                x + (i - (len(models) - 1) / 2) * width, [np.nan if v is None else v for v in values], width, label=name
            )
        ax.set_xticks(x, [r["source"] for r in rows])
        ax.set_title(f"{title} on the held-out source")
    axes[0].legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path


def table(rows: list[dict], against: dict[str, dict]) -> str:
    """The markdown table: each held-out source, the model trained without it, then the models given."""
    from training.evaluation.report import cell

    head = ["held-out source", "sentences", "inserted", "model", *METRICS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        t = r["test"]
        g = r.get("genuine")
        genuine = (
            (
                f"; genuine text: {100 * g['sentences_flagged']:.2f}% of sentences, "
                f"{100 * g['articles_flagged']:.1f}% of {g['articles']} articles flagged"
            )
            if g
            else ""
        )
        lines.append(
            f"| {r['source']} | {t['sentences']} | {t['inserted']} | trained without it "
            f"({r['train_articles']} articles, {r['steps']} steps{genuine}) | "
            + " | ".join(cell(t[m]) for m in METRICS)
            + " |"
        )
        for name, report in against.items():
            s = against_cell(report, r["source"])
            if s:
                lines.append(f"| | | | {name} | " + " | ".join(cell(s.get(m)) for m in METRICS) + " |")
    return "\n".join(lines) + "\n"
