"""Where things are, and skips for what a user's clone may lack (../shared)."""
from pathlib import Path

import pytest

from serving.defaults import REPO, SHARED  # noqa: F401 (re-exported for the tests)
from training.defaults import DATA, EXAMPLE
from training.defaults import SAUDINEWSNET as CORPUS

TINY_DATA = DATA / "tiny"


def need_example() -> Path:
    if not EXAMPLE.is_file():
        pytest.skip(f"needs the labelled example {EXAMPLE} (../shared is not beside this clone)")
    return EXAMPLE


def need_corpus() -> Path:
    if not any(CORPUS.glob("*.zip")):
        pytest.skip(f"needs the SaudiNewsNet corpus in {CORPUS} (../shared is not beside this clone)")
    return CORPUS
