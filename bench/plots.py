"""Figures for docs/benchmarks.md from bench/results/*.json.

python bench/plots.py      # writes docs/img/throughput.png, http_latency.png, soak_memory.png
"""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from serving.defaults import REPO  # noqa: E402

RESULTS = REPO / "bench" / "results"
IMG = REPO / "docs" / "img"


def throughput() -> None:
    path = RESULTS / "throughput.json"
    if not path.is_file():
        return
    r = json.loads(path.read_text())
    setups = list(dict.fromkeys(row["setup"] for row in r["rows"]))
    sizes = sorted({row["batch"] for row in r["rows"]})
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / len(setups)
    for k, setup in enumerate(setups):
        vals = [next(x["sentences_per_s"] for x in r["rows"] if x["setup"] == setup and x["batch"] == b) for b in sizes]
        ax.bar([i + k * width for i in range(len(sizes))], vals, width, label=setup)
    ax.set_xticks([i + width * (len(setups) - 1) / 2 for i in range(len(sizes))], [f"batch {b}" for b in sizes])
    ax.set_ylabel("sentences / s")
    ax.set_title(f"In-process throughput, {r['threads']} threads ({r['sentences']} sentences)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(IMG / "throughput.png", dpi=110)
    plt.close(fig)


def http() -> None:
    path = RESULTS / "http.json"
    if not path.is_file():
        return
    r = json.loads(path.read_text())
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for endpoint in ("classify", "sentences"):
        rows = [x for x in r["levels"] if x["endpoint"] == endpoint]
        c = [x["concurrency"] for x in rows]
        for q in ("p50_ms", "p95_ms", "p99_ms"):
            axes[0].plot(
                c,
                [x[q] for x in rows],
                marker="o",
                label=f"/{'classify' if endpoint == 'classify' else 'classify_sentences'} {q[:3]}",
            )
        axes[1].plot(c, [x["sentences_per_s"] for x in rows], marker="o", label=endpoint)
    axes[0].set_xscale("log", base=2)
    axes[0].set_yscale("log")
    axes[0].set_xlabel("concurrency")
    axes[0].set_ylabel("ms")
    axes[0].legend(fontsize=7)
    axes[0].set_title("Latency")
    axes[1].set_xscale("log", base=2)
    axes[1].set_xlabel("concurrency")
    axes[1].set_ylabel("sentences / s")
    axes[1].legend(fontsize=8)
    axes[1].set_title("Throughput")
    fig.tight_layout()
    fig.savefig(IMG / "http_latency.png", dpi=110)
    plt.close(fig)


def soak() -> None:
    path = RESULTS / "soak.json"
    if not path.is_file():
        return
    r = json.loads(path.read_text())
    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.plot([x["t"] for x in r["soak"]], [x["rss_mb"] for x in r["soak"]], marker=".")
    ax.set_xlabel("seconds")
    ax.set_ylabel("server RSS (MB)")
    ax.set_title(
        f"Soak: {r['soak_requests']} mixed requests at concurrency {r['soak'][0]['concurrency']}, "
        f"{r['soak_errors']} errors",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(IMG / "soak_memory.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    IMG.mkdir(parents=True, exist_ok=True)
    throughput()
    http()
    soak()
    print(f"figures in {IMG}")
