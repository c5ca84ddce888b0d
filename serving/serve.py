"""Start the HTTP service: the BentoML server for serving.service:Mudraj.

Reached through the one command line, `mudraj serve` (training/cli/serve.py). Light on purpose:
importing this module imports neither bentoml nor onnxruntime; the server process
(`python -m bentoml serve serving.service:Mudraj`) replaces the calling one.

`ServerProcess` starts the same command in a child process and waits until it is ready: the
tests' server fixture and the HTTP benchmarks use it, so they exercise what a user runs.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from serving.bundle import read_metadata, resolve_bundle
from serving.defaults import HOST, PORT, REPO
from serving.errors import InputError

SERVICE = "serving.service:Mudraj"


def serve_env(
    model: Path | str | None = None,
    workers: int | None = None,
    threads: int | None = None,
    base: dict[str, str] | None = None,
) -> dict[str, str]:
    """The environment the server runs with (the service reads its settings from it)."""
    env = dict(os.environ if base is None else base)
    if model is not None:
        env["MUDRAJ_MODEL"] = str(model)
    for name, value in (("MUDRAJ_WORKERS", workers), ("MUDRAJ_THREADS", threads)):
        if value is not None:
            if int(value) < 1:
                raise InputError(f"{name.split('_')[1].lower()} must be at least 1, got {value}")
            env[name] = str(int(value))
    env.setdefault("BENTOML_DO_NOT_TRACK", "True")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    # The service module lives in this repository: make it importable whatever the cwd.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


def serve_command(host: str = HOST, port: int = PORT) -> list[str]:
    return [
        sys.executable,
        "-m",
        "bentoml",
        "serve",
        SERVICE,
        "--host",
        host,
        "--port",
        str(int(port)),
        "--working-dir",
        str(REPO),
    ]


def base_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def page_url(host: str, port: int) -> str:
    return f"{base_url(host, port)}/ui"


def check_port(host: str, port: int) -> None:
    """Refuse, in one line, a host:port the server could not listen on (busy, not this machine's,
    privileged), before BentoML is started and fails deep inside with a traceback."""
    try:
        addrs = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as err:
        raise InputError(
            f"cannot listen on {host}: {err.strerror}; give an address of this machine with --host"
        ) from None
    failure = None
    for family, kind, proto, _, addr in addrs:
        with socket.socket(family, kind, proto) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does: TIME_WAIT is not busy
            try:
                s.bind(addr)
                return
            except OSError as err:
                if err.errno == errno.EADDRINUSE:
                    raise InputError(f"port {port} on {host} is already in use; choose another with --port") from None
                failure = failure or err
    raise InputError(f"cannot listen on {host}:{port}: {failure.strerror}") from None


def serve(
    model: Path | None, host: str = HOST, port: int = PORT, workers: int | None = None, threads: int | None = None
) -> None:
    """Serve `model` (a bundle folder; None: $MUDRAJ_MODEL or the default) until interrupted.

    Binds 127.0.0.1 unless told otherwise. Does not return on POSIX (the server replaces this process).
    """
    bundle = resolve_bundle(model)
    meta = read_metadata(bundle, verify=False)  # fail here, clearly, rather than in a worker
    env = serve_env(bundle, workers, threads)
    env["BENTOML_HOME"] = server_home()
    cmd = serve_command(host, port)
    check_port(host, port)
    print(f"Mudraj: serving {meta['name']} from {bundle}", flush=True)
    print(f"Mudraj: web page {page_url(host, port)}   API docs {base_url(host, port)}/", flush=True)
    if host in ("0.0.0.0", "::"):
        print("Mudraj: listening on all interfaces; anyone who can reach this machine can use the service", flush=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os.chdir(REPO)
    if os.name == "posix":
        os.execve(sys.executable, cmd, env)
    raise SystemExit(subprocess.call(cmd, env=env))  # pragma: no cover (Windows)


SERVER_HOME_PREFIX = "mudraj-serve-"


def server_home(root: Path | None = None) -> str:
    """A BentoML home of this server's own: BentoML keeps its Prometheus multiprocess files under
    $BENTOML_HOME, and a second server sharing the default folder deletes the first one's files at start
    (the first then reports the second's counts). Named by this process's id, which the server keeps
    (execve); folders left by servers that have exited are removed here."""
    import shutil
    import tempfile

    root = Path(root or tempfile.gettempdir())
    for old in root.glob(f"{SERVER_HOME_PREFIX}*"):
        pid = old.name.removeprefix(SERVER_HOME_PREFIX)
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    home = root / f"{SERVER_HOME_PREFIX}{os.getpid()}"
    home.mkdir(mode=0o700, exist_ok=True)
    return str(home)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """`mudraj serve` in a child process on a free loopback port, ready when the constructor returns.

        with ServerProcess(bundle, log=Path("server.log"), env={"MUDRAJ_THREADS": "1"}) as srv:
            requests.post(srv.url + "/classify", json={"text": ...})

    `env` entries are added to (None: removed from) this process's environment. The server runs in a
    session of its own, so `stop()` reaches its workers too.
    """

    def __init__(
        self,
        model: Path,
        log: Path,
        env: dict[str, str | None] | None = None,
        port: int | None = None,
        workers: int | None = None,
        threads: int | None = None,
        ready_timeout: float = 180.0,
    ):
        self.port = port or free_port()
        self.url = base_url("127.0.0.1", self.port)
        self.model, self.log = Path(model), Path(log)
        child_env = dict(os.environ)
        for key, value in (env or {}).items():
            if value is None:
                child_env.pop(key, None)
            else:
                child_env[key] = value
        cmd = [
            sys.executable,
            "-m",
            "training.cli",
            "serve",
            "--model",
            str(model),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        cmd += ["--workers", str(workers)] if workers else []
        cmd += ["--threads", str(threads)] if threads else []
        started = time.monotonic()
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                cmd, cwd=REPO, env=child_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            self._wait_ready(started, ready_timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_s = time.monotonic() - started

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _wait_ready(self, started: float, timeout: float) -> None:
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"the server exited with {self.proc.returncode} before it was ready:\n{self.log_tail()}"
                )
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"the server was not ready after {timeout:.0f} s:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def signal(self, sig: int = signal.SIGTERM) -> None:
        """Send `sig` to the server's whole process group."""
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc.poll() is not None:
            return
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def __enter__(self) -> "ServerProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
