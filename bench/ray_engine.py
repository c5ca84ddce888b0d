"""`mudraj predict` engines side by side in one run: the local engine vs `--engine ray` with 1 and 2
actors, on the same articles (the first --articles of the corpus splits, brackets stripped as predict
does), the shipped bundle, threads pinned so that every setup uses the machine's cores. Also Ray's
start-up (ray.init on this machine) and a projection for an archive of a million articles.

    python bench/ray_engine.py --articles 2000 --model models/mudraj-e5-small

Each setup runs as its own `mudraj predict` command (a fresh process, as a user runs it), timed from
start to exit; outputs are checked to be the same records. Writes bench/results/ray_engine.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.model_types import cpu_name  # noqa: E402
from serving.batch.io import atomic_write_json  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def articles(n: int, splits: list[Path]) -> list[dict]:
    out = []
    for split in splits:
        for line in split.read_text(encoding="utf-8").splitlines():
            if len(out) == n:
                return out
            rec = json.loads(line)
            out.append({"id": rec["id"], "text": rec["text"]})
    if len(out) < n:
        raise SystemExit(f"only {len(out)} articles in {', '.join(map(str, splits))}")
    return out


def timed(cmd: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stderr[-3000:]}")
    return time.perf_counter() - t0


def records(path: Path) -> list[dict]:
    files = sorted(path.glob("part-*.jsonl")) if path.is_dir() else [path]
    return [json.loads(line) for f in files for line in f.read_text(encoding="utf-8").splitlines()]


def ray_start_seconds(repeats: int = 3) -> float:
    code = (
        "import logging, os, time; t=time.perf_counter(); import ray; "
        "ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level=logging.WARNING); "
        "print(time.perf_counter()-t); ray.shutdown()"
    )
    times = [
        float(
            subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
            .stdout.strip()
            .splitlines()[-1]
        )
        for _ in range(repeats)
    ]
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--articles", type=int, default=2000)
    ap.add_argument("--model", type=Path, default=REPO / "models" / "mudraj-e5-small")
    ap.add_argument(
        "--splits",
        type=Path,
        nargs="+",
        default=[REPO / "build" / "corpus" / f"{s}.jsonl" for s in ("test", "dev", "train")],
    )
    ap.add_argument("--shard-size", type=int, default=100)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "ray_engine.json")
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(cores),
        "RAY_USAGE_STATS_ENABLED": "0",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
    }
    work = Path(tempfile.mkdtemp(prefix="mudraj-ray-bench-"))
    try:
        data = work / "articles.jsonl"
        arts = articles(args.articles, args.splits)
        data.write_text("".join(json.dumps(a, ensure_ascii=False) + "\n" for a in arts), encoding="utf-8")
        base = [sys.executable, "-m", "training.cli", "predict", str(data), "-m", str(args.model), "-q"]
        setups = {"local": base + ["--threads", str(cores), "-o", str(work / "local.jsonl")]}
        for n in (1, 2):
            setups[f"ray, {n} actor{'s' if n > 1 else ''}"] = base + [
                "--engine",
                "ray",
                "--workers",
                str(n),
                "--threads",
                str(max(1, cores // n)),
                "--shard-size",
                str(args.shard_size),
                "-o",
                str(work / f"ray{n}"),
            ]
        seconds = {}
        for name, cmd in setups.items():
            print(f"{name} ...", file=sys.stderr, flush=True)
            seconds[name] = timed(cmd, env)
        local = records(work / "local.jsonl")
        sentences = sum(len(r["sentences"]) for r in local)
        for n in (1, 2):
            ray = records(work / f"ray{n}")
            same = len(ray) == len(local) and all(
                a["id"] == b["id"]
                and [(s["start"], s["end"], s["label"]) for s in a["sentences"]]
                == [(s["start"], s["end"], s["label"]) for s in b["sentences"]]
                and max((abs(s["score"] - t["score"]) for s, t in zip(a["sentences"], b["sentences"])), default=0)
                <= 1e-5
                for a, b in zip(ray, local)
            )
            if not same:
                raise SystemExit(f"ray with {n} actors gave other records than the local engine")
        start = ray_start_seconds()
        rows = {
            name: {
                "seconds": round(s, 2),
                "articles_per_s": round(len(arts) / s, 2),
                "sentences_per_s": round(sentences / s, 1),
                "vs_local": round(seconds["local"] / s, 3),
            }
            for name, s in seconds.items()
        }
        best = max((k for k in rows if k.startswith("ray")), key=lambda k: rows[k]["articles_per_s"])  # what scales out
        per_node = rows[best]["articles_per_s"]
        projection = {
            str(nodes): round((1_000_000 / (per_node * nodes) + start) / 3600, 2) for nodes in (1, 2, 4, 8, 16, 32, 64)
        }
        result = {
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "cpu": cpu_name(),
            "cores": cores,
            "model": str(args.model.relative_to(REPO) if args.model.is_relative_to(REPO) else args.model),
            "articles": len(arts),
            "sentences": sentences,
            "shard_size": args.shard_size,
            "setups": rows,
            "ray_start_s": round(start, 2),
            "records_identical": True,
            "projection_hours_for_1M_articles": {
                "basis": f"a projection, not a measurement: {best} gave {per_node} "
                f"articles/s on this {cores}-core machine; N such nodes "
                f"taken as N times that, plus Ray's start-up once",
                "hours_by_nodes": projection,
            },
        }
        atomic_write_json(args.out, result)
        print(json.dumps(result, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
