"""One home for each training-side default; the CLI, the library functions and the tests read them here."""

from __future__ import annotations

from serving.defaults import REPO, SHARED

DATA = REPO / "data"  # host ids, our insertions, outlet splits
HOSTS_FILE = DATA / "hosts.jsonl"
SPLITS_FILE = DATA / "splits.json"  # which outlets are dev and test
CORPUS_DIR = REPO / "build" / "corpus"  # output of `mudraj corpus build`
REPORTS = REPO / "reports"
CORPORA = SHARED / "corpora"  # one folder per host source (training/corpus/sources.py)
SAUDINEWSNET = CORPORA / "saudinewsnet"
EXAMPLE = SHARED / "examples" / "aleppo-unga-2016.txt"
BACKBONE_CACHE = REPO / "models" / "backbones"

N_HOSTS = 1074  # hosts of the first, SaudiNewsNet-only selection; training/corpus/selection.py extends it
GENRE_CACHE = REPO / "build" / "genres.jsonl"  # host genres by content hash (training/corpus/selection.py)
HOST_SEED = 13

TARGET_FALSE_ALARM_RATE = 0.02  # dev false-alarm rate the decision threshold aims at
GENUINE_FLAG_RATE = 0.01  # at most this share of genuine dev-outlet sentences flagged (issue 20)
EXPORT_ATOL = 1e-3  # max |logit difference|, ONNX fp32 vs PyTorch
MAX_INT8_LABEL_CHANGE = 0.02  # max share of dev sentences whose label int8 may flip
PRUNE_TOLERANCE = 0.02  # max |P(inserted) difference| on dev, pruned vs full vocabulary (both int8)
