"""Commands of the shipping stage: `mudraj prune`, `mudraj export`, `mudraj calibrate`, `mudraj release`, `mudraj gate`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from serving.defaults import DEFAULT_MODEL
from training import defaults as D  # light: paths and numbers only
from training.cli.common import CORPORA_OPT, CORPUS_OPT, app, bundle_of, corpus_app, fail, guard  # noqa: F401 (one header for every stage module)


@app.command()
def prune(
    run_dir: Path = typer.Argument(..., help="a finished training run (Unigram tokenizer, e.g. e5)"),
    out: Path = typer.Option(..., "--out", "-o", help="the pruned run folder"),
    corpus: Path = CORPUS_OPT,
    extra: List[Path] = typer.Option([D.CORPUS_DIR / "train.jsonl"], help="more reference text files"),
):
    """Shrink the vocabulary to the pieces Arabic news needs (then `mudraj export` the result)."""
    from training.ship.prune import prune as run_prune

    extra = [p for p in extra if p.exists()]
    typer.echo(json.dumps(guard(lambda: run_prune(run_dir, out, corpus, extra)), indent=2))


@app.command()
def export(
    run_dir: Path = typer.Argument(..., help="a finished training run"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="bundle folder (default RUN_DIR/bundle)"),
    name: Optional[str] = typer.Option(None, help="model name in the bundle"),
    atol: float = typer.Option(D.EXPORT_ATOL, help="max |logit| difference ONNX fp32 vs PyTorch"),
    max_int8_change: float = typer.Option(D.MAX_INT8_LABEL_CHANGE, help="max share of dev labels int8 may change"),
):
    """Export a run to an ONNX model bundle (fp32 + int8), checked for parity."""
    from training.ship.export import ParityError
    from training.ship.export import export as run_export

    try:
        bundle = guard(lambda: run_export(run_dir, out, name=name, atol=atol, max_int8_label_change=max_int8_change))
    except ParityError as err:
        fail(f"parity check failed: {err}", 3)
    meta = json.loads((bundle / "metadata.json").read_text())
    p = meta["parity"]
    typer.echo(
        f"bundle: {bundle}  fp32 max |Δlogit|: {p['fp32_max_abs_logit_diff']:.2e}  "
        f"int8 label agreement: {p.get('int8_label_agreement', float('nan')):.4f} on {p['sentences']} dev sentences"
    )


@app.command()
def calibrate(
    model: Path = typer.Option(
        ..., "--model", "-m", help="bundle or training run to calibrate (its metadata.json is rewritten)"
    ),
    dev: List[Path] = typer.Option(..., "--dev", help="labelled dev articles (.txt folder / JSONL)"),
    target_far: float = typer.Option(
        D.TARGET_FALSE_ALARM_RATE, "--target-far", help="false-alarm rate on reporting sentences the threshold aims at"
    ),
    best_f1: bool = typer.Option(False, "--best-f1", help="choose the threshold for best F1 instead"),
    genuine: List[Path] = typer.Option(
        [],
        "--genuine",
        help="genuine articles of dev outlets (no insertion, "
        "e.g. build/corpus/genuine-dev.jsonl): the threshold is raised until "
        "at most --genuine-rate of their sentences are flagged",
    ),
    genuine_rate: float = typer.Option(
        D.GENUINE_FLAG_RATE, "--genuine-rate", help="share of genuine sentences the threshold may flag"
    ),
    precision: str = typer.Option("auto", help="int8, fp32 or auto"),
):
    """Fit temperature and threshold on dev articles; store them in the bundle for predict, serve and evaluate."""
    from training.ship.calibrate import calibrate as run_calibrate

    bundle = bundle_of(model)
    d = guard(
        lambda: run_calibrate(
            bundle,
            dev,
            target_far=None if best_f1 else target_far,
            precision=precision,
            genuine=genuine,
            genuine_target=genuine_rate,
        )
    )
    target = "best F1" if d["target_false_alarm_rate"] is None else f"false alarms <= {d['target_false_alarm_rate']}"
    typer.echo(
        f"stored in {bundle / 'metadata.json'}: threshold {d['threshold']:.4f} ({target})  "
        f"temperature {d['temperature']:.3f}"
    )
    typer.echo(
        f"dev ({d['articles']} articles): F1 {d['f1']:.3f}  P {d['precision']:.3f}  R {d['recall']:.3f}  "
        f"false alarms {d['false_alarm_rate']:.3f}  ECE {d['ece']:.3f}"
    )
    if d.get("genuine_dev"):
        g = d["genuine_dev"]
        typer.echo(
            f"genuine dev ({g['articles']} articles): {g['sentences_flagged']:.2%} of sentences flagged "
            f"(target {g['target_flag_rate']:.0%}; threshold for it alone {g['threshold_for_target']:.4f})"
        )


@app.command()
def release(
    run_dir: Path = typer.Argument(..., help="a finished training run"),
    out: Path = typer.Option(DEFAULT_MODEL, "--out", "-o", help="the shipped bundle folder"),
    corpus: Path = CORPUS_OPT,
    corpus_dir: Path = typer.Option(D.CORPUS_DIR, help="output of `mudraj corpus build`"),
    reports: Path = typer.Option(D.REPORTS / "e5-small", help="where the evaluation reports go"),
    target_far: float = typer.Option(D.TARGET_FALSE_ALARM_RATE, help="dev false-alarm target for the threshold"),
):
    """Prune, export, calibrate and evaluate a run into the shipped int8 bundle with its model card."""
    from training.ship.release import release as run_release

    example = D.EXAMPLE
    r = guard(lambda: run_release(run_dir, out, corpus, corpus_dir, reports, example, target_far))
    typer.echo(json.dumps({k: v for k, v in r.items() if k != "baselines"}, indent=2))


@app.command()
def gate(
    shipped: Path = typer.Option(D.REPO / "models" / "mudraj-e5-small", "--shipped", help="the shipped bundle"),
    candidate: Path = typer.Option(..., "--candidate", help="the candidate bundle"),
    shipped_test: Path = typer.Option(
        ..., help="report (folder or report.json) of the shipped bundle on the extended test split, made with --genuine"
    ),
    shipped_old: Path = typer.Option(..., help="its report on the old out-of-outlet test"),
    candidate_test: Path = typer.Option(..., help="the candidate's report on the extended test split"),
    candidate_old: Path = typer.Option(..., help="the candidate's report on the old out-of-outlet test"),
    speed_data: Path = typer.Option(
        D.CORPUS_DIR / "test.jsonl", "--speed-data", help="articles to time both bundles on"
    ),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="write the verdict (gate.json, gate.md) here"),
):
    """The release rule (issue 20): ship the candidate only if it beats the shipped model on unseen writers,
    flags no more genuine text, keeps the old test, every kind and the speed. Exit 1 when it does not."""
    from serving.batch.io import atomic_write_json, atomic_write_text
    from training.ship.gate import gate as run_gate
    from training.ship.gate import render

    reports = {
        "shipped_test": shipped_test,
        "shipped_old": shipped_old,
        "candidate_test": candidate_test,
        "candidate_old": candidate_old,
    }
    verdict = guard(lambda: run_gate(bundle_of(shipped), bundle_of(candidate), reports, speed_data))
    text = render(verdict)
    typer.echo(text)
    if out is not None:
        atomic_write_json(out / "gate.json", verdict)
        atomic_write_text(out / "gate.md", text)
    if not verdict["ship"]:
        raise typer.Exit(1)
