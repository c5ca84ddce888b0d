"""Run `mudraj predict` as another x86-64 CPU would (issue 23), with Debian's qemu-user.

`qemu-x86_64 -cpu Haswell` executes the same Python and the same onnxruntime, but the CPU it
reports has AVX2 and no AVX-512 or VNNI, so onnxruntime picks the kernels an AVX2-only machine
(AMD Zen 3, older Intel) runs. It is slow (minutes for one article, model load included): use it to
check labels, never speed. AVX-512 and AMX cannot be emulated this way; measure them natively.

    from training.evaluation.cpu_emulation import predict_labels
    native = predict_labels(bundle, articles_jsonl)            # this CPU
    avx2 = predict_labels(bundle, articles_jsonl, cpu="Haswell")  # as an AVX2-only CPU
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from serving.errors import MissingError

AVX2_ONLY = "Haswell"  # qemu's CPU model with AVX2 and FMA, without AVX-512 or VNNI


def qemu() -> str | None:
    """The qemu-user binary for x86-64, or None (apt-get install qemu-user)."""
    return shutil.which("qemu-x86_64")


def cpu_flags() -> list[str]:
    """The instruction sets that decide onnxruntime's int8 and float kernels, as this CPU reports them."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return []
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8") if f in flags]


def predict_command(bundle: Path, inputs: Path, out: Path, cpu: str | None = None, threads: int = 1) -> list[str]:
    """The `mudraj predict` command line, prefixed with qemu when cpu is given."""
    script = Path(sys.executable).with_name("mudraj")
    entry = [str(script)] if script.is_file() else ["-m", "training.cli"]
    cmd = [
        sys.executable,
        *entry,
        "predict",
        str(inputs),
        "--model",
        str(bundle),
        "--out",
        str(out),
        "--threads",
        str(threads),
        "--quiet",
    ]
    if cpu is None:
        return cmd
    binary = qemu()
    if binary is None:
        raise MissingError("qemu-x86_64 is not installed (Debian: apt-get install qemu-user)")
    return [binary, "-cpu", cpu, *cmd]


def predict_labels(bundle: Path, inputs: Path, cpu: str | None = None, timeout: float = 1800) -> dict[str, list[dict]]:
    """`mudraj predict` on inputs (natively, or under qemu as `cpu`); per article id its sentences
    ({start, end, label, score, ...}) as the JSONL output gives them."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.jsonl"
        env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
        done = subprocess.run(
            predict_command(bundle, inputs, out, cpu), env=env, capture_output=True, text=True, timeout=timeout
        )
        if done.returncode != 0:
            where = f"under qemu -cpu {cpu}" if cpu else "natively"
            raise RuntimeError(f"mudraj predict failed {where} (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
        return {r["id"]: r["sentences"] for r in map(json.loads, out.read_text(encoding="utf-8").splitlines())}


def compare(native: dict[str, list[dict]], other: dict[str, list[dict]]) -> dict:
    """Label agreement and score drift between two predict outputs of the same articles."""
    if native.keys() != other.keys():
        raise ValueError(f"the two runs labelled different articles: {sorted(native.keys() ^ other.keys())[:3]}")
    flips, diffs, n = [], [], 0
    for aid, sents in native.items():
        for i, (a, b) in enumerate(zip(sents, other[aid], strict=True)):
            n += 1
            diffs.append(abs(a["score"] - b["score"]))
            if a["label"] != b["label"]:
                flips.append({"id": aid, "sentence": i, "native_score": a["score"], "other_score": b["score"]})
    diffs.sort()
    return {
        "sentences": n,
        "flips": flips,
        "agreement": 1 - len(flips) / n if n else 1.0,
        "median_abs_diff": diffs[len(diffs) // 2] if diffs else 0.0,
        "max_abs_diff": diffs[-1] if diffs else 0.0,
    }


def write_articles(articles: list[tuple[str, str]], path: Path) -> Path:
    """(id, text) pairs as predict's JSONL input."""
    path.write_text(
        "".join(json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n" for i, t in articles), encoding="utf-8"
    )
    return path


def probe(bundle: Path, articles: list[tuple[str, str]], k: int = 8) -> list[tuple[str, str]]:
    """The k most borderline sentences of the articles (probability nearest the bundle's threshold on
    this CPU), each cut out of its article with one sentence on either side: where another CPU's
    rounding would first change a label. For the pair model the middle sentence's input is exactly
    what it was in the article; the article model sees a shorter article, and the comparison between
    CPUs is made on the same snippets either way."""
    from serving.predictor import Predictor
    from serving.segment import segment

    pred = Predictor(bundle, threads=1)
    scored = []
    for aid, text in articles:
        spans = segment(text)
        for i, s in enumerate(pred.predict_texts([text])[0]):
            lo, hi = spans[max(i - 1, 0)].start, spans[min(i + 1, len(spans) - 1)].end
            scored.append((abs(s.score - pred.threshold), f"{aid}#{i}", text[lo:hi]))
    scored.sort()
    return [(sid, snippet) for _, sid, snippet in scored[:k]]
