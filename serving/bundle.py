"""The model bundle: a self-describing folder that the predictor and the service load.

models/<name>/
  metadata.json      labels, max length, context width, threshold, temperature,
                     normalisation, backbone, training data hash, metrics, file checksums
  model.onnx         fp32 (GPU, parity reference)
  model.int8.onnx    dynamic int8 (CPU default)
  tokenizer.json
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from serving.defaults import DEFAULT_MODEL, RUNS
from serving.errors import UserError

LABELS = ("reporting", "inserted")
METADATA = "metadata.json"
MODEL_FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx"}
# "pair": one input per sentence with its neighbours (serving/features.py); "article": one pass over
# windows of the whole article (serving/windows.py). Bundles without the field are "pair".
MODEL_TYPES = ("pair", "article")
REQUIRED_KEYS = (
    "name",
    "labels",
    "max_length",
    "context_width",
    "threshold",
    "temperature",
    "normalization",
    "backbone",
    "files",
)


logger = logging.getLogger("mudraj")


class BundleError(UserError, RuntimeError):
    """A model bundle that is missing, incomplete or corrupt."""


def resolve_bundle(model: Path | str | None = None) -> Path:
    """The one way a command or the service finds its model.

    `model` if given (a bundle folder, or a training run whose exported bundle is RUN/bundle), else
    $MUDRAJ_MODEL, else the shipped models/mudraj-e5-small, else the newest runs/*/bundle.
    """
    given = str(model) if model is not None else os.environ.get("MUDRAJ_MODEL", "").strip()
    if given:
        path = Path(given).expanduser().resolve()
        what = "--model" if model is not None else "MUDRAJ_MODEL"
        if not path.is_dir():
            raise BundleError(f"{what}={given}: no such folder (expected a model bundle with {METADATA})")
        if not (path / METADATA).is_file() and (path / "run.json").is_file():
            if not (path / "bundle" / METADATA).is_file():
                raise BundleError(
                    f"{what}={given} is a training run with no exported bundle: run `mudraj export {given}` first"
                )
            path = path / "bundle"
        return path
    if (DEFAULT_MODEL / METADATA).is_file():
        return DEFAULT_MODEL
    runs = [p for p in RUNS.glob("*/bundle") if (p / METADATA).is_file()]
    if runs:
        newest = max(runs, key=lambda p: (p / METADATA).stat().st_mtime)
        logger.warning("%s is missing; using the newest trained bundle %s", DEFAULT_MODEL, newest)
        return newest
    raise BundleError(
        f"no model: pass --model / set MUDRAJ_MODEL to a bundle folder, put the released bundle in "
        f"{DEFAULT_MODEL}, or train and export one (`mudraj train`, `mudraj export`: runs/<name>/bundle)"
    )


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_metadata(bundle: Path, meta: dict, *, checksums: bool = False) -> None:
    """The one writer of a bundle's metadata.json (export, calibration, release): atomically, and with
    checksums=True the sha256 of every other file in the folder recorded in meta["files"] first."""
    from serving.batch.io import atomic_write_json

    bundle = Path(bundle)
    if checksums:
        meta["files"] = {p.name: sha256_file(p) for p in sorted(bundle.iterdir()) if p.is_file() and p.name != METADATA}
    atomic_write_json(bundle / METADATA, meta)


def read_metadata(bundle: Path, verify: bool = True) -> dict:
    """Read and check a bundle's metadata; with verify, every listed file's sha256 too."""
    bundle = Path(bundle)
    meta_path = bundle / METADATA
    if not bundle.is_dir():
        raise BundleError(f"model bundle {bundle} does not exist (train and export one, or use models/mudraj-e5-small)")
    if not meta_path.is_file():
        raise BundleError(f"{bundle} is not a model bundle: {METADATA} is missing")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BundleError(f"{meta_path}: not valid JSON ({err})") from None
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    if missing:
        raise BundleError(f"{meta_path}: missing field(s) {missing}")
    if tuple(meta["labels"]) != LABELS:
        raise BundleError(f"{meta_path}: labels {meta['labels']} are not {list(LABELS)}")
    for name, digest in meta["files"].items():
        path = bundle / name
        if not path.is_file():
            raise BundleError(f"{bundle}: file {name} listed in {METADATA} is missing")
        if verify and sha256_file(path) != digest:
            raise BundleError(f"{bundle}: {name} is corrupt (sha256 does not match {METADATA})")
    return meta
