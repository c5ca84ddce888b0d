"""SIGTERM while requests are in flight: every accepted request is answered, then the server exits."""
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import free_port  # tests/serving/conftest.py

requests = pytest.importorskip("requests")
pytestmark = pytest.mark.slow
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_sigterm_drains_in_flight_requests(tiny_bundle, tmp_path):
    port = free_port()
    env = dict(os.environ, MUDRAJ_THREADS="1", OMP_NUM_THREADS="1", MUDRAJ_MAX_CHARS="3000000",
               BENTOML_DO_NOT_TRACK="True")
    log = open(tmp_path / "server.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "serving.serve", "--model", str(tiny_bundle), "--port", str(port)],
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if requests.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        # Long articles, so that requests are still being worked on when SIGTERM arrives.
        text = " ".join(f"قال المتحدث إن العمل في المرحلة رقم {i} مستمر." for i in range(12000))
        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(requests.post, f"{url}/classify", json={"text": text}, timeout=300) for _ in range(4)]
            time.sleep(1.5)
            assert not all(f.done() for f in futures), "requests finished before SIGTERM: make them longer"
            os.killpg(proc.pid, signal.SIGTERM)
            answers = [f.result() for f in futures]
        assert [a.status_code for a in answers] == [200] * 4
        assert all(len(a.json()["sentences"]) == 12000 for a in answers)
        assert proc.wait(timeout=60) is not None
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{url}/readyz", timeout=2)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
