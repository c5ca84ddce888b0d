"""A training run -> a model bundle: ONNX fp32 and dynamic int8, checked for parity.

    mudraj export runs/e5-small --out models/my-bundle

Export fails if ONNX fp32 logits differ from PyTorch by more than `atol`, or if int8
changes the label of more than `max_int8_label_change` of the dev sentences.
"""

from __future__ import annotations

import json
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from serving.batch.io import atomic_dir
from serving.bundle import LABELS, MODEL_FILES, write_metadata
from serving.defaults import default_threads
from serving.errors import InputError, MissingError
from serving.features import Encoder, Feature, load_tokenizer, pad_batch
from serving.windows import ArticleEncoder, pad_windows
from training.corpus.articles import load_articles
from training.defaults import EXPORT_ATOL as ATOL
from training.defaults import MAX_INT8_LABEL_CHANGE


class ParityError(RuntimeError):
    pass


def _dev_batches(
    run_dir: Path, encoder: Encoder, model_type: str, limit: int = 2000, batch_size: int = 32
) -> list[tuple[dict[str, np.ndarray], np.ndarray]]:
    """Model inputs for up to `limit` dev sentences (or markers), in batches, each with a boolean mask of
    the logits rows that are real (the article model's padding markers are not)."""
    out = []
    if model_type == "article":
        windows = [
            w
            for a in load_articles([run_dir / "dev.jsonl"])
            for w in ArticleEncoder(encoder).encode_article([s.text for s in a.sentences]).windows
        ]
        taken, n = [], 0
        for w in windows:
            if n >= limit:
                break
            taken.append(w)
            n += len(w.markers)
        for b in range(0, len(taken), 8):
            chunk = taken[b : b + 8]
            feed = pad_windows(chunk, encoder.pad_id)
            out.append(
                (
                    feed,
                    np.arange(feed["marker_positions"].shape[1])[None, :]
                    < np.array([len(w.markers) for w in chunk])[:, None],
                )
            )
        return out
    feats = dev_features(run_dir, encoder, limit)
    for b in range(0, len(feats), batch_size):
        ids, mask, types = pad_batch(feats[b : b + batch_size], encoder.pad_id)
        out.append(({"input_ids": ids, "attention_mask": mask, "token_type_ids": types}, np.ones(len(ids), bool)))
    return out


def _torch_logits(model, batches) -> np.ndarray:
    import torch

    out = []
    with torch.no_grad():
        for feed, valid in batches:
            logits = model(**{k: torch.from_numpy(v) for k, v in feed.items()})
            logits = logits["logits"] if isinstance(logits, dict) else logits.logits
            out.append(logits.float().numpy()[valid])
    return np.concatenate(out) if out else np.zeros((0, len(LABELS)), np.float32)


def _onnx_logits(path: Path, batches) -> np.ndarray:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = default_threads()
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    out = [sess.run(["logits"], feed)[0][valid] for feed, valid in batches]
    return np.concatenate(out) if out else np.zeros((0, len(LABELS)), np.float32)


def export_onnx(model, path: Path, model_type: str = "pair", opset: int = 17) -> None:
    import torch

    names = ["input_ids", "attention_mask", "token_type_ids"] + (
        ["marker_positions"] if model_type == "article" else []
    )

    class Wrapper(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, *inputs):
            out = self.m(**dict(zip(names, inputs)))
            if isinstance(out, dict):
                return (out["logits"], out["kind_logits"]) if "kind_logits" in out else out["logits"]
            return out.logits

    kinds = getattr(model, "kind_classifier", None) is not None  # the article model's kind head: a 2nd output

    # The TorchScript exporter (dynamo=False), kept on purpose although torch deprecates it: the dynamo
    # exporter reaches the same fp32 parity (e5-small, 1.2e-7 vs 1.3e-7 max |logit diff|) but its graph
    # runs 9% slower once int8-quantised (32.7 vs 36.0 sentences/s, one run, 2 threads, AMD EPYC Zen 3),
    # exports 3.6x slower (164 s vs 45 s) and writes weights as external data by default.
    # docs/benchmarks.md, "ONNX exporter". Measure again before switching.
    # Padding in the example input keeps the masking path in the traced graph.
    dummy = torch.ones((2, 16), dtype=torch.long)
    mask = dummy.clone()
    mask[1, 10:] = 0
    axes = {0: "batch", 1: "sequence"}
    example = [dummy, mask, torch.zeros_like(dummy)]
    dynamic = {"input_ids": axes, "attention_mask": axes, "token_type_ids": axes, "logits": {0: "batch"}}
    if model_type == "article":
        example.append(torch.tensor([[0, 5, 9], [0, 4, 0]]))
        dynamic.update(marker_positions={0: "batch", 1: "markers"}, logits={0: "batch", 1: "markers"})
        if kinds:
            dynamic["kind_logits"] = {0: "batch", 1: "markers"}
    torch.onnx.export(
        Wrapper(model.eval()),
        tuple(example),
        str(path),
        input_names=names,
        output_names=["logits"] + (["kind_logits"] if kinds else []),
        dynamic_axes=dynamic,
        opset_version=opset,
        dynamo=False,
    )
    model.eval()  # the exporter leaves the module in training mode (dropout on)


# The int8 recipe (issue 23): dynamic quantisation, signed 8-bit weights per output channel stored with a
# 7-bit range (reduce_range), unsigned 8-bit activations, and the weight MatMuls whose quantisation moves
# the logits most kept in fp32. On x86 CPUs without VNNI the u8s8 multiply-add (vpmaddubsw) saturates its
# 16-bit sums with full 8-bit weights, so the same bundle labelled some sentences differently on AVX2 and
# on AVX-512 VNNI machines; with 7-bit weights no sum can saturate. Quantisation itself still changed 0.72%
# of the article model's dev labels against fp32 (27 of 3,750); the feed-forward MatMuls drift most, and
# keeping the 12 worst in fp32 brought that to 0.13% (bench/quant_consistency.py, docs/benchmarks.md).
# FP32_MATMULS is what fits the 40 MB bundle.
INT8_RECIPE = {"method": "dynamic", "weights": "int8 per channel, reduce_range (7-bit)", "activations": "uint8"}
FP32_MATMULS = 10  # the most drifting weight MatMuls kept in fp32 (at most a third of them)
RANKING_SENTENCES = 128  # dev sentences (or markers) the drift of each MatMul is measured on


def weight_matmuls(model_path: Path) -> list[str]:
    """Names of the graph's MatMuls that multiply by a weight (what dynamic quantisation turns to int8)."""
    import onnx

    m = onnx.load(str(model_path), load_external_data=False)
    inits = {i.name for i in m.graph.initializer}
    return [n.name for n in m.graph.node if n.op_type == "MatMul" and any(x in inits for x in n.input)]


def drifting_matmuls(fp32_path: Path, batches, n: int = FP32_MATMULS) -> list[dict]:
    """The n weight MatMuls whose quantisation alone (the rest fp32) moves the dev logits most, most first:
    {"node", "mean_abs_logit_diff"}. At most a third of the MatMuls, so the model stays mostly int8."""
    import tempfile

    nodes = weight_matmuls(fp32_path)
    n = min(n, len(nodes) // 3)
    if n <= 0:
        return []
    sample, taken = [], 0
    for feed, valid in batches:
        sample.append((feed, valid))
        taken += int(valid.sum())
        if taken >= RANKING_SENTENCES:
            break
    ref = _onnx_logits(fp32_path, sample)
    drift = []
    with tempfile.TemporaryDirectory() as tmp:
        one = Path(tmp) / "one.onnx"
        for name in nodes:
            quantize_int8(fp32_path, one, only=[name])
            drift.append({"node": name, "mean_abs_logit_diff": float(np.abs(_onnx_logits(one, sample) - ref).mean())})
    return sorted(drift, key=lambda d: -d["mean_abs_logit_diff"])[:n]


def quantize_int8(src: Path, dst: Path, keep_fp32: list[str] = (), only: list[str] = ()) -> None:
    """The int8 recipe; keep_fp32: MatMuls left in fp32; only: quantise just these (drift ranking)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(src),
        str(dst),
        weight_type=QuantType.QInt8,
        per_channel=True,
        reduce_range=True,
        nodes_to_exclude=list(keep_fp32),
        nodes_to_quantize=list(only),
    )


def dev_features(run_dir: Path, encoder: Encoder, limit: int = 2000) -> list[Feature]:
    feats: list[Feature] = []
    for a in load_articles([run_dir / "dev.jsonl"]):
        feats.extend(encoder.encode_article([s.text for s in a.sentences]))
        if len(feats) >= limit:
            break
    return feats[:limit]


def export(
    run_dir: Path,
    out: Path | None = None,
    *,
    name: str | None = None,
    atol: float = ATOL,
    max_int8_label_change: float = MAX_INT8_LABEL_CHANGE,
    threshold: float = 0.5,
    temperature: float = 1.0,
    int8: bool = True,
    fp32_matmuls: list[str] | None = None,
) -> Path:
    """Write a bundle for a finished run; returns its folder. fp32_matmuls: the MatMuls the int8 model keeps
    in fp32 (None: the FP32_MATMULS that drift most on this run's dev sentences, measured here)."""
    import torch

    from training.model.article_model import load_model

    run_dir = Path(run_dir)
    run_file = run_dir / "run.json"
    if not run_file.is_file():
        raise MissingError(f"{run_dir} is not a finished training run (no run.json); train first")
    run = json.loads(run_file.read_text(encoding="utf-8"))
    cfg = run["config"]
    out = Path(out) if out else run_dir / "bundle"
    encoder = Encoder(
        load_tokenizer(run_dir / "tokenizer.json"), cfg["max_length"], cfg["context_width"], run["normalization"]
    )
    torch.set_num_threads(default_threads())
    model_type = cfg.get("model_type", "pair")
    # Eager attention traces into plain ONNX ops with the padding mask intact.
    model = load_model(run_dir / "model", model_type, attn_implementation="eager").eval()
    batches = _dev_batches(run_dir, encoder, model_type)
    if not batches:
        raise InputError(f"{run_dir}/dev.jsonl has no sentences to check parity on")

    with atomic_dir(out) as tmp:
        t0 = time.time()
        export_onnx(model, tmp / MODEL_FILES["fp32"], model_type)
        ref = _torch_logits(model, batches)
        fp32 = _onnx_logits(tmp / MODEL_FILES["fp32"], batches)
        max_diff = float(np.abs(ref - fp32).max())
        if max_diff > atol:
            raise ParityError(f"ONNX fp32 logits differ from PyTorch by {max_diff:.2e} > {atol:.0e}")
        parity = {
            "sentences": len(ref),
            "fp32_max_abs_logit_diff": max_diff,
            "fp32_label_agreement": float((ref.argmax(1) == fp32.argmax(1)).mean()),
        }
        if int8:
            if fp32_matmuls is None:
                ranked = drifting_matmuls(tmp / MODEL_FILES["fp32"], batches)
                fp32_matmuls = [d["node"] for d in ranked]
            quantize_int8(tmp / MODEL_FILES["fp32"], tmp / MODEL_FILES["int8"], keep_fp32=fp32_matmuls)
            q = _onnx_logits(tmp / MODEL_FILES["int8"], batches)
            agreement = float((ref.argmax(1) == q.argmax(1)).mean())
            parity.update(
                int8_label_agreement=agreement,
                int8_max_abs_logit_diff=float(np.abs(ref - q).max()),
                int8_recipe={**INT8_RECIPE, "fp32_matmuls": list(fp32_matmuls)},
            )
            if 1 - agreement > max_int8_label_change:
                raise ParityError(f"int8 changes {1 - agreement:.1%} of dev labels > {max_int8_label_change:.0%}")
        shutil.copyfile(run_dir / "tokenizer.json", tmp / "tokenizer.json")
        meta = {
            "name": name or cfg["name"],
            "version": datetime.now(timezone.utc).strftime("%Y.%m.%d"),
            "labels": list(LABELS),
            "model_type": model_type,
            "max_length": cfg["max_length"],
            "context_width": cfg["context_width"],
            "normalization": run["normalization"],
            "threshold": threshold,
            "temperature": temperature,
            "kinds": list(getattr(model.config, "kind_labels", None) or []),  # kind head's classes ([]: none)
            "backbone": {
                "name": cfg["backbone"],
                "config": json.loads((run_dir / "model" / "config.json").read_text()).get("model_type"),
            },
            "train_data_sha256": run["train_data_sha256"],
            "dev_data_sha256": run["dev_data_sha256"],
            "metrics": {"dev": run["dev_metrics"]},
            "parity": {**parity, "atol": atol, "max_int8_label_change": max_int8_label_change},
            "export_seconds": round(time.time() - t0, 2),
        }
        write_metadata(tmp, meta, checksums=True)
    return out
