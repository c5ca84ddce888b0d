"""`mudraj predict`: the command (registered on training/cli/common.py's app). The local engine labels in this process;
`--engine ray` hands the same work to Ray Data (serving/batch/ray_engine.py)."""

from __future__ import annotations

import sys
import time
from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer

from serving.batch.output import Format
from serving.batch.shards import SHARD_SIZE
from serving.errors import InputError
from training.cli import common
from training.cli.common import app, bundle_of, check_out, fail, guard

PROGRESS_MIN_ARTICLES = 20  # fewer, from files alone: no progress bar
PROGRESS_EVERY = 1000  # not on a terminal: a progress line every this many articles


class Engine(str, Enum):
    local = "local"
    ray = "ray"


@app.command("predict")
def predict(
    inputs: List[Path] = typer.Argument(
        ...,
        help=".txt files, folders, JSONL with {id, text}, Parquet with "
        "id and text columns, or - (one article from standard input, id 'stdin')",
    ),
    model: Path = typer.Option(None, "--model", "-m", help="model bundle (default: the shipped one)"),
    out: Optional[Path] = typer.Option(
        None, "--out", "-o", help="output file (default: stdout); with --engine ray, a folder of parts (required)"
    ),
    fmt: Optional[Format] = typer.Option(
        None,
        "--format",
        "-f",
        help="jsonl: one record per article; csv: one row per sentence; "
        "parquet: like jsonl, needs --out; table: for reading in a "
        "terminal (default: from --out's suffix, else jsonl)",
    ),
    threshold: Optional[float] = typer.Option(None, help="decision threshold (default: the bundle's)"),
    precision: str = typer.Option("auto", help="int8, fp32 or auto"),
    threads: Optional[int] = typer.Option(None, help="onnxruntime threads (with --engine ray: per worker)"),
    engine: Engine = typer.Option(Engine.local, help="local: this process; ray: Ray Data, resumable"),
    address: Optional[str] = typer.Option(
        None, help="--engine ray: join this Ray cluster (auto, ray://host:port); default: start Ray on this machine"
    ),
    workers: Optional[int] = typer.Option(
        None, min=1, help="--engine ray: actors, each with one model (default: the cluster's CPUs / 2)"
    ),
    shard_size: int = typer.Option(SHARD_SIZE, min=1, help="--engine ray: articles a part"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar or summary on stderr"),
):
    """Label every sentence of each article (JSONL: one record per article)."""

    if threshold is not None and not 0.0 <= threshold <= 1.0:
        fail(f"--threshold must be between 0 and 1, got {threshold}")
    fmt = guard(lambda: format_for(out, fmt, folder=engine is Engine.ray))
    if engine is Engine.ray:
        return _ray(inputs, model, out, fmt, threshold, precision, threads, address, workers, shard_size, quiet)
    if address or workers:
        fail("--address and --workers go with --engine ray")
    if fmt is Format.parquet and not out:
        fail("--format parquet is binary: give --out FILE")
    if out:
        check_out(out)
    bundle = bundle_of(model)
    from serving.predictor import Predictor

    predictor = guard(lambda: Predictor(bundle, precision=precision, threads=threads))
    _label_locally(inputs, predictor, out, fmt, threshold, quiet)


SUFFIX_FORMATS = {".jsonl": Format.jsonl, ".csv": Format.csv, ".parquet": Format.parquet}


def count(n: int, noun: str) -> str:
    """'1 article', '2 articles'."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def format_for(out: Optional[Path], fmt: Optional[Format], folder: bool = False) -> Format:
    """The output format: --format if given, else --out's suffix (.jsonl, .csv, .parquet), else jsonl. A
    --format that contradicts the suffix is refused (an output folder, --engine ray, has no suffix to read)."""
    implied = None if (out is None or folder) else SUFFIX_FORMATS.get(out.suffix.lower())
    if fmt is None:
        return implied or Format.jsonl
    if implied is not None and implied is not fmt:
        raise InputError(
            f"--format {fmt.value} contradicts --out {out} (a {out.suffix} file holds "
            f"{implied.value}); drop --format or rename the file"
        )
    return fmt


def _label_locally(inputs, predictor, out, fmt: Format, threshold, quiet: bool) -> None:
    from tqdm import tqdm

    from serving.batch.inputs import STDIN, prediction_text, read_articles
    from serving.batch.output import parquet_bytes, render

    if any(str(p) == STDIN for p in inputs) and sys.stdin.isatty() and not quiet:
        typer.echo("reading one article from standard input; end it with Ctrl-D", err=True)

    def read():
        arts = list(read_articles(inputs))
        return arts, [prediction_text(a) for a in arts]  # offsets refer to the text without brackets

    arts, texts = guard(read)
    terminal = common.stderr_is_terminal()
    show = not quiet and terminal and (len(arts) >= PROGRESS_MIN_ARTICLES or any(p.is_dir() for p in inputs))
    # Not a terminal (a log file, a batch job): a plain line every PROGRESS_EVERY articles instead of a bar.
    lines = not quiet and not terminal and len(arts) > PROGRESS_EVERY
    started = time.monotonic()
    with tqdm(total=len(texts), desc="labelling", unit="article", file=sys.stderr, disable=not show) as bar:
        results = []
        for i, t in enumerate(texts, 1):  # one article a call: the scores are the same, and the bar moves
            results += guard(lambda: predictor.predict_texts([t], threshold))
            bar.update()
            if lines and i % PROGRESS_EVERY == 0:
                print(
                    f"labelled {i:,} of {len(texts):,} articles ({time.monotonic() - started:.0f} s)",
                    file=sys.stderr,
                    flush=True,
                )
    if not out:
        text = render(fmt, arts, results)
        if fmt is Format.table:
            typer.echo(text, nl=False)  # colours only on a terminal
        else:
            sys.stdout.write(text)
        return
    import click

    from serving.batch.io import atomic_write_bytes

    data = parquet_bytes(arts, results) if fmt is Format.parquet else click.unstyle(render(fmt, arts, results)).encode()
    try:
        atomic_write_bytes(out, data)
    except OSError as err:
        fail(f"cannot write --out {out}: {err.strerror}")
    if not quiet:
        n_ins = sum(s.label == "inserted" for r in results for s in r)
        typer.echo(
            f"{count(len(arts), 'article')}, {count(sum(map(len, results)), 'sentence')}, {n_ins} inserted -> {out}",
            err=True,
        )


def _ray(inputs, model, out, fmt, threshold, precision, threads, address, workers, shard_size, quiet) -> None:

    if not out:
        fail("--engine ray writes a folder of parts: give --out FOLDER")
    if out.exists() and not out.is_dir():
        fail(f"--out {out} is a file; --engine ray writes a folder of parts")
    from importlib.util import find_spec

    if find_spec("ray") is None:
        fail("--engine ray needs Ray: pip install 'mudraj[ray]'")
    from serving.batch import ray_engine as ray_engine

    bundle = bundle_of(model)
    summary = guard(
        lambda: ray_engine.run(
            inputs,
            out,
            bundle,
            fmt,
            shard_size=shard_size,
            workers=workers,
            threads=threads,
            address=address,
            precision=precision,
            threshold=threshold,
            progress=not quiet and common.stderr_is_terminal(),
        )
    )
    if summary["errors"]:
        shown = "\n  ".join(summary["errors"][:10])
        more = f"\n  ... and {len(summary['errors']) - 10} more" if len(summary["errors"]) > 10 else ""
        fail(
            f"{len(summary['errors'])} of {summary['shards']} parts failed (the others are written; "
            f"fix the inputs and run the same command again):\n  {shown}{more}"
        )
    if not quiet:
        typer.echo(
            f"{summary['articles']} articles in {summary['shards']} parts ({summary['skipped']} already done); "
            f"labelled now: {summary['labelled']} articles, {summary['sentences']} sentences, "
            f"{summary['inserted']} inserted -> {out}",
            err=True,
        )
