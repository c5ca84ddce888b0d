"""Commands of the evaluation stage: `mudraj evaluate`, `mudraj report`, `mudraj diff`, `mudraj transfer`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from training import defaults as D  # light: paths and numbers only
from training.cli.common import CORPORA_OPT, CORPUS_OPT, app, bundle_of, corpus_app, fail, guard  # noqa: F401 (one header for every stage module)


@app.command()
def evaluate(
    model: Path = typer.Option(None, "--model", "-m", help="bundle or training run (default: the shipped one)"),
    data: List[Path] = typer.Option(..., "--data", "-d", help="held-out labelled articles (.txt folder / JSONL)"),
    train: List[Path] = typer.Option([], "--train", help="training articles for the TF-IDF baseline"),
    dev: List[Path] = typer.Option(
        [],
        "--dev",
        help="dev articles: the TF-IDF baseline's threshold is chosen there (with --train); the bundle is not changed",
    ),
    out: Path = typer.Option(D.REPORTS / "latest", "--out", "-o", help="report folder"),
    precision: str = typer.Option("auto", help="int8, fp32 or auto"),
    redact: str = typer.Option("none", help="none | reporting | all: keep sentence text out of the report"),
    compare: bool = typer.Option(
        False,
        "--compare",
        help="labels from aligning published texts with their "
        "sources (JSONL source/published pairs, or bracketed articles)",
    ),
    genuine: List[Path] = typer.Option(
        [],
        "--genuine",
        help="articles with no insertion (e.g. build/corpus/genuine-test.jsonl): the genuine false-alarm benchmark",
    ),
):
    """Score held-out articles through the serving predictor, with the threshold and temperature stored in
    the bundle (`mudraj calibrate`); write report.md/json and figures. The bundle is only read."""
    from training.evaluation.evaluate import evaluate as run_eval

    bundle = bundle_of(model)
    r = guard(
        lambda: run_eval(
            bundle,
            data,
            out,
            train=train,
            dev=dev,
            precision=precision,
            redact=redact,
            compare=compare,
            genuine=genuine,
        )
    )
    t = r["test"]
    typer.echo(f"report: {out / 'report.md'}  ({r['seconds']} s)")
    typer.echo(
        f"F1 {t['f1']:.3f}  P {t['precision']:.3f}  R {t['recall']:.3f}  false alarms {t['false_alarm_rate']:.3f}  "
        f"PR-AUC {t.get('pr_auc', float('nan')):.3f}  ECE {t['ece']:.3f}  threshold {r['model']['threshold']:.4f}"
    )
    for name, b in r["baselines"].items():
        typer.echo(f"  baseline {name}: F1 {b['f1']:.3f}  false alarms {b['false_alarm_rate']:.3f}")
    if r.get("unseen_writers"):
        u = r["unseen_writers"]
        typer.echo(
            f"unseen writers ({', '.join(u['voices'])}): F1 {u['pooled']['f1']:.3f}  "
            + "  ".join(f"{v} {m.get('f1', float('nan')):.3f}" for v, m in u["per_voice"].items())
        )
    if r.get("genuine"):
        g = r["genuine"]["all"]
        typer.echo(
            f"genuine ({g['articles']} articles): {g['sentences_flagged']:.2%} of sentences and "
            f"{g['articles_flagged']:.1%} of articles flagged"
        )


@app.command("report")
def archive_report(
    labels: Path = typer.Argument(
        ..., help="`mudraj predict` output: a .jsonl or .parquet file, or a `--engine ray` output folder"
    ),
    out: Path = typer.Option(D.REPO / "archive-report", "--out", "-o", help="folder for index.html and groups.csv"),
):
    """An archive's labels for a researcher: inserted share per outlet and month (with intervals), kinds per
    outlet, per-article scores, the articles to read first; one self-contained HTML page and a CSV."""
    from training.evaluation.archive_report import report

    typer.echo(json.dumps(guard(lambda: report(labels, out)), indent=2))


@app.command("diff")
def diff(
    old: Path = typer.Argument(..., help="report.json of the model in use"),
    new: Path = typer.Argument(..., help="report.json of the candidate, on the same articles"),
    out: Path = typer.Option(None, "--out", "-o", help="write the markdown table here"),
    old_name: str = typer.Option("old", help="column title"),
    new_name: str = typer.Option("new", help="column title"),
):
    """Compare two evaluation reports cell by cell (training/evaluation/diff.py); exit 1 if a cell is worse."""
    from serving.batch.io import atomic_write_text
    from training.evaluation.diff import diff as run_diff
    from training.evaluation.diff import markdown

    reports = []
    for path in (old, new):
        if not path.is_file():
            raise typer.BadParameter(f"{path}: no such report.json")
        reports.append(json.loads(path.read_text(encoding="utf-8")))
    if reports[0]["test"]["sentences"] != reports[1]["test"]["sentences"]:
        raise typer.BadParameter(
            f"the reports count {reports[0]['test']['sentences']} and "
            f"{reports[1]['test']['sentences']} sentences: not the same articles"
        )
    rows = run_diff(*reports)
    text = markdown(rows, old_name, new_name)
    if out:
        atomic_write_text(out, text)
    typer.echo(text)
    raise typer.Exit(1 if any(r["verdict"] == "worse" for r in rows) else 0)


@app.command("transfer")
def transfer(
    config: Path = typer.Option(
        D.REPO / "configs" / "e5-small.yaml", "--config", "-c", help="the training config each held-out-source run uses"
    ),
    max_steps: int = typer.Option(
        0, help="cap each training run (0: the config's epochs); a CPU budget, stated in the table"
    ),
    sources: Optional[List[str]] = typer.Option(None, "--source", help="only these (default: every source)"),
    against: Optional[List[str]] = typer.Option(
        None, help="NAME=report.json of a model trained on all sources, compared on the same articles"
    ),
    corpora: Path = typer.Option(D.CORPORA, help="the host corpora"),
    test: Path = typer.Option(D.CORPUS_DIR / "test.jsonl", help="the ordinary test split"),
    out: Path = typer.Option(D.REPORTS / "transfer", help="report folder"),
    runs: Path = typer.Option(D.REPO / "runs", help="where the runs go"),
):
    """Leave-one-source-out: train without each host source, test on it (see training/evaluation/transfer.py)."""
    from serving.batch.io import atomic_write_json, atomic_write_text
    from training.corpus.sources import READERS as SOURCES
    from training.evaluation.transfer import leave_one_out, plot, table

    chosen = sources or sorted(SOURCES)
    unknown = sorted(set(chosen) - set(SOURCES))
    if unknown:
        raise typer.BadParameter(f"unknown source(s) {unknown}; known: {sorted(SOURCES)}", param_hint="--source")
    given = {}
    for item in against or []:
        name, sep, path = item.partition("=")
        if not sep or not Path(path).is_file():
            raise typer.BadParameter(f"{item!r}: expected NAME=path/to/report.json", param_hint="--against")
        given[name] = json.loads(Path(path).read_text(encoding="utf-8"))
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for source in chosen:
        rows.append(leave_one_out(config, source, max_steps, corpora, D.DATA, test, out, runs))
        atomic_write_text(
            out / "README.md",
            "# Leave one source out\n\n"
            + table(rows, given)
            + "\n![F1, recall and false alarms per held-out source](transfer.png)\n",
        )
        atomic_write_json(out / "transfer.json", rows)
        plot(rows, given, out / "transfer.png")
    typer.echo(table(rows, given))
