"""A real Mudraj HTTP server (BentoML) on a free loopback port, serving the tiny test bundle.

Started once per test session, through serving/serve.py (the code path of `mudraj serve`),
and stopped at the end.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 90


@dataclass
class Server:
    url: str
    bundle: Path
    log: Path
    startup_s: float
    proc: subprocess.Popen

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    # The server was started in its own session: its process group is its pid (workers included).
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def server(tiny_bundle, tmp_path_factory) -> Server:
    requests = pytest.importorskip("requests")
    pytest.importorskip("bentoml")
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    env = dict(os.environ)
    env.update({"MUDRAJ_THREADS": "1", "OMP_NUM_THREADS": "1", "BENTOML_DO_NOT_TRACK": "True"})
    for key in ("MUDRAJ_WORKERS", "MUDRAJ_MAX_CHARS", "MUDRAJ_MAX_ARTICLES", "MUDRAJ_MAX_SENTENCES",
                "MUDRAJ_PRECISION", "MUDRAJ_DEVICE"):
        env.pop(key, None)
    cmd = [sys.executable, "-m", "serving.serve", "--model", str(tiny_bundle), "--host", "127.0.0.1",
           "--port", str(port), "--threads", "1"]
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    srv = Server(url, tiny_bundle, log, 0.0, proc)
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the server exited with {proc.returncode} before it was ready:\n{srv.log_tail()}")
            if time.monotonic() - started > READY_TIMEOUT_S:
                pytest.fail(f"the server was not ready after {READY_TIMEOUT_S} s:\n{srv.log_tail()}")
            try:
                if requests.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.2)
        srv.startup_s = time.monotonic() - started
        print(f"\nMudraj server ready at {url} after {srv.startup_s:.1f} s")
        yield srv
    finally:
        _stop(proc)
