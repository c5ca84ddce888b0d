"""How much the shipped int8 bundle's scores depend on the CPU it runs on.

    python bench/cpu_variation.py --bundle models/mudraj-e5-small --dev build/corpus/dev.jsonl

The bundle records the dev scores of the full-vocabulary model as the release machine computed them
(`reference_dev_scores.json`). On a CPU whose int8 dot products are exact (AVX-512 VNNI, AVX-VNNI,
AMX) the shipped model reproduces them within the pruning tolerance. On an AVX2-only CPU
onnxruntime's u8s8 kernels use a saturating instruction, and dynamic int8 amplifies small float
differences: this script measures the effect on this machine, for the shipped model and for the
same model with its int8 weights re-encoded as uint8 (w + 128, zero point + 128: the same integers,
computed by the u8u8 kernels, which do not saturate). Both in one run, with their speed.
Writes bench/results/cpu_variation.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from serving.batch.io import atomic_write_json
from serving.bundle import METADATA, MODEL_FILES, read_metadata, sha256_file
from serving.defaults import DEFAULT_MODEL, REPO
from serving.predictor import Predictor, sigmoid
from training.corpus.articles import load_articles
from training.defaults import CORPUS_DIR


def cpu() -> dict:
    info = {"machine": platform.machine()}
    try:
        lines = open("/proc/cpuinfo", encoding="utf-8").read().splitlines()
        get = lambda k: next((l.split(":", 1)[1].strip() for l in lines if l.startswith(k)), None)  # noqa: E731
        flags = set((get("flags") or "").split())
        info.update(
            model=get("model name"),
            family=get("cpu family"),
            model_number=get("model"),
            int8_flags=sorted(flags & {"avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8"}),
        )
    except OSError:
        pass
    return info


def uint8_weights(bundle: Path, out: Path) -> Path:
    """A copy of `bundle` whose MatMulInteger weights are uint8 (lossless re-encoding)."""
    shutil.copytree(bundle, out)
    model = onnx.load(str(bundle / MODEL_FILES["int8"]))
    inits = {i.name: i for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type != "MatMulInteger":
            continue
        for name in (node.input[1], node.input[3] if len(node.input) > 3 else None):
            t = inits.get(name)
            if t is not None and t.data_type == onnx.TensorProto.INT8:
                shifted = (numpy_helper.to_array(t).astype(np.int16) + 128).astype(np.uint8)
                t.CopyFrom(numpy_helper.from_array(shifted, name))
    onnx.save(model, str(out / MODEL_FILES["int8"]))
    meta = json.loads((out / METADATA).read_text(encoding="utf-8"))
    meta["files"][MODEL_FILES["int8"]] = sha256_file(out / MODEL_FILES["int8"])
    (out / METADATA).write_text(json.dumps(meta), encoding="utf-8")
    return out


def measure(bundle: Path, sentences: list[list[str]], reference: np.ndarray, threads: int) -> dict:
    meta = read_metadata(bundle, verify=False)
    pred = Predictor(bundle, precision="int8", threads=threads)
    pred.article_margins(sentences[:5])  # warm-up
    t0 = time.perf_counter()
    margins = np.concatenate([m for m, _ in pred.article_margins(sentences)])
    seconds = time.perf_counter() - t0
    got = sigmoid(margins)
    diff = np.abs(got - reference)
    ref_margin = np.log(reference / (1 - reference))
    flips = (sigmoid(margins / meta["temperature"]) >= meta["threshold"]) != (
        sigmoid(ref_margin / meta["temperature"]) >= meta["threshold"]
    )
    return {
        "sentences_per_s": round(sum(map(len, sentences)) / seconds, 1),
        "max_abs_diff": round(float(diff.max()), 4),
        "median_abs_diff": round(float(np.median(diff)), 5),
        "p99_abs_diff": round(float(np.quantile(diff, 0.99)), 4),
        "share_within_tolerance": round(float((diff <= 0.02).mean()), 4),
        "label_flips_at_bundle_threshold": int(flips.sum()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--dev", type=Path, default=CORPUS_DIR / "dev.jsonl")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "cpu_variation.json")
    a = ap.parse_args()
    ref = json.loads((a.bundle / "reference_dev_scores.json").read_text(encoding="utf-8"))
    arts = load_articles([a.dev])
    ids = [f"{x.id}:{i}" for x in arts for i in range(len(x.sentences))]
    if ids != ref["ids"]:
        raise SystemExit(f"{a.dev} is not the dev split the reference scores were recorded on")
    sentences = [[s.text for s in x.sentences] for x in arts]
    reference = np.array(ref["scores"])
    with tempfile.TemporaryDirectory() as tmp:
        variants = {
            "shipped (int8 weights, u8s8 kernels)": a.bundle,
            "uint8 weights (u8u8 kernels)": uint8_weights(a.bundle, Path(tmp) / "u8"),
        }
        rows = {name: measure(b, sentences, reference, a.threads) for name, b in variants.items()}
    shipped, u8 = rows.values()
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu(),
        "bundle": str(a.bundle),
        "dev_sentences": len(reference),
        "release_tolerance": ref["tolerance"],
        "variants": rows,
        "u8u8_speed_ratio": round(u8["sentences_per_s"] / shipped["sentences_per_s"], 3),
    }
    atomic_write_json(a.out, result)
    print(json.dumps(result, indent=2, ensure_ascii=False))
    print(f"-> {a.out}")


if __name__ == "__main__":
    main()
