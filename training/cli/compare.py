"""`mudraj compare SOURCE PUBLISHED`: the command (registered on training/cli/common.py's app); the work is in
serving/compare.py, the output formats in serving/batch/output.py."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from serving.batch.output import Format
from serving.compare import FLOOR
from serving.errors import InputError
from training.cli.common import app, bundle_of, check_out, fail, guard


class CompareFormat(str, Enum):
    jsonl = "jsonl"
    table = "table"


@app.command("compare")
def compare(
    source: Path = typer.Argument(..., help="the original text (.txt, or - for standard input)"),
    published: Path = typer.Argument(..., help="the published version (.txt, or -)"),
    model: Path = typer.Option(None, "--model", "-m", help="model bundle (default: the shipped one)"),
    fmt: Optional[CompareFormat] = typer.Option(
        None, "--format", "-f", help="jsonl or table (default: jsonl for an --out ending .jsonl, else table)"
    ),
    threshold: Optional[float] = typer.Option(None, help="decision threshold (default: the bundle's)"),
    floor: float = typer.Option(FLOOR, help="similarity (0-100) from which a changed sentence is 'edited'"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="output file (default: stdout)"),
):
    """Compare a published text with its source: kept, edited (with changes), added, dropped sentences,
    and the model's score on each published sentence."""

    suffix = out.suffix.lower() if out else ""
    if suffix in (".csv", ".parquet"):
        fail(f"--out {out}: compare writes jsonl or table, not {suffix[1:]}")
    implied = CompareFormat.jsonl if suffix == ".jsonl" else None
    if fmt is not None and implied is not None and fmt is not implied:
        fail(f"--format {fmt.value} contradicts --out {out} (a .jsonl file); drop --format or rename the file")
    fmt = Format((fmt or implied or CompareFormat.table).value)
    if str(source) == str(published) == "-":
        fail("only one of SOURCE and PUBLISHED can be read from standard input")
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        fail(f"--threshold must be between 0 and 1, got {threshold}")
    if not 0.0 < floor <= 100.0:
        fail(f"--floor must be in (0, 100], got {floor}")
    if out:
        check_out(out)
    from serving.batch.inputs import language_problem, read_articles
    from serving.batch.output import render_compare
    from serving.brackets import offsets_text
    from serving.compare import compare
    from serving.predictor import Predictor

    def read(path: Path) -> str:
        if str(path) != "-" and (path.is_dir() or path.suffix.lower() != ".txt"):
            raise InputError(
                f"{path}: compare takes one .txt file (or - for standard input), not a folder, JSON lines or Parquet"
            )
        arts = list(read_articles([path]))
        if len(arts) != 1:
            raise InputError(f"{path}: compare takes one article, found {len(arts)}")
        art = arts[0]
        text = offsets_text(art.text)
        problem = language_problem(text)
        if problem:
            raise InputError(f"{path}: {problem}")
        return text

    src, pub = guard(lambda: read(source)), guard(lambda: read(published))
    predictor = guard(lambda: Predictor(bundle_of(model)))
    rows = guard(lambda: compare(src, pub, predictor, threshold, floor))
    from serving.compare import record

    thr = predictor.threshold if threshold is None else threshold
    rec = record(rows, predictor.info, thr, src, pub)
    text = render_compare(fmt, rows, str(source), str(published), rec)
    if out:
        import click

        from serving.batch.io import atomic_write_text

        atomic_write_text(out, click.unstyle(text))
    elif fmt is Format.table:
        typer.echo(text, nl=False)
    else:
        sys.stdout.write(text)
