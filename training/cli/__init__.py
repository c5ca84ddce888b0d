"""`mudraj`: the one command line, one module per pipeline stage.

Every module registers its commands on the shared typer app (training/cli/common.py) with
`@app.command()`; importing them here, in this order, is what --help lists. Commands import their
stage's heavy libraries inside themselves, so predict, compare and serve work without torch.
"""

from training.cli import compare, corpus, evaluation, model, predict, serve, ship  # noqa: F401  (inference first: what users run most)  # noqa: F401  (then the pipeline, in order)
from training.cli.common import app

__all__ = ["app", "main"]


def main() -> None:
    app()
