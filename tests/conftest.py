"""Shared fixtures: offline, two threads, a tiny model trained once per session."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from tests._paths import REPO  # noqa: E402


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """configs/tiny.yaml trained for a few steps (seconds)."""
    from training.model.config import TrainConfig
    from training.model.train import train

    out = tmp_path_factory.mktemp("runs") / "tiny"
    cfg = TrainConfig.load(REPO / "configs" / "tiny.yaml", [f"output_dir={out}"])
    return train(cfg)


@pytest.fixture(scope="session")
def tiny_bundle(tiny_run, tmp_path_factory) -> Path:
    from training.ship.export import export

    return export(tiny_run, tmp_path_factory.mktemp("bundles") / "mudraj-tiny")


@pytest.fixture(scope="session")
def built_corpus(tmp_path_factory) -> Path:
    """The real corpus (`mudraj corpus build`) from ../shared, built once per session."""
    from tests._paths import need_corpus
    from training.corpus.build import build

    corpus = need_corpus()
    out = tmp_path_factory.mktemp("corpus")
    build(REPO / "data", corpus.parent, out)
    return out


# Fixtures that train a model, build the corpus, start a server or a browser: a test that uses one is
# `slow` (left out by `make test-fast`, run by `make test` and CI).
HEAVY_FIXTURES = {
    "tiny_run",
    "tiny_bundle",
    "built_corpus",
    "server",
    "tight_server",
    "api_schema",
    "browser",
    "kind_bundle",
    "fitted",
    "article_run",
    "article_bundle",
    "calibrated",
    "converted",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HEAVY_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
