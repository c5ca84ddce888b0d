"""Abuse on loopback (issue 12, points 1 and 2): what random paths, huge requests and a full queue cost.

    python bench/abuse.py                        # models/mudraj-e5-small, writes bench/results/abuse.json
    python bench/abuse.py --parts default --out /tmp/abuse.json   # only the server with default settings

Measures, with the shipped model on this machine:
- in process: sentences and characters per second, so the default MUDRAJ_MAX_REQUEST_CHARS can be
  read as seconds of work;
- a server with default settings: resident memory of its process tree and the size of /metrics
  before and after --paths GETs to random unknown paths; the answer to a huge /classify_batch
  (--huge: 12 articles of 100,000 characters, as in the issue; refused, or computed) and how long a
  small /classify sent meanwhile waits; a request at the character limit, and a small /classify behind it;
- a server with MUDRAJ_TIMEOUT=3, MUDRAJ_MAX_QUEUE=2 and limits raised so the huge batch is
  admitted: its answer (504 at the deadline) and how long the small /classify behind it waits
  (the worker must be free soon after the deadline, not when the batch would have finished);
  then the queue: how many of several concurrent requests are refused 503, with which Retry-After.

Every request goes to 127.0.0.1. Timings are reported, not asserted; the tests assert behaviour.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import psutil
import requests
from http_load import article, tree_rss_mb

from serving.batch.io import atomic_write_json
from serving.defaults import DEFAULT_MODEL, REPO
from serving.serve import ServerProcess

SMALL = "أعلنت وزارة الصحة اليوم افتتاح مستشفى جديد في المدينة. ويأتي ذلك في وقت يعاني فيه القطاع من إهمال مزمن."


def text_of(chars: int) -> str:
    """Our benchmark article repeated, cut at a paragraph so it is at most `chars` characters."""
    para = article(25)
    text = "\n\n".join([para] * (chars // (len(para) + 2) + 1))
    return text[: text.rfind("\n\n", 0, chars)]


def post(url: str, path: str, body: dict, timeout: float = 600) -> dict:
    """POST raw UTF-8 JSON (as a browser or most clients send it); status, seconds, size, error."""
    data = json.dumps(body, ensure_ascii=False).encode()
    t0 = time.perf_counter()
    r = requests.post(url + path, data=data, headers={"Content-Type": "application/json"}, timeout=timeout)
    out = {"status": r.status_code, "seconds": round(time.perf_counter() - t0, 2), "request_bytes": len(data)}
    if r.status_code >= 400:
        out["error"] = r.text[:300]
    if "retry-after" in r.headers:
        out["retry_after"] = r.headers["retry-after"]
    return out


def behind(url: str, path: str, body: dict, delay: float = 1.0) -> dict:
    """Send `body`, and `delay` s later a small /classify; the answers to both."""
    with ThreadPoolExecutor(1) as pool:
        big = pool.submit(post, url, path, body)
        time.sleep(delay)
        small = post(url, "/classify", {"text": SMALL})
        return {"big": big.result(), "small_sent_after_s": delay, "small": small}


def metrics_kb(url: str) -> float | None:
    r = requests.get(url + "/metrics", timeout=60)
    return round(len(r.content) / 1024, 1) if r.status_code == 200 else None


def worker_rss_mb(pid: int) -> float:
    """The largest process of the tree: the worker that holds the model."""
    procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    return round(max(p.memory_info().rss for p in procs) / 2**20, 1)


def random_paths(url: str, n: int, threads: int = 4) -> dict:
    prefixes = ["/", "/ui/", "/static_content/", "/model_card/"]
    local = threading.local()

    def one(i: int) -> int:
        if not hasattr(local, "s"):
            local.s = requests.Session()
        return local.s.get(f"{url}{prefixes[i % len(prefixes)]}{uuid.uuid4().hex}", timeout=60).status_code

    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        statuses = list(pool.map(one, range(n)))
    return {
        "requests": n,
        "seconds": round(time.perf_counter() - t0, 1),
        "statuses": {str(s): statuses.count(s) for s in sorted(set(statuses))},
    }


def in_process(model: Path, threads: int) -> dict:
    from serving.predictor import Predictor
    from serving.segment import segment

    pred = Predictor(model, threads=threads)
    from serving.schema import MAX_CHARS

    text = text_of(MAX_CHARS)
    pred.predict_texts([article(25)])  # warm-up
    t0 = time.perf_counter()
    pred.predict_texts([text])
    s = time.perf_counter() - t0
    n = len(segment(text))
    return {
        "chars": len(text),
        "sentences": n,
        "seconds": round(s, 2),
        "sentences_per_s": round(n / s, 1),
        "chars_per_s": round(len(text) / s),
    }


def default_server(a: argparse.Namespace, tmp: Path, huge: dict) -> dict:
    with ServerProcess(a.model, tmp / "default.log", threads=a.threads) as srv:
        post(srv.url, "/classify", {"text": SMALL})  # warm-up
        card = requests.get(srv.url + "/model_card", timeout=30).json()["serving"]
        d = {
            "settings": {k: card.get(k) for k in ("max_chars", "max_request_chars", "max_queue", "timeout_s")},
            "rss_tree_mb_before": round(tree_rss_mb(srv.pid), 1),
            "rss_worker_mb_before": worker_rss_mb(srv.pid),
            "metrics_kb_before": metrics_kb(srv.url),
        }
        d["random_paths"] = random_paths(srv.url, a.paths)
        d.update(
            rss_tree_mb_after=round(tree_rss_mb(srv.pid), 1),
            rss_worker_mb_after=worker_rss_mb(srv.pid),
            metrics_kb_after=metrics_kb(srv.url),
        )
        print(json.dumps(d), flush=True)
        d["huge_batch"] = behind(srv.url, "/classify_batch", huge)
        print(json.dumps(d["huge_batch"]), flush=True)
        limit = card.get("max_request_chars") or card["max_chars"]
        d["request_at_the_limit"] = behind(srv.url, "/classify", {"text": text_of(limit)})
        d["request_at_the_limit"]["chars"] = len(text_of(limit))
        print(json.dumps(d["request_at_the_limit"]), flush=True)
    return d


def tight_server(a: argparse.Namespace, tmp: Path, huge: dict) -> dict:
    env = {
        "MUDRAJ_TIMEOUT": "3",
        "MUDRAJ_MAX_QUEUE": "2",
        "MUDRAJ_MAX_CHARS": "100000",
        "MUDRAJ_MAX_REQUEST_CHARS": "1300000",
        "MUDRAJ_MAX_BODY_BYTES": str(16 * 2**20),
    }
    with ServerProcess(a.model, tmp / "tight.log", env=env, threads=a.threads) as srv:
        post(srv.url, "/classify", {"text": SMALL})
        t = {"env": env, "huge_batch": behind(srv.url, "/classify_batch", huge)}
        print(json.dumps(t), flush=True)
        with ThreadPoolExecutor(6) as pool:
            first = pool.submit(post, srv.url, "/classify", {"text": text_of(100_000)})
            time.sleep(0.5)
            rest = [pool.submit(post, srv.url, "/classify", {"text": SMALL}) for _ in range(5)]
            answers = [first.result()] + [f.result() for f in rest]
        t["queue_1_long_then_5_small"] = {
            "statuses": [x["status"] for x in answers],
            "retry_after": [x.get("retry_after") for x in answers if x["status"] == 503],
            "seconds": [x["seconds"] for x in answers],
        }
        print(json.dumps(t["queue_1_long_then_5_small"]), flush=True)
    return t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--paths", type=int, default=5000, help="GETs to random unknown paths")
    ap.add_argument(
        "--huge",
        type=int,
        nargs=2,
        default=[12, 100_000],
        metavar=("ARTICLES", "CHARS"),
        help="the oversized /classify_batch: how many articles of how many characters",
    )
    ap.add_argument("--parts", nargs="+", choices=["default", "tight"], default=["default", "tight"])
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "abuse.json")
    a = ap.parse_args()
    n, chars = a.huge
    huge = {"articles": [{"id": i, "text": text_of(chars)} for i in range(n)]}
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": str(a.model),
        "threads": a.threads,
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "huge_batch": {"articles": n, "chars_each": len(huge["articles"][0]["text"])},
        "in_process": in_process(a.model, a.threads),
    }
    print(json.dumps(result["in_process"]), flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="mudraj-abuse-"))
    if "default" in a.parts:
        result["default_server"] = default_server(a, tmp, huge)
        atomic_write_json(a.out, result)  # after each part: a long run keeps what it measured
    if "tight" in a.parts:
        result["tight_server"] = tight_server(a, tmp, huge)
        atomic_write_json(a.out, result)
    print(f"-> {a.out}")


if __name__ == "__main__":
    main()
