"""ONNX Runtime session settings on the production path, in one run (issue 23, item 3: is anything left on the
table on this CPU?).

    python bench/session_options.py --bundle models/mudraj-e5-small --data build/corpus/test.jsonl --articles 60

The bundle's Predictor scores the same seeded sample of articles (raw text in, segmentation included, one
article at a time, as `mudraj predict` does) with its session rebuilt under each setting: the shipped
settings (all graph optimisations, threads spinning while they wait), spinning off, and the extended and
basic optimisation levels. Setups are rotated over --repeats rounds and the best round counts. Writes
bench/results/session_options.json with the CPU named.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

SETUPS = {
    "shipped (ENABLE_ALL, spinning)": ("ORT_ENABLE_ALL", {}),
    "spinning off": ("ORT_ENABLE_ALL", {"session.intra_op.allow_spinning": "0"}),
    "ENABLE_EXTENDED": ("ORT_ENABLE_EXTENDED", {}),
    "ENABLE_BASIC": ("ORT_ENABLE_BASIC", {}),
}


def session(model: Path, threads: int, level: str, config: dict[str, str]):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    for key, value in config.items():
        opts.add_session_config_entry(key, value)
    return ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])


def main() -> None:
    from model_types import cpu_name

    from serving.brackets import strip_brackets
    from serving.predictor import MODEL_FILES, Predictor

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", type=Path, default=REPO / "models" / "mudraj-e5-small")
    ap.add_argument("--data", type=Path, default=REPO / "build" / "corpus" / "test.jsonl")
    ap.add_argument("--articles", type=int, default=60)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "session_options.json")
    a = ap.parse_args()

    rows = [json.loads(line) for line in a.data.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = [strip_brackets(r["text"])[0] for r in random.Random(0).sample(rows, min(a.articles, len(rows)))]
    predictor = Predictor(a.bundle, precision="int8", threads=a.threads)
    model = a.bundle / MODEL_FILES["int8"]
    sessions = {name: session(model, a.threads, *setup) for name, setup in SETUPS.items()}
    n_sentences = 0
    best: dict[str, float] = {}
    reference = None
    for r in range(a.repeats):
        names = list(SETUPS)
        names = names[r % len(names) :] + names[: r % len(names)]
        for name in names:
            predictor.session = sessions[name]
            t0 = time.perf_counter()
            out = [predictor.predict_texts([t])[0] for t in texts]
            took = time.perf_counter() - t0
            n_sentences = sum(len(o) for o in out)
            labels = [s.label for o in out for s in o]
            if reference is None:
                reference = labels
            if labels != reference:
                raise SystemExit(f"{name}: labels differ from the first setup's")
            best[name] = max(best.get(name, 0.0), n_sentences / took)
            print(f"round {r + 1} {name}: {n_sentences / took:.1f} sentences/s", file=sys.stderr)
    base = best[next(iter(SETUPS))]
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu_name(),
        "bundle": str(a.bundle),
        "threads": a.threads,
        "articles": len(texts),
        "sentences": n_sentences,
        "repeats": a.repeats,
        "rows": [
            {"setup": name, "sentences_per_s": round(v, 1), "ratio_to_shipped": round(v / base, 3)}
            for name, v in best.items()
        ],
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = a.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    tmp.replace(a.out)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
