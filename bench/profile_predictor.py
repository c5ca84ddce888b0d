"""Where the predictor's time goes: ONNX Runtime per-operator profile, and the Python side.

    python bench/profile_predictor.py --bundle models/mudraj-e5-small --data build/corpus/test.jsonl

Prints (1) the share of model time per ONNX operator type (ORT's own profiler), (2) the share of
predict_texts() wall time spent outside the model (segmenting, normalising, tokenizing, padding,
Python) measured with pyinstrument, and writes bench/results/profile.json.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

from serving.batch.io import atomic_write_json


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle", type=Path, default=Path("models/mudraj-e5-small"))
    ap.add_argument("--data", type=Path, default=Path("build/corpus/test.jsonl"))
    ap.add_argument("--articles", type=int, default=40)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("bench/results/profile.json"))
    a = ap.parse_args()
    import onnxruntime as ort
    from pyinstrument import Profiler

    from serving.batch.inputs import read_articles, strip_article
    from serving.predictor import Predictor

    texts = [strip_article(r)[0] for r in list(read_articles([a.data]))[: a.articles]]
    pred = Predictor(a.bundle, precision="int8", threads=a.threads)
    pred.predict_texts(texts[:2])  # warm-up

    # (2) Python-side costs around the model.
    prof = Profiler(interval=0.001)
    prof.start()
    t0 = time.perf_counter()
    results = pred.predict_texts(texts)
    wall = time.perf_counter() - t0
    prof.stop()
    session = prof.last_session
    frames = defaultdict(float)

    def walk(frame):
        name = frame.function
        if name in ("run",) and "onnxruntime" in (frame.file_path or ""):
            frames["onnxruntime InferenceSession.run"] += frame.time
            return
        for key, label in (
            ("segment", "segmenter"),
            ("tokenize", "normalise + tokenize"),
            ("pad_batch", "padding"),
            ("encode_article", "feature building"),
        ):
            if name == key:
                frames[label] += frame.time
                return
        for child in frame.children:
            walk(child)

    walk(prof.last_session.root_frame() if hasattr(session, "root_frame") else prof.root_frame())
    n_sent = sum(len(r) for r in results)
    python_side = {k: round(v / wall, 4) for k, v in sorted(frames.items(), key=lambda kv: -kv[1])}

    # (1) Operator profile of the model itself.
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = a.threads
    opts.enable_profiling = True
    opts.profile_file_prefix = "/tmp/mudraj-ort-profile"
    sess = ort.InferenceSession(str(a.bundle / "model.int8.onnx"), opts, providers=["CPUExecutionProvider"])
    pred.session = sess
    pred.predict_texts(texts)
    trace = json.loads(Path(sess.end_profiling()).read_text())
    by_op = defaultdict(float)
    for ev in trace:
        if ev.get("cat") == "Node" and ev.get("name", "").endswith("_kernel_time"):
            by_op[ev["args"].get("op_name", "?")] += ev["dur"]
    total = sum(by_op.values())
    ops = {k: round(v / total, 4) for k, v in sorted(by_op.items(), key=lambda kv: -kv[1])}

    out = {
        "articles": len(texts),
        "sentences": n_sent,
        "wall_s": round(wall, 3),
        "sentences_per_s": round(n_sent / wall, 1),
        "share_of_wall": python_side,
        "model_time_by_op": ops,
    }
    atomic_write_json(a.out, out)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
