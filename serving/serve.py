"""Start the HTTP service (`mudraj serve`): the BentoML server for serving.service:Mudraj.

Light on purpose: importing this module does not import bentoml or onnxruntime; the server
process (`python -m bentoml serve serving.service:Mudraj`) replaces this one.

    python -m serving.serve --model models/mudraj-e5-small --port 3000
"""
from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from pathlib import Path

from serving.bundle import BundleError, read_metadata

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = REPO / "models" / "mudraj-e5-small"
SERVICE = "serving.service:Mudraj"

logger = logging.getLogger("bentoml.mudraj")


def resolve_bundle(model: Path | str | None = None) -> Path:
    """The bundle to serve: `model`, else $MUDRAJ_MODEL, else models/mudraj-e5-small, else the newest runs/*/bundle."""
    given = str(model) if model is not None else os.environ.get("MUDRAJ_MODEL", "").strip()
    if given:
        path = Path(given).expanduser().resolve()
        if not path.is_dir():
            what = "--model" if model is not None else "MUDRAJ_MODEL"
            raise BundleError(f"{what}={given}: no such folder (expected a model bundle with metadata.json)")
        return path
    if DEFAULT_MODEL.is_dir():
        return DEFAULT_MODEL
    runs = [p for p in (REPO / "runs").glob("*/bundle") if (p / "metadata.json").is_file()]
    if runs:
        newest = max(runs, key=lambda p: (p / "metadata.json").stat().st_mtime)
        logger.warning("%s is missing; serving the newest trained bundle %s", DEFAULT_MODEL, newest)
        return newest
    raise BundleError(
        f"no model to serve: pass --model / set MUDRAJ_MODEL to a bundle folder, put the released bundle in "
        f"{DEFAULT_MODEL}, or train and export one (`mudraj train`, `mudraj export`: runs/<name>/bundle)"
    )


def serve_env(model: Path | str | None = None, workers: int | None = None, threads: int | None = None,
              base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment the server runs with (the service reads its settings from it)."""
    env = dict(os.environ if base is None else base)
    if model is not None:
        env["MUDRAJ_MODEL"] = str(model)
    for name, value in (("MUDRAJ_WORKERS", workers), ("MUDRAJ_THREADS", threads)):
        if value is not None:
            if int(value) < 1:
                raise ValueError(f"{name.split('_')[1].lower()} must be at least 1, got {value}")
            env[name] = str(int(value))
    env.setdefault("BENTOML_DO_NOT_TRACK", "True")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    # The service module lives in this repository: make it importable whatever the cwd.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


def serve_command(host: str = "127.0.0.1", port: int = 3000) -> list[str]:
    return [sys.executable, "-m", "bentoml", "serve", SERVICE, "--host", host, "--port", str(int(port)),
            "--working-dir", str(REPO)]


def base_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def page_url(host: str, port: int) -> str:
    return f"{base_url(host, port)}/ui"


def serve(model: Path | None, host: str = "127.0.0.1", port: int = 3000, workers: int | None = None,
          threads: int | None = None) -> None:
    """Serve `model` (a bundle folder; None: $MUDRAJ_MODEL or the default) until interrupted.

    Binds 127.0.0.1 unless told otherwise. Does not return on POSIX (the server replaces this process).
    """
    bundle = resolve_bundle(model)
    meta = read_metadata(bundle, verify=False)  # fail here, clearly, rather than in a worker
    env = serve_env(bundle, workers, threads)
    cmd = serve_command(host, port)
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


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m serving.serve", description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None, help="bundle folder (default: $MUDRAJ_MODEL or models/mudraj-e5-small)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=3000)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    try:
        serve(args.model, args.host, args.port, args.workers, args.threads)
    except (BundleError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
