"""Issue 23: int8 recipes that give the same labels on every x86-64 CPU.

    python bench/quant_consistency.py --bundle runs/X-release/pruned-bundle --dev build/corpus/dev.jsonl
    python bench/quant_consistency.py ... --avx2-articles 6     # also under qemu-x86_64 -cpu Haswell

Starts from the bundle's fp32 model.onnx and builds each recipe with onnxruntime's quantiser:
- `u8s8`: dynamic, signed 8-bit weights per channel, unsigned activations (what `mudraj export` shipped);
- `u8s8-reduce-range`: the same with 7-bit weights, which ONNX Runtime recommends on CPUs without VNNI
  (the u8s8 multiply-add saturates there);
- `u8u8`: dynamic, unsigned 8-bit weights per channel;
- `qdq-static`: static QDQ, int8 weights per channel, activation scales calibrated (min/max) on dev
  windows that are not scored;
- `as-exported`: what `mudraj export` wrote into the bundle (reduce_range, the MatMuls it ranked most
  drifting kept in fp32, as its metadata records);
- `rr-fp32-top<K>`: reduce_range with the K MatMuls that drift most kept in fp32. The drift of each
  MatMul is measured alone (only it quantised, the rest fp32: mean |Δ margin| over a dev sample), and
  the ranking is written to the results (`node_drift`).
For each, natively on this CPU: the share of dev sentences whose label (at the bundle's threshold and
temperature) agrees with fp32, the largest probability change, dev F1, file size and sentences per
second (the same articles, rounds interleaved). With --avx2-articles N, a seeded sample of N dev
articles is also scored under Debian's qemu-user as an AVX2-only CPU (Haswell; no AVX-512, no VNNI),
and its labels are compared with fp32 and with the same recipe run natively. AVX-512 cannot be
emulated this way: measure it natively on such a CPU. Writes bench/results/quant_consistency.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

RECIPES = ("u8s8", "u8s8-reduce-range", "u8u8", "qdq-static")
TOP_K = (2, 6, 10, 12)  # mixed recipes: the K most drifting MatMuls in fp32


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            text = f.read()
        name = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), "")
        flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    except OSError:
        return platform.machine()
    isa = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8") if f in flags]
    return f"{name} ({', '.join(isa) or 'no AVX2'})"


def weight_matmuls(fp32: Path) -> list[str]:
    """Names of the MatMuls with a weight initialiser (what dynamic quantisation turns to int8)."""
    import onnx

    m = onnx.load(str(fp32), load_external_data=False)
    inits = {i.name for i in m.graph.initializer}
    return [n.name for n in m.graph.node if n.op_type == "MatMul" and any(x in inits for x in n.input)]


def build(
    recipe: str,
    fp32: Path,
    dst: Path,
    exclude: list[str] | None = None,
    only: list[str] | None = None,
    calibration=None,
) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    if recipe == "qdq-static":
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, quantize_static

        quantize_static(
            str(fp32),
            str(dst),
            calibration,
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul"],
            calibrate_method=CalibrationMethod.MinMax,
        )
        return
    weight = QuantType.QUInt8 if recipe == "u8u8" else QuantType.QInt8
    quantize_dynamic(
        str(fp32),
        str(dst),
        weight_type=weight,
        per_channel=True,
        reduce_range=recipe != "u8s8" and recipe != "u8u8",
        nodes_to_exclude=exclude or [],
        nodes_to_quantize=only or [],
    )


class DevWindows:
    """onnxruntime's CalibrationDataReader over the article model's padded dev windows."""

    def __init__(self, bundle: Path, articles: list[list[str]]):
        from serving.predictor import Predictor
        from serving.windows import pad_windows

        p = Predictor(bundle, precision="fp32", verify=False)
        self.feeds = []
        for sents in articles:
            enc = p.windows.encode_article(sents)
            self.feeds.append(pad_windows(enc.windows[:4], p.encoder.pad_id))
        self.it = iter(self.feeds)

    def get_next(self):
        return next(self.it, None)

    def rewind(self):
        self.it = iter(self.feeds)


def node_drift(bundle: Path, fp32: Path, root: Path, sample: list[list[str]], threads: int) -> list[dict]:
    """Each weight MatMul quantised alone (reduce_range), the rest fp32: mean and max |Δ margin| against
    fp32 on the sample, most drifting first."""
    from tqdm.auto import tqdm

    ref = margins(bundle, sample, threads, precision="fp32")
    out = []
    for name in tqdm(weight_matmuls(fp32), desc="drift per MatMul", unit="node"):
        dst = root / "one.onnx"
        build("u8s8-reduce-range", fp32, dst, only=[name])
        b = variant_bundle(bundle, dst, root, "one")
        d = np.abs(margins(b, sample, threads) - ref)
        out.append({"node": name, "mean_abs_margin_diff": float(d.mean()), "max_abs_margin_diff": float(d.max())})
    return sorted(out, key=lambda r: -r["mean_abs_margin_diff"])


def variant_bundle(src: Path, model: Path, root: Path, name: str) -> Path:
    """A copy of the bundle whose int8 file is `model` (metadata checksums are not checked for it)."""
    out = root / name
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src / "tokenizer.json", out / "tokenizer.json")
    shutil.copyfile(model, out / "model.int8.onnx")
    meta = json.loads((src / "metadata.json").read_text(encoding="utf-8"))
    meta["files"] = {k: v for k, v in meta.get("files", {}).items() if (out / k).exists()}
    (out / "metadata.json").write_text(json.dumps(meta), encoding="utf-8")
    return out


def margins(bundle: Path, articles: list[list[str]], threads: int, precision: str = "int8") -> np.ndarray:
    from serving.predictor import Predictor

    p = Predictor(bundle, precision=precision, threads=threads, verify=False)
    return np.concatenate([m for m, _ in p.article_margins(articles)])


def speed(bundles: dict[str, tuple[Path, str]], articles: list[list[str]], threads: int, rounds: int = 3) -> dict:
    from serving.predictor import Predictor

    n = sum(map(len, articles))
    preds = {k: Predictor(b, precision=prec, threads=threads, verify=False) for k, (b, prec) in bundles.items()}
    best = {k: float("inf") for k in preds}
    for p in preds.values():
        p.article_margins(articles[:2])
    for _ in range(rounds):
        for k, p in preds.items():
            t0 = time.perf_counter()
            p.article_margins(articles)
            best[k] = min(best[k], time.perf_counter() - t0)
    return {k: round(n / v, 1) for k, v in best.items()}


def under_qemu(bundle: Path, precision: str, articles: list[list[str]], cpu: str = "Haswell") -> np.ndarray:
    """Margins computed by this script's --score mode run under qemu-x86_64 -cpu CPU."""
    qemu = shutil.which("qemu-x86_64")
    if qemu is None:
        raise SystemExit("qemu-x86_64 is missing: apt-get install qemu-user")
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.json", Path(tmp) / "out.npy"
        src.write_text(json.dumps(articles, ensure_ascii=False), encoding="utf-8")
        cmd = [qemu, "-cpu", cpu, sys.executable, __file__, "--score", str(bundle), precision, str(src), str(dst)]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        subprocess.run(cmd, check=True, env=env, cwd=REPO, timeout=3600)
        return np.load(dst)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--score":  # the child run under qemu
        bundle, precision, src, dst = sys.argv[2:6]
        arts = json.loads(Path(src).read_text(encoding="utf-8"))
        np.save(dst, margins(Path(bundle), arts, threads=1, precision=precision))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", type=Path, required=True, help="a bundle with the fp32 model.onnx")
    ap.add_argument("--dev", type=Path, default=REPO / "build" / "corpus" / "dev.jsonl")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--speed-articles", type=int, default=40)
    ap.add_argument("--avx2-articles", type=int, default=0, help="dev articles to score under qemu (0: none)")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--drift-articles", type=int, default=30, help="dev articles for the per-MatMul drift ranking")
    ap.add_argument(
        "--calibration-articles", type=int, default=60, help="dev articles whose windows calibrate qdq-static"
    )
    ap.add_argument("--recipes", default="", help="comma-separated subset of recipes to build (default: all)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "quant_consistency.json")
    a = ap.parse_args()
    from serving.bundle import read_metadata
    from serving.predictor import sigmoid
    from training.corpus.articles import load_articles
    from training.evaluation.metrics import metrics

    meta = read_metadata(a.bundle, verify=False)
    thr, temp = float(meta["threshold"]), float(meta.get("temperature", 1.0))
    arts = load_articles([a.dev])
    texts = [[s.text for s in x.sentences] for x in arts]
    labels = np.array([s.label for x in arts for s in x.sentences])
    fp32 = a.bundle / "model.onnx"
    if not fp32.is_file():
        raise SystemExit(f"{a.bundle} has no fp32 model.onnx")
    result = {
        "cpu": cpu_name(),
        "bundle": str(a.bundle),
        "threshold": thr,
        "temperature": temp,
        "dev_sentences": int(len(labels)),
        "recipes": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ref = sigmoid(margins(a.bundle, texts, a.threads, precision="fp32") / temp)
        bundles = {"fp32": (a.bundle, "fp32")}
        calib_texts = texts[-a.calibration_articles :]  # calibration windows: the end of dev, not the speed sample
        recipes = {r: {} for r in RECIPES}
        if a.drift_articles:  # the ranking costs one quantisation per MatMul
            drift = node_drift(a.bundle, fp32, root, texts[: a.drift_articles], a.threads)
            result["node_drift"] = drift
            print("most drifting:", [d["node"] for d in drift[:6]], flush=True)
            recipes |= {f"rr-fp32-top{k}": {"exclude": [d["node"] for d in drift[:k]]} for k in TOP_K}
        exported = meta.get("parity", {}).get("int8_recipe", {}).get("fp32_matmuls")
        if exported is not None and (a.bundle / "model.int8.onnx").is_file():
            recipes["as-exported"] = {"exclude": exported}  # `mudraj export`'s own choice, rebuilt the same way
        if a.recipes:
            unknown = set(a.recipes.split(",")) - set(recipes)
            if unknown:
                raise SystemExit(f"--recipes: unknown {sorted(unknown)} (known: {', '.join(recipes)})")
            recipes = {k: v for k, v in recipes.items() if k in a.recipes.split(",")}
        for r, opts in recipes.items():
            base = "u8s8-reduce-range" if r.startswith("rr-") or r == "as-exported" else r
            build(
                base,
                fp32,
                root / f"{r}.onnx",
                calibration=DevWindows(a.bundle, calib_texts) if r == "qdq-static" else None,
                **opts,
            )
            b = variant_bundle(a.bundle, root / f"{r}.onnx", root, r)
            bundles[r] = (b, "int8")
            p = sigmoid(margins(b, texts, a.threads) / temp)
            m = metrics(labels, p, thr)
            result["recipes"][r] = {
                **({"fp32_nodes": opts["exclude"]} if "exclude" in opts else {}),
                "native_agreement_with_fp32": float(((p >= thr) == (ref >= thr)).mean()),
                "native_flips": int(((p >= thr) != (ref >= thr)).sum()),
                "max_abs_prob_diff": float(np.abs(p - ref).max()),
                "dev_f1": m["f1"],
                "bytes": (root / f"{r}.onnx").stat().st_size,
            }
            print(r, json.dumps(result["recipes"][r]), flush=True)
        result["fp32_dev_f1"] = metrics(labels, ref, thr)["f1"]
        result["fp32_bytes"] = fp32.stat().st_size
        sample = texts[: a.speed_articles]
        result["sentences_per_second"] = speed(bundles, sample, a.threads)
        print("speed", result["sentences_per_second"], flush=True)
        if a.avx2_articles:
            rng = random.Random(a.seed)
            pick = sorted(rng.sample(range(len(texts)), a.avx2_articles))
            chosen = [texts[i] for i in pick]
            ref_s = sigmoid(margins(a.bundle, chosen, 1, precision="fp32") / temp)
            result["avx2"] = {"articles": pick, "sentences": int(len(ref_s)), "recipes": {}}
            for r in ("fp32", *recipes):
                b, prec = bundles[r]
                native = sigmoid(margins(b, chosen, 1, precision=prec) / temp)
                emu = sigmoid(under_qemu(b, prec, chosen) / temp)
                result["avx2"]["recipes"][r] = {
                    "agreement_with_fp32": float(((emu >= thr) == (ref_s >= thr)).mean()),
                    "agreement_with_native": float(((emu >= thr) == (native >= thr)).mean()),
                    "max_abs_prob_diff_vs_native": float(np.abs(emu - native).max()),
                }
                print("avx2", r, json.dumps(result["avx2"]["recipes"][r]), flush=True)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
