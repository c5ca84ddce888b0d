"""`mudraj compare SOURCE PUBLISHED`: the command (registered by training/cli.py); the work is in
serving/compare.py, the output formats in serving/output.py."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from serving.output import Format


def command(source: Path = typer.Argument(..., help="the original text (.txt, or - for standard input)"),
            published: Path = typer.Argument(..., help="the published version (.txt, or -)"),
            model: Path = typer.Option(None, "--model", "-m", help="model bundle (default: the shipped one)"),
            fmt: Format = typer.Option(Format.table, "--format", "-f", help="jsonl or table"),
            threshold: Optional[float] = typer.Option(None, help="decision threshold (default: the bundle's)"),
            floor: float = typer.Option(70.0, help="similarity (0-100) from which a changed sentence is 'edited'"),
            out: Optional[Path] = typer.Option(None, "--out", "-o", help="output file (default: stdout)")):
    """Compare a published text with its source: kept, edited (with changes), added, dropped sentences,
    and the model's score on each published sentence."""
    from training.cli import _bundle, _check_out, _fail, _guard

    if fmt in (Format.csv, Format.parquet):
        _fail("--format: compare writes jsonl or table")
    if str(source) == str(published) == "-":
        _fail("only one of SOURCE and PUBLISHED can be read from standard input")
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        _fail(f"--threshold must be between 0 and 1, got {threshold}")
    if not 0.0 < floor <= 100.0:
        _fail(f"--floor must be in (0, 100], got {floor}")
    if out:
        _check_out(out)
    from serving.compare import comparable, compare
    from serving.inputs import NO_ARABIC, has_arabic, read_articles
    from serving.output import render_compare
    from serving.predictor import Predictor

    def read(path: Path) -> str:
        if str(path) != "-" and path.suffix == ".jsonl" or path.is_dir():
            raise ValueError(f"{path}: compare takes one text file (or -), not a folder or JSON lines")
        (art,) = list(read_articles([path]))
        text = comparable(art.text)
        if not has_arabic(text):
            raise ValueError(f"{path}: {NO_ARABIC}")
        return text

    src, pub = _guard(lambda: read(source)), _guard(lambda: read(published))
    predictor = _guard(lambda: Predictor(_bundle(model)))
    rows = _guard(lambda: compare(src, pub, predictor, threshold, floor))
    text = render_compare(fmt, rows, str(source), str(published))
    if out:
        import click

        from training.io import atomic_write_text

        atomic_write_text(out, click.unstyle(text))
    elif fmt is Format.table:
        typer.echo(text, nl=False)
    else:
        sys.stdout.write(text)
