"""Which int8 recipe? Speed and fidelity of the quantisation schemes onnxruntime offers, in one run.

    python bench/quant_variants.py --bundle runs/e5-small-release/pruned-bundle \
        --test build/corpus/test.jsonl --dev build/corpus/dev.jsonl --calib build/corpus/train.jsonl

Starts from the bundle's fp32 model.onnx and builds, with onnxruntime's own quantisers:
dynamic int8 per channel (what `mudraj export` ships), dynamic int8 per tensor, weight-only
MatMulNBits (4 bits in blocks of 32 and 128, 8 bits; int8 compute, accuracy_level 4), and static
QDQ int8 calibrated (min/max) on training sentences. For each: sentences per second on test
sentences (batch 32, length-bucketed, threads pinned), the ratio to ORT fp32, the share of dev
inputs whose label at the bundle's threshold agrees with fp32, the largest probability change,
and the file size. Writes bench/results/quant_variants.json.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from serving.batch.io import atomic_write_json


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle", type=Path, required=True, help="bundle with the fp32 model.onnx")
    ap.add_argument("--test", type=Path, default=Path("build/corpus/test.jsonl"))
    ap.add_argument("--dev", type=Path, default=Path("build/corpus/dev.jsonl"))
    ap.add_argument("--calib", type=Path, default=Path("build/corpus/train.jsonl"))
    ap.add_argument("--n-test", type=int, default=384)
    ap.add_argument("--n-dev", type=int, default=1300)
    ap.add_argument("--n-calib", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("bench/results/quant_variants.json"))
    a = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(a.threads)

    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from serving.features import pad_batch
    from serving.predictor import Predictor, sigmoid
    from training.corpus.articles import load_articles

    fp32 = a.bundle / "model.onnx"
    if not fp32.is_file():
        raise SystemExit(f"{a.bundle} has no fp32 model.onnx (run `mudraj export` on the training run)")
    pred = Predictor(a.bundle, precision="fp32", threads=a.threads)
    pad = pred.encoder.pad_id

    def features(path: Path, n: int):
        out = []
        for art in load_articles([path]):
            out.extend(pred.encoder.encode_article([s.text for s in art.sentences]))
            if len(out) >= n:
                break
        return out[:n]

    test, dev, calib = features(a.test, a.n_test), features(a.dev, a.n_dev), features(a.calib, a.n_calib)

    def session(path: Path):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = a.threads, 1
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def margins(sess, feats) -> np.ndarray:
        order = sorted(range(len(feats)), key=lambda i: len(feats[i].input_ids))
        out = np.zeros(len(feats), dtype=np.float32)
        for b in range(0, len(order), 32):
            idx = order[b : b + 32]
            ids, mask, types = pad_batch([feats[i] for i in idx], pad)
            logits = sess.run(["logits"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})[0]
            out[idx] = logits[:, 1] - logits[:, 0]
        return out

    class Calibration(CalibrationDataReader):
        def __init__(self):
            self.starts = iter(range(0, len(calib), 32))

        def get_next(self):
            b = next(self.starts, None)
            if b is None:
                return None
            ids, mask, types = pad_batch(calib[b : b + 32], pad)
            return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}

    def nbits(bits: int, block: int):
        def build(dst: Path) -> None:
            cfg = DefaultWeightOnlyQuantConfig(block_size=block, is_symmetric=True, accuracy_level=4, bits=bits)
            q = MatMulNBitsQuantizer(onnx.load(str(fp32)), algo_config=cfg)
            q.process()
            q.model.save_model_to_file(str(dst), use_external_data_format=False)

        return build

    def static(dst: Path) -> None:
        pre = dst.with_name("preprocessed.onnx")
        quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
        quantize_static(
            str(pre),
            str(dst),
            Calibration(),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=["MatMul"],
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
        )

    variants = {
        "fp32": None,  # the bundle's own file
        "dynamic int8, per channel (shipped)": lambda dst: quantize_dynamic(
            str(fp32), str(dst), weight_type=QuantType.QInt8, per_channel=True
        ),
        "dynamic int8, per tensor": lambda dst: quantize_dynamic(
            str(fp32), str(dst), weight_type=QuantType.QInt8, per_channel=False
        ),
        "MatMulNBits 4-bit, block 32": nbits(4, 32),
        "MatMulNBits 4-bit, block 128": nbits(4, 128),
        "MatMulNBits 8-bit, block 32": nbits(8, 32),
        "static QDQ int8 (min/max calibration)": static,
    }
    rows, ref, base = [], None, None
    with tempfile.TemporaryDirectory() as tmp:
        for k, (name, build) in enumerate(variants.items()):
            path = fp32 if build is None else Path(tmp) / f"v{k}.onnx"
            if build is not None:
                build(path)
            sess = session(path)
            margins(sess, test[:8])  # warm-up
            t0 = time.perf_counter()
            margins(sess, test)
            sps = len(test) / (time.perf_counter() - t0)
            probs = sigmoid(margins(sess, dev) / pred.temperature)
            if ref is None:
                ref, base = probs, sps
            agree = float(np.mean((probs >= pred.threshold) == (ref >= pred.threshold)))
            row = {
                "variant": name,
                "sentences_per_s": round(sps, 1),
                "ratio_to_fp32": round(sps / base, 2),
                "label_agreement": round(agree, 4),
                "max_prob_change": round(float(np.abs(probs - ref).max()), 3),
                "size_mb": round(path.stat().st_size / 1e6, 1),
            }
            rows.append(row)
            print(
                f"{name:<40} {sps:7.1f} sent/s  x{sps / base:4.2f} fp32  labels agree {agree:7.2%}  "
                f"max |dp| {row['max_prob_change']:.3f}  {row['size_mb']:6.1f} MB",
                flush=True,
            )
            del sess
    out = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "threads": a.threads,
        "test_sentences": len(test),
        "dev_inputs": len(dev),
        "calibration_inputs": len(calib),
        "rows": rows,
    }
    atomic_write_json(a.out, out)
    print(f"-> {a.out}")


if __name__ == "__main__":
    main()
