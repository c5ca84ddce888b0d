"""One home for each default that serving and training share: where things are, how many threads.

Training-only defaults (false-alarm target, export tolerances, host count) live in
training/defaults.py; this module imports nothing heavy and never imports training.
"""

from __future__ import annotations

import os
from pathlib import Path

from serving.errors import InputError

REPO = Path(__file__).resolve().parent.parent  # the repository root (an editable install)
SHARED = REPO.parent / "shared"  # corpora and the labelled example, beside the clone
MODELS = REPO / "models"
DEFAULT_MODEL = MODELS / "mudraj-e5-small"  # the shipped bundle
RUNS = REPO / "runs"
HOST, PORT = "127.0.0.1", 3000  # `mudraj serve`: loopback unless told otherwise


def default_threads(workers: int = 1) -> int:
    """Intra-op threads for ONNX Runtime (and torch in training): $MUDRAJ_THREADS, else $OMP_NUM_THREADS,
    else the cores shared among `workers` processes, at most 4 each (more buys little for one article)."""
    for name in ("MUDRAJ_THREADS", "OMP_NUM_THREADS"):
        raw = os.environ.get(name, "").strip()
        if raw:
            try:
                value = int(raw)
            except ValueError:
                raise InputError(f"{name} must be a whole number, got {raw!r}") from None
            if value < 1:
                raise InputError(f"{name} must be at least 1, got {value}")
            return value
    return max(1, min(4, (os.cpu_count() or 1) // max(1, workers)))
