"""A real Mudraj HTTP server (BentoML) on a free loopback port, serving the tiny test bundle.

Started once per test session with serving.serve.ServerProcess, i.e. through `mudraj serve`
exactly as a user starts it (the HTTP benchmarks use the same class), and stopped at the end.
"""

from __future__ import annotations

import re

import pytest

# The server's own count of admitted /classify requests (bodies read, a queue place taken); BentoML's
# in-progress gauge counts a request from its first byte, while its body may still be arriving.
_ADMITTED = re.compile(r'^mudraj_admitted_requests\{[^}]*endpoint="/classify"[^}]*\}\s+(\S+)', re.M)


def admitted_classify_requests(url: str) -> float:
    """`mudraj_admitted_requests{endpoint="/classify"}` read from the server's /metrics (0 before the first)."""
    import requests

    m = _ADMITTED.search(requests.get(f"{url}/metrics", timeout=10).text)
    return float(m.group(1)) if m else 0.0


# Settings a developer's shell may carry that would change what the tests see.
CLEAN_ENV = {
    "MUDRAJ_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "BENTOML_DO_NOT_TRACK": "True",
    **{
        k: None
        for k in (
            "MUDRAJ_MODEL",
            "MUDRAJ_WORKERS",
            "MUDRAJ_MAX_CHARS",
            "MUDRAJ_MAX_ARTICLES",
            "MUDRAJ_MAX_SENTENCES",
            "MUDRAJ_PRECISION",
            "MUDRAJ_DEVICE",
            "MUDRAJ_MAX_REQUEST_CHARS",
            "MUDRAJ_MAX_QUEUE",
            "MUDRAJ_TIMEOUT",
            "MUDRAJ_METRICS",
            "MUDRAJ_MAX_BODY_BYTES",
        )
    },
}


@pytest.fixture(scope="session")
def server(tiny_bundle, tmp_path_factory):
    pytest.importorskip("requests")
    pytest.importorskip("bentoml")
    from serving.serve import ServerProcess

    log = tmp_path_factory.mktemp("server") / "server.log"
    try:
        srv = ServerProcess(tiny_bundle, log, env=CLEAN_ENV, threads=1, ready_timeout=120)
    except RuntimeError as err:
        pytest.fail(str(err))
    print(f"\nMudraj server ready at {srv.url} after {srv.startup_s:.1f} s")
    with srv:
        yield srv
