"""Pair model vs article model, side by side in one run: sentences/s on the production path
(raw article text in, segmentation included, one article at a time, int8 ONNX Runtime) and PyTorch
eager fp32 of the same runs, threads pinned.

    python bench/model_types.py --data build/corpus/test.jsonl --articles 80 --threads 2 \
        --bundle pair=models/mudraj-e5-small --bundle article=runs/e5-small-article/bundle \
        --eager pair=runs/e5-small --eager article=runs/e5-small-article

Each bundle and each eager model scores the same articles (a seeded sample of --articles); the order of setups is rotated over
`--repeats` rounds and the best round counts. Writes bench/results/model_types.json and, with
--plot, a speed/quality figure (quality: the F1 stored in each bundle's metadata under
metrics.test, when it was released/evaluated on the same test split; or --report NAME=report.json).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path


def named(items: list[str], what: str) -> dict[str, Path]:
    out = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep:
            raise SystemExit(f"{what} {item!r}: expected NAME=path")
        out[name] = Path(path)
    return out


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return platform.processor() or platform.machine()
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), "?")
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    wanted = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "amx_bf16") if f in flags]
    return f"{model} ({', '.join(wanted) or 'no AVX2'})"


def eager_scorer(run: Path, threads: int):
    """Segment, encode and score articles with the run's PyTorch model (fp32, eager), as the predictor
    would with ONNX Runtime: same segmenter, same inputs, one article at a time."""
    import json

    import numpy as np
    import torch

    from serving.brackets import strip_brackets
    from serving.features import Encoder, load_tokenizer, pad_batch
    from serving.segment import segment
    from serving.windows import ArticleEncoder, pad_windows
    from training.model.article_model import load_model

    torch.set_num_threads(threads)
    cfg = json.loads((run / "run.json").read_text(encoding="utf-8"))
    kind = cfg["config"].get("model_type", "pair")
    model = load_model(run / "model", kind).eval()
    encoder = Encoder(
        load_tokenizer(run / "tokenizer.json"),
        cfg["config"]["max_length"],
        cfg["config"]["context_width"],
        cfg["normalization"],
    )
    windows = ArticleEncoder(encoder) if kind == "article" else None

    def score(text: str) -> int:
        sents = [s.text for s in segment(strip_brackets(text)[0])]
        with torch.inference_mode():
            if windows is not None:
                ws = windows.encode_article(sents).windows
                for b in range(0, len(ws), 32):
                    feed = pad_windows(ws[b : b + 32], encoder.pad_id)
                    model(**{k: torch.from_numpy(v) for k, v in feed.items()})
            else:
                feats = sorted(encoder.encode_article(sents), key=lambda f: len(f.input_ids))
                for b in range(0, len(feats), 32):
                    ids, mask, types = (
                        torch.from_numpy(np.asarray(x)) for x in pad_batch(feats[b : b + 32], encoder.pad_id)
                    )
                    model(input_ids=ids, attention_mask=mask, token_type_ids=types)
        return len(sents)

    return score


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, required=True, help="JSON lines of articles ({id, text})")
    ap.add_argument("--articles", type=int, default=80)
    ap.add_argument("--bundle", action="append", default=[], help="NAME=bundle folder (int8, production path)")
    ap.add_argument("--eager", action="append", default=[], help="NAME=training run (PyTorch eager fp32)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("bench/results/model_types.json"))
    ap.add_argument("--plot", type=Path, help="write a speed/quality figure here")
    ap.add_argument(
        "--report",
        action="append",
        default=[],
        help="NAME=report.json of `mudraj evaluate`: the F1 plotted for bundle NAME (default: the "
        "test F1 in the bundle's metadata); give reports of the same test data for every bundle",
    )
    a = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(a.threads)

    from serving.batch.inputs import read_jsonl
    from serving.batch.io import atomic_write_json
    from serving.bundle import read_metadata
    from serving.predictor import Predictor

    texts = [r["text"] for _, r in read_jsonl(a.data)]
    if len(texts) > a.articles:  # a seeded sample across the file (a split file is sorted by source)
        import random

        texts = [texts[i] for i in sorted(random.Random(0).sample(range(len(texts)), a.articles))]
    setups = {}
    quality = {}
    for name, path in named(a.bundle, "--bundle").items():
        pred = Predictor(path, precision="int8", threads=a.threads)
        setups[f"{name} int8"] = lambda t, p=pred: len(p.predict_texts([t])[0])
        test = read_metadata(path, verify=False).get("metrics", {}).get("test", {})
        quality[f"{name} int8"] = test.get("f1")
    for name, report in named(a.report, "--report").items():
        import json

        quality[f"{name} int8"] = round(json.loads(report.read_text(encoding="utf-8"))["test"]["f1"], 4)
    for name, run in named(a.eager, "--eager").items():
        setups[f"{name} pytorch eager"] = eager_scorer(run, a.threads)
    for fn in setups.values():
        fn(texts[0])  # warm-up
    best: dict[str, float] = {}
    sentences = 0
    for r in range(a.repeats):
        names = list(setups)
        names = names[r % len(names) :] + names[: r % len(names)]
        for name in names:
            t0 = time.perf_counter()
            sentences = sum(setups[name](t) for t in texts)
            sps = sentences / (time.perf_counter() - t0)
            best[name] = max(best.get(name, 0.0), sps)
            print(f"round {r + 1}  {name:<28} {sps:8.1f} sentences/s", flush=True)
    base = next((v for k, v in best.items() if k.endswith("int8") and k.startswith("pair")), None)
    rows = [
        {
            "setup": k,
            "sentences_per_s": round(v, 1),
            "ratio_to_pair_int8": round(v / base, 2) if base else None,
            "test_f1": quality.get(k),
        }
        for k, v in best.items()
    ]
    print(f"\n{len(texts)} articles, {sentences} sentences, {a.threads} threads, {cpu_name()}")
    for row in rows:
        print(f"{row['setup']:<28} {row['sentences_per_s']:8.1f} sent/s  x{row['ratio_to_pair_int8']} pair int8")
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu_name(),
        "threads": a.threads,
        "articles": len(texts),
        "sentences": sentences,
        "repeats": a.repeats,
        "rows": rows,
    }
    atomic_write_json(a.out, result)
    if a.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        for row in rows:
            if row["test_f1"] is not None:
                ax.scatter(row["sentences_per_s"], row["test_f1"])
                ax.annotate(
                    row["setup"],
                    (row["sentences_per_s"], row["test_f1"]),
                    fontsize=8,
                    xytext=(4, 4),
                    textcoords="offset points",
                )
        ax.set_xlabel(f"sentences/s ({a.threads} threads, segmentation included)")
        ax.set_ylabel("F1 on the test split")
        ax.set_title(f"Speed and quality, {result['date'][:10]}\n{result['cpu']}", fontsize=9)
        fig.tight_layout()
        fig.savefig(a.plot, dpi=120)
    print(f"-> {a.out}")


if __name__ == "__main__":
    main()
