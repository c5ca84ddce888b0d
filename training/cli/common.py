"""What every command module shares: the typer app, the one error policy and the helpers.

Each module of training/cli registers its commands on `app` with `@app.command()`; training/cli/__init__.py
imports them in the order --help lists them. Heavy imports (torch, transformers) happen inside the
commands that need them, so `mudraj predict`, `mudraj compare` and `mudraj serve` run on a serving-only
install (tested: none imports torch).

Errors a user can cause (serving.errors.UserError: a bad file, a missing bundle, a bad setting) print
one line and exit 2; anything else is a bug and shows its traceback. MUDRAJ_DEBUG=1 shows the
traceback for every error.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer

from training import defaults as D  # light: paths and numbers only

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Mudraj: find commentary inserted into Arabic news articles, sentence by sentence.",
)
corpus_app = typer.Typer(no_args_is_help=True, help="Build the training corpus (hosts + our insertions).")
app.add_typer(corpus_app, name="corpus")

CORPUS_OPT = typer.Option(D.SAUDINEWSNET, "--corpus", help="SaudiNewsNet folder")
CORPORA_OPT = typer.Option(
    D.CORPORA, "--corpora", help="folder with one subfolder per host source (saudinewsnet, baly2018, armpro)"
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"mudraj {version('mudraj')}")
        except PackageNotFoundError:
            fail("mudraj is not installed (pip install -e .), so it has no version")
        raise typer.Exit()


@app.callback()
def _main(
    _: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="print the installed version and exit"
    ),
):
    pass


def fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def message(err: BaseException) -> str:
    """str(err), less the one pair of quotes a KeyError wraps around its whole message."""
    m = str(err)
    if len(m) >= 2 and m[0] == m[-1] and m[0] in "'\"" and m[0] not in m[1:-1]:
        return m[1:-1]
    return m


def guard(fn):
    """Run fn; a user mistake (bad input, missing file or bundle, bad setting) becomes one clear line.
    Other exceptions are bugs and pass through with their traceback."""
    from serving.errors import UserError

    try:
        return fn()
    except UserError as err:
        if os.environ.get("MUDRAJ_DEBUG", "").strip() not in ("", "0"):
            raise
        fail(message(err))


def bundle_of(model: Optional[Path]) -> Path:
    from serving.bundle import resolve_bundle

    return guard(lambda: resolve_bundle(model))


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


def check_out(out: Path) -> None:
    """Refuse an output file that could not be written, before any work is done."""
    if out.is_dir():
        fail(f"--out {out} is a folder; give a file name, e.g. {out / 'predictions.jsonl'}")
    folder = out.parent
    if not folder.exists():
        fail(f"cannot write --out {out}: the folder {folder} does not exist (create it first)")
    if not folder.is_dir():
        fail(f"cannot write --out {out}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        fail(f"cannot write --out {out}: no permission to create files in {folder}")
    if out.exists() and not os.access(out, os.W_OK):
        fail(f"cannot write --out {out}: the file is read-only")
