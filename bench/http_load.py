"""HTTP load against the running service on loopback: latency percentiles, throughput, memory.

    python bench/http_load.py --model models/mudraj-e5-small --levels 1 4 16 64 --requests 96
    python bench/http_load.py --soak 600 --concurrency 16        # the 10-minute soak, mixed requests

Starts `mudraj serve` on a free 127.0.0.1 port with serving.serve.ServerProcess, the class the
tests' server fixture uses (or uses --url), sends a bounded number of requests
per concurrency level from a thread pool (each request waits for its answer, so the client never
floods), samples the resident memory of the server's process tree, and writes
bench/results/http.json (or soak.json).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import psutil
import requests

from serving.batch.io import atomic_write_json
from serving.defaults import DEFAULT_MODEL, REPO
from serving.serve import ServerProcess


def article(n_sentences: int = 25) -> str:
    """A 25-sentence article of our own, built from varied sentences we wrote for benchmarks."""
    base = [
        "أعلنت وزارة النقل اليوم عن بدء تشغيل المرحلة الأولى من شبكة الحافلات الجديدة في العاصمة.",
        "وقال المتحدث باسم الوزارة في مؤتمر صحفي إن الشبكة تضم 80 حافلة تعمل بالطاقة الكهربائية.",
        "وأضاف أن المرحلة الثانية ستبدأ مطلع العام المقبل وتشمل الأحياء الشرقية.",
        "ويأتي هذا المشروع في إطار مساع واسعة لتخفيف الازدحام المروري في المدن الكبرى.",
        "وأوضح أن أسعار التذاكر ستبقى رمزية خلال الأشهر الثلاثة الأولى من التشغيل.",
        "ويأمل السكان أن تسهم الحافلات الجديدة في تقليص أوقات التنقل اليومية.",
        "وذكرت الوزارة في بيان أن الحافلات مزودة بأنظمة تتبع ودفع إلكتروني.",
        "ويرى مراقبون أن نجاح التجربة قد يشجع مدنا أخرى على تبني مشاريع مماثلة.",
    ]
    return "\n\n".join(" ".join(base[(i + k) % len(base)] for k in range(5)) for i in range(0, n_sentences, 5))


def tree_rss_mb(pid: int) -> float:
    try:
        p = psutil.Process(pid)
        procs = [p] + p.children(recursive=True)
        return sum(x.memory_info().rss for x in procs if x.is_running()) / 2**20
    except psutil.NoSuchProcess:
        return 0.0


class Sampler(threading.Thread):
    def __init__(self, pid: int, every: float = 0.5):
        super().__init__(daemon=True)
        self.pid, self.every, self.samples, self.stop = pid, every, [], threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.samples.append((time.time(), tree_rss_mb(self.pid)))
            time.sleep(self.every)


def one(
    session: requests.Session, url: str, kind: str, text: str, sentences: list[str]
) -> tuple[float, tuple[bool, int, str]]:
    t0 = time.perf_counter()
    if kind == "classify":
        r = session.post(f"{url}/classify", json={"text": text}, timeout=120)
        ok = r.status_code == 200 and len(r.json()["sentences"]) > 0
    elif kind == "batch":
        r = session.post(
            f"{url}/classify_batch",
            json={"articles": [{"id": "a", "text": text}, {"id": "b", "text": text}]},
            timeout=120,
        )
        ok = r.status_code == 200 and len(r.json()["results"]) == 2
    else:
        r = session.post(f"{url}/classify_sentences", json={"sentences": sentences}, timeout=120)
        ok = r.status_code == 200
    return time.perf_counter() - t0, (ok, r.status_code, "" if ok else r.text[:160])


def level(url: str, kind: str, concurrency: int, n_requests: int, text: str, sentences: list[str]) -> dict:
    local = threading.local()

    def task(i):
        if not hasattr(local, "s"):
            local.s = requests.Session()
        k = kind if kind != "mixed" else ("classify", "batch", "sentences")[i % 3]
        return one(local.s, url, k, text, sentences)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(task, range(n_requests)))
    wall = time.perf_counter() - t0
    lat = sorted(r[0] * 1000 for r in results)
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]  # noqa: E731
    return {
        "endpoint": kind,
        "concurrency": concurrency,
        "requests": n_requests,
        "errors": sum(not r[1][0] for r in results),
        "error_statuses": sorted({r[1][1] for r in results if not r[1][0]}),
        # what the server said, once per status: BentoML's batching 503 and our queue's 503 read differently
        "error_examples": {str(r[1][1]): r[1][2] for r in reversed(results) if not r[1][0]},
        "p50_ms": round(q(0.5), 1),
        "p95_ms": round(q(0.95), 1),
        "p99_ms": round(q(0.99), 1),
        "requests_per_s": round(n_requests / wall, 2),
        "sentences_per_s": round(n_requests * (len(sentences) if kind != "batch" else 2 * len(sentences)) / wall, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--url", default=None, help="use a running service instead of starting one")
    ap.add_argument("--levels", type=int, nargs="+", default=[1, 4, 16, 64])
    ap.add_argument("--requests", type=int, default=64, help="requests per level")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--soak", type=float, default=0, help="seconds of mixed load at --concurrency")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    from serving.segment import segment

    text = article(25)
    sentences = [s.text for s in segment(text)]
    srv, startup = None, None
    url = a.url
    if url is None:
        log = Path(tempfile.mkdtemp(prefix="mudraj-bench-")) / "server.log"
        srv = ServerProcess(a.model, log, workers=a.workers, threads=a.threads)
        url, startup = srv.url, srv.startup_s
        print(f"server ready at {url} after {startup:.1f} s (log: {log})", flush=True)
    pid = srv.pid if srv else None
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": str(a.model),
        "workers": a.workers,
        "threads": a.threads,
        "startup_s": startup and round(startup, 1),
        "article_sentences": len(sentences),
    }
    # The same article in process, same threads: the ceiling the service is compared with.
    from serving.predictor import Predictor

    pred = Predictor(a.model, precision="int8", threads=a.threads)
    pred.predict_texts([text])
    t0 = time.perf_counter()
    for _ in range(20):
        pred.predict_texts([text])
    result["in_process_sentences_per_s"] = round(20 * len(sentences) / (time.perf_counter() - t0), 1)
    del pred
    try:
        level(url, "classify", 1, 3, text, sentences)  # warm-up
        result["rss_at_rest_mb"] = round(tree_rss_mb(pid), 1) if pid else None
        sampler = Sampler(pid) if pid else None
        if sampler:
            sampler.start()
        if a.soak:
            rows, t_end = [], time.time() + a.soak
            while time.time() < t_end:
                r = level(url, "mixed", a.concurrency, a.concurrency * 6, text, sentences)
                r["t"] = round(time.time() - (t_end - a.soak), 1)
                r["rss_mb"] = round(tree_rss_mb(pid), 1) if pid else None
                rows.append(r)
                print(json.dumps(r), flush=True)
            result["soak"] = rows
            warm = [r["rss_mb"] for r in rows if r["t"] > 60] or [r["rss_mb"] for r in rows]
            result["soak_errors"] = sum(r["errors"] for r in rows)
            result["soak_requests"] = sum(r["requests"] for r in rows)
            result["rss_growth_after_warmup"] = round(warm[-1] / warm[0] - 1, 4) if warm and warm[0] else None
        else:
            rows = []
            for endpoint in ("classify", "sentences"):
                for c in a.levels:
                    r = level(url, endpoint, c, max(a.requests, c * 2), text, sentences)
                    rows.append(r)
                    print(json.dumps(r), flush=True)
            result["levels"] = rows
            c16 = next(r for r in rows if r["endpoint"] == "classify" and r["concurrency"] == 16)
            result["classify_c16_share_of_in_process"] = round(
                c16["sentences_per_s"] / result["in_process_sentences_per_s"], 3
            )
        if sampler:
            sampler.stop.set()
            result["rss_peak_under_load_mb"] = round(max(s[1] for s in sampler.samples), 1)
    finally:
        if srv:
            srv.stop(timeout=30)
    out = a.out or REPO / "bench" / "results" / ("soak.json" if a.soak else "http.json")
    atomic_write_json(out, result)
    print(json.dumps({k: v for k, v in result.items() if k not in ("levels", "soak")}, indent=2))
    print(f"-> {out}")


if __name__ == "__main__":
    main()
