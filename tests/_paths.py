"""Where things are, and skips for what a user's clone may lack (../shared)."""
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
EXAMPLE = SHARED / "examples" / "aleppo-unga-2016.txt"
CORPUS = SHARED / "corpora" / "saudinewsnet"
TINY_DATA = REPO / "data" / "tiny"


def need_example() -> Path:
    if not EXAMPLE.is_file():
        pytest.skip(f"needs the labelled example {EXAMPLE} (../shared is not beside this clone)")
    return EXAMPLE


def need_corpus() -> Path:
    if not any(CORPUS.glob("*.zip")):
        pytest.skip(f"needs the SaudiNewsNet corpus in {CORPUS} (../shared is not beside this clone)")
    return CORPUS
