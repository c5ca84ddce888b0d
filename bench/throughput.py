"""In-process throughput, one run, threads pinned: a transformers pipeline and PyTorch eager (fp32)
vs ONNX Runtime fp32/int8.

    python bench/throughput.py --run runs/e5-small --bundle runs/e5-small/bundle \
        --data build/corpus/test.jsonl --n 512 --threads 2

Every setup scores the same sentences (same token ids: the one Encoder); batch sizes 1, 8, 32;
ONNX Runtime with and without length bucketing (sorting by length before batching). Prints a
table of sentences per second and the ratio to PyTorch eager at the same batch size, and writes
bench/results/throughput.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

from serving.batch.io import atomic_write_json
from serving.features import pad_batch


def batches(feats, size, bucket):
    order = sorted(range(len(feats)), key=lambda i: len(feats[i].input_ids)) if bucket else list(range(len(feats)))
    for b in range(0, len(order), size):
        yield [feats[i] for i in order[b : b + size]]


def timed(fn, feats, size, bucket, pad_id) -> tuple[float, int]:
    """Seconds for all features, and tokens actually run through the model (padding included)."""
    t0 = time.perf_counter()
    tokens = 0
    for chunk in batches(feats, size, bucket):
        ids, mask, types = pad_batch(chunk, pad_id)
        tokens += ids.size
        fn(ids, mask, types)
    return time.perf_counter() - t0, tokens


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", type=Path, required=True, help="training run (PyTorch model)")
    ap.add_argument("--bundle", type=Path, required=True, help="exported bundle (fp32 + int8)")
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("bench/results/throughput.json"))
    a = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(a.threads)

    import onnxruntime as ort
    import torch
    from transformers import AutoModelForSequenceClassification

    from serving.predictor import Predictor
    from training.corpus.articles import load_articles

    torch.set_num_threads(a.threads)
    pred = Predictor(a.bundle, precision="int8", threads=a.threads)
    feats, pairs = [], []
    for art in load_articles([a.data]):
        sents = [s.text for s in art.sentences]
        feats.extend(pred.encoder.encode_article(sents))
        # What a user would write first: the sentence and its neighbours as a text pair for a pipeline.
        pairs.extend(
            {"text": s, "text_pair": " ".join(sents[max(0, i - 1) : i] + sents[i + 1 : i + 2])}
            for i, s in enumerate(sents)
        )
        if len(feats) >= a.n:
            break
    feats, pairs = feats[: a.n], pairs[: a.n]
    pad = pred.encoder.pad_id
    model = AutoModelForSequenceClassification.from_pretrained(a.run / "model").eval()

    def torch_fn(ids, mask, types):
        with torch.inference_mode():
            model(
                input_ids=torch.from_numpy(ids),
                attention_mask=torch.from_numpy(mask),
                token_type_ids=torch.from_numpy(types),
            )

    def ort_fn(path):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = a.threads
        opts.inter_op_num_threads = 1
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        return lambda ids, mask, types: sess.run(
            ["logits"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        )

    from transformers import PreTrainedTokenizerFast, pipeline

    tok = PreTrainedTokenizerFast(
        tokenizer_file=str(a.bundle / "tokenizer.json"),
        pad_token="<pad>",
        cls_token="<s>",
        sep_token="</s>",
        unk_token="<unk>",
    )
    pipe = pipeline("text-classification", model=model, tokenizer=tok, device=-1)
    n_pipe = min(len(pairs), 128)
    rows = []
    for size in (1, 8, 32):
        pipe(pairs[:2], batch_size=size, truncation=True, max_length=pred.encoder.max_length)
        t0 = time.perf_counter()
        pipe(pairs[:n_pipe], batch_size=size, truncation=True, max_length=pred.encoder.max_length)
        sps = n_pipe / (time.perf_counter() - t0)
        rows.append({"setup": "transformers pipeline fp32", "batch": size, "sentences_per_s": round(sps, 1)})
        print(f"batch {size:>2}  {'transformers pipeline fp32':<30} {sps:8.1f} sent/s", flush=True)
    pipeline_sps = {r["batch"]: r["sentences_per_s"] for r in rows}

    setups = {
        "pytorch eager fp32": (torch_fn, False),
        "onnxruntime fp32": (ort_fn(a.bundle / "model.onnx"), False),
        "onnxruntime fp32 + bucketing": (ort_fn(a.bundle / "model.onnx"), True),
        "onnxruntime int8": (ort_fn(a.bundle / "model.int8.onnx"), False),
        "onnxruntime int8 + bucketing": (ort_fn(a.bundle / "model.int8.onnx"), True),
    }
    real_tokens = sum(len(f.input_ids) for f in feats)
    cfg = model.config
    mean_len = real_tokens / len(feats)
    # Multiply-accumulates per token: Q, K, V, output projections (4 H^2), feed-forward (2 H I), and the
    # attention products (2 H x sequence length); embeddings and the classifier head are negligible.
    macs_per_token = cfg.num_hidden_layers * (
        4 * cfg.hidden_size**2 + 2 * cfg.hidden_size * cfg.intermediate_size + 2 * cfg.hidden_size * mean_len
    )
    for size in (1, 8, 32):
        base = None
        for name, (fn, bucket) in setups.items():
            fn(*pad_batch(feats[:2], pad))  # warm-up
            secs, tokens = timed(fn, feats, size, bucket, pad)
            sps = len(feats) / secs
            base = sps if name.startswith("pytorch") else base
            useful = real_tokens * macs_per_token / secs / 1e9  # GMAC/s on real tokens
            done = tokens * macs_per_token / secs / 1e9  # GMAC/s including padding
            rows.append(
                {
                    "setup": name,
                    "batch": size,
                    "sentences_per_s": round(sps, 1),
                    "ratio_to_pytorch": round(sps / base, 2),
                    "ratio_to_pipeline": round(sps / pipeline_sps[size], 2),
                    "padding_share": round(1 - real_tokens / tokens, 3),
                    "useful_gmacs": round(useful, 1),
                    "computed_gmacs": round(done, 1),
                }
            )
            print(
                f"batch {size:>2}  {name:<30} {sps:8.1f} sent/s  x{sps / base:5.2f} eager  "
                f"x{sps / pipeline_sps[size]:5.2f} pipeline  padding {1 - real_tokens / tokens:5.1%}"
                f"  {useful:6.1f} useful / {done:6.1f} computed GMAC/s",
                flush=True,
            )
    out = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "threads": a.threads,
        "sentences": len(feats),
        "mean_tokens": round(mean_len, 1),
        "macs_per_token": int(macs_per_token),
        "rows": rows,
    }
    atomic_write_json(a.out, out)
    print(f"-> {a.out}")


if __name__ == "__main__":
    main()
