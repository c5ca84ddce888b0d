"""Idle connections against the service (issue 22, item 1): do clients that never send their body lock
the others out?

    python bench/idle_connections.py                       # this tree's server, writes bench/results/idle_connections.json
    python bench/idle_connections.py --label before --out /tmp/before.json   # run from an older checkout

A server with default settings (MUDRAJ_MAX_QUEUE 64) serves the shipped model on 127.0.0.1. First
`--requests` normal /classify requests are sent one after another with nothing else open (baseline);
then `--idle` connections send POST /classify headers that promise a body and never send it, and
the same requests are sent again while they stay open. Reported for both phases: the share answered
200, the other status codes, median and p95 latency; and how the idle connections were answered.
Every request goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import platform
import socket
import tempfile
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import requests

from serving.defaults import DEFAULT_MODEL, REPO
from serving.serve import ServerProcess

ARTICLE = (
    "أعلنت وزارة الصحة اليوم افتتاح مستشفى جديد في المدينة بسعة مئتي سرير. وقال المتحدث باسم الوزارة إن "
    "المستشفى سيبدأ استقبال المرضى الشهر المقبل. ويأتي ذلك في وقت يعاني فيه القطاع من ضغط متزايد."
)


def phase(url: str, n: int) -> dict:
    codes, took = Counter(), []
    for _ in range(n):
        t0 = time.perf_counter()
        try:
            code = requests.post(url + "/classify", json={"text": ARTICLE}, timeout=60).status_code
        except requests.RequestException as err:
            code = type(err).__name__
        took.append(time.perf_counter() - t0)
        codes[str(code)] += 1
    return {
        "requests": n,
        "ok_share": codes["200"] / n,
        "codes": dict(codes),
        "median_ms": round(1000 * float(np.median(took)), 1),
        "p95_ms": round(1000 * float(np.percentile(took, 95)), 1),
    }


def open_idle(port: int, n: int) -> list[socket.socket]:
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=600)
        s.sendall(
            b"POST /classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n"
        )
        socks.append(s)
    return socks


def answers(socks: list[socket.socket], wait: float) -> dict:
    got = Counter()
    deadline = time.monotonic() + wait
    for s in socks:
        s.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            first = s.recv(64).decode("latin-1").split("\r\n")[0]
            got[first.split(" ")[1] if first.startswith("HTTP/") else "closed"] += 1
        except OSError:
            got["no answer yet"] += 1
        finally:
            s.close()
    return dict(got)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--idle", type=int, default=64)
    ap.add_argument("--requests", type=int, default=40)
    ap.add_argument("--label", default="after")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "idle_connections.json")
    a = ap.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        ServerProcess(a.model, Path(tmp) / "server.log", env={"MUDRAJ_THREADS": "2"}, ready_timeout=180) as srv,
    ):
        base = phase(srv.url, a.requests)
        socks = open_idle(srv.port, a.idle)
        time.sleep(1.0)
        t0 = time.monotonic()
        loaded = phase(srv.url, a.requests)
        idle = answers(socks, wait=max(0.0, 30 - (time.monotonic() - t0)))
    result = {
        "label": a.label,
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu": platform.processor() or platform.machine(),
        "idle_connections": a.idle,
        "baseline": base,
        "with_idle_connections": loaded,
        "idle_answered_within_30s": idle,
    }
    print(json.dumps(result, indent=2))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
