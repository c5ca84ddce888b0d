"""`mudraj serve`: the HTTP service and its page (serving/serve.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from serving.defaults import HOST, PORT
from training.cli.common import CORPORA_OPT, CORPUS_OPT, app, bundle_of, corpus_app, fail, guard  # noqa: F401 (one header for every stage module)


@app.command()
def serve(
    model: Optional[Path] = typer.Option(None, "--model", "-m", help="model bundle (default: the shipped one)"),
    host: str = typer.Option(HOST, help="address to bind (loopback unless told otherwise)"),
    port: int = typer.Option(PORT, min=1, max=65535, help="TCP port (1-65535)"),
    workers: Optional[int] = typer.Option(None, help="service worker processes"),
    threads: Optional[int] = typer.Option(None, help="onnxruntime threads per worker"),
):
    """Serve the model over HTTP, with the web page at /ui."""
    from serving.serve import serve as run

    guard(lambda: run(model, host=host, port=port, workers=workers, threads=threads))
