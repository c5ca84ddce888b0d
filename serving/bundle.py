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
from pathlib import Path

LABELS = ("reporting", "inserted")
METADATA = "metadata.json"
MODEL_FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx"}
REQUIRED_KEYS = ("name", "labels", "max_length", "context_width", "threshold", "temperature",
                 "normalization", "backbone", "files")


class BundleError(RuntimeError):
    """A model bundle that is missing, incomplete or corrupt."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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
