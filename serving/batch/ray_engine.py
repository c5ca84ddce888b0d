"""`mudraj predict --engine ray`: the local engine's labels, computed with Ray Data on this machine or
on a cluster, for archives of millions of articles.

The inputs are cut into shards in reading order: up to `shard_size` .txt files, JSON lines or Parquet
rows each, never spanning two JSONL or Parquet files. Ray Data hands the shards to a fixed pool of
actors, each holding one Predictor (onnxruntime only, `threads` threads); an actor reads its shard,
labels it and writes OUT/part-NNNNN.<format> atomically. The parts in name order hold the articles in
input order. OUT/_run.json records the settings and a fingerprint of each shard (its files' sizes and
modification times, its range), so the same command run again skips every part that is complete and
still matches its inputs; OUT/_SUCCESS.json is written once every part is there.

Before any labelling the driver reads every id (a JSON parse of each JSONL line, the `id` column of
Parquet files, the names of .txt files): invalid JSON and duplicate ids fail at once, naming the file
and the line. Errors found while a shard is labelled (no Arabic letters, invalid UTF-8 in a .txt) are
collected, the other shards still finish, and the run ends with the list.

On a cluster, the inputs, the bundle and OUT must be paths every node sees (a shared file system), and
every node needs mudraj installed with the same Python (`pip install 'mudraj[ray]'`)."""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Iterable

from serving.batch.io import atomic_write_bytes, atomic_write_json
from serving.batch.output import Format, parquet_bytes, render
from serving.batch.shards import SHARD_SIZE, Shard, plan_shards, read_shard
from serving.errors import InputError, UserError

RUN_FILE, DONE_FILE = "_run.json", "_SUCCESS.json"
FORMATS = (Format.jsonl, Format.csv, Format.parquet)


class ShardLabeler:
    """A Ray Data actor: one Predictor, and for each shard it is given, the labelled part, written atomically."""

    def __init__(self, bundle: str, out: str, fmt: str, precision: str, threads: int, threshold: float | None):
        from serving.predictor import Predictor

        self.predictor = Predictor(bundle, precision=precision, threads=threads)
        self.out, self.fmt, self.threshold = Path(out), Format(fmt), threshold

    def label(self, shard: Shard) -> dict:
        from serving.batch.inputs import prediction_text

        arts = read_shard(shard)
        results = self.predictor.predict_texts([prediction_text(a) for a in arts], self.threshold)
        data = parquet_bytes(arts, results) if self.fmt is Format.parquet else render(self.fmt, arts, results).encode()
        atomic_write_bytes(self.out / shard.part(self.fmt), data)
        return {
            "articles": len(arts),
            "sentences": sum(map(len, results)),
            "inserted": sum(s.label == "inserted" for r in results for s in r),
            "error": "",
        }

    def __call__(self, batch: dict) -> dict:
        rows = []
        for spec in batch["shard"]:
            shard = Shard(**{k: tuple(v) if k == "files" else v for k, v in json.loads(spec).items()})
            try:
                rows.append({"index": shard.index, **self.label(shard)})
            except (UserError, OSError) as err:  # a user's input (or an unreadable file): reported, the run goes on
                rows.append({"index": shard.index, "articles": 0, "sentences": 0, "inserted": 0, "error": str(err)})
        return {k: [r[k] for r in rows] for k in ("index", "articles", "sentences", "inserted", "error")}


def _settings(bundle: Path, fmt: Format, shard_size: int, precision: str, threshold: float | None) -> dict:
    import hashlib

    meta = (Path(bundle) / "metadata.json").read_bytes()
    return {
        "bundle": str(Path(bundle).resolve()),
        "bundle_sha256": hashlib.sha256(meta).hexdigest(),
        "format": Format(fmt).value,
        "shard_size": shard_size,
        "precision": precision,
        "threshold": threshold,
    }


def prepare(out: Path, shards: list[Shard], settings: dict) -> list[Shard]:
    """Check OUT against an earlier run, remove parts that no longer match their inputs, record this
    run; return the shards still to label."""
    out, fmt = Path(out), Format(settings["format"])
    prints = {s.part(fmt): s.fingerprint() for s in shards}
    run_file = out / RUN_FILE
    old = {}
    if run_file.exists():
        old = json.loads(run_file.read_text(encoding="utf-8"))
        changed = [k for k, v in settings.items() if old.get("settings", {}).get(k) != v]
        if changed:
            raise InputError(
                f"--out {out} holds a run with another {', '.join(changed)}; "
                "give another --out folder or remove this one"
            )
    elif out.exists() and any(out.iterdir()):
        raise InputError(f"--out {out} is not empty and holds no mudraj run; give a new or empty folder")
    for p in sorted(out.glob(f"part-*.{fmt.value}")):  # stale: inputs changed, or the shard is gone
        if old.get("parts", {}).get(p.name) != prints.get(p.name):
            p.unlink()
    (out / DONE_FILE).unlink(missing_ok=True)
    atomic_write_json(run_file, {"settings": settings, "parts": prints})
    return [s for s in shards if not (out / s.part(fmt)).exists()]


def run(
    inputs: Iterable[Path],
    out: Path,
    bundle: Path,
    fmt: Format = Format.jsonl,
    *,
    shard_size: int = SHARD_SIZE,
    workers: int | None = None,
    threads: int | None = None,
    address: str | None = None,
    precision: str = "auto",
    threshold: float | None = None,
    progress: bool = True,
) -> dict:
    """Label the inputs into OUT with Ray Data (see the module's docstring); returns the run's summary."""
    if Format(fmt) not in FORMATS:
        raise InputError(f"--engine ray writes {', '.join(f.value for f in FORMATS)}, not {Format(fmt).value}")
    t0 = time.perf_counter()
    if address is None:  # Ray on this machine: its CPUs are known before Ray starts or OUT is written
        cpus = os.cpu_count() or 1
        if workers and threads and workers * threads > cpus:
            raise InputError(
                f"--workers {workers} x --threads {threads} asks for {workers * threads} CPUs; this machine has {cpus}"
            )
        if workers and workers > cpus:
            raise InputError(f"--workers {workers} asks for more workers than this machine's {cpus} CPUs")
    shards = plan_shards(inputs, shard_size)
    if address:
        _join(address)  # before OUT is touched: an unreachable cluster leaves it as it was
    try:
        pending = prepare(out, shards, _settings(bundle, fmt, shard_size, precision, threshold))
    except BaseException:
        _leave(address)
        raise
    if not pending:
        _leave(address)
    total = sum(s.articles for s in shards)
    summary = {
        "shards": len(shards),
        "skipped": len(shards) - len(pending),
        "articles": total,
        "labelled": 0,
        "sentences": 0,
        "inserted": 0,
        "errors": [],
    }
    if pending:
        summary.update(
            _label(
                pending,
                out,
                bundle,
                fmt,
                workers,
                threads,
                address,
                precision,
                threshold,
                total - sum(s.articles for s in pending) if progress else None,
            )
        )
    summary["seconds"] = round(time.perf_counter() - t0, 3)
    if not summary["errors"]:
        # What the folder holds, over every invocation that wrote it (not only this one's share).
        summary["output"] = count_parts(Path(out), Format(fmt))
        atomic_write_json(Path(out) / DONE_FILE, summary)
    return summary


def count_parts(out: Path, fmt: Format) -> dict:
    """Articles, sentences and inserted sentences in all the parts of OUT."""
    counts = {"parts": 0, "articles": 0, "sentences": 0, "inserted": 0}
    for p in sorted(out.glob(f"part-*.{fmt.value}")):
        counts["parts"] += 1
        if fmt is Format.parquet:
            import pyarrow.parquet as pq

            records = pq.read_table(p, columns=["sentences"]).to_pylist()
        elif fmt is Format.jsonl:
            records = [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
        else:  # csv: one row per sentence
            import csv

            rows = list(csv.DictReader(p.open(encoding="utf-8", newline="")))
            counts["articles"] += len({r["id"] for r in rows})
            counts["sentences"] += len(rows)
            counts["inserted"] += sum(r["label"] == "inserted" for r in rows)
            continue
        counts["articles"] += len(records)
        counts["sentences"] += sum(len(r["sentences"]) for r in records)
        counts["inserted"] += sum(s["label"] == "inserted" for r in records for s in r["sentences"])
    return counts


JOIN_TIMEOUT_S = 15


def _leave(address: str | None) -> None:
    if address:
        import ray

        ray.shutdown()


def _join(address: str) -> None:
    """Connect to a running Ray cluster, or fail in one line within JOIN_TIMEOUT_S (Ray itself would retry
    for minutes). A no-op once connected."""
    import ray

    if ray.is_initialized():
        return
    host_port = address.removeprefix("ray://")
    if address != "auto" and ":" in host_port:
        import socket

        host, _, port = host_port.rpartition(":")
        try:
            socket.create_connection((host, int(port)), timeout=min(5, JOIN_TIMEOUT_S)).close()
        except (OSError, ValueError) as err:
            raise InputError(f"--address {address}: no Ray cluster answers there ({err})") from None
    os.environ.setdefault("RAY_gcs_rpc_server_connect_timeout_s", str(JOIN_TIMEOUT_S))
    try:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=True)
    except (ConnectionError, RuntimeError, TimeoutError) as err:  # no cluster there, or not reachable
        raise InputError(f"--address {address}: cannot join a Ray cluster ({str(err).splitlines()[0]})") from None


def _label(
    pending: list[Shard],
    out: Path,
    bundle: Path,
    fmt: Format,
    workers: int | None,
    threads: int | None,
    address: str | None,
    precision: str,
    threshold: float | None,
    done: int | None,
) -> dict:
    if not address:
        # Read by Ray when it is imported: set before the first import (see the ray.init below).
        os.environ.setdefault("RAY_AUTH_MODE", "token")
    import ray
    from tqdm import tqdm

    t0 = time.perf_counter()
    if address:
        _join(address)
    else:
        # This machine only. Ray 2.58 binds its servers (GCS, raylet, workers) to every interface and turns
        # a loopback node address into the machine's own, so it cannot be kept on 127.0.0.1; instead the
        # run's cluster requires a token that Ray generates for it (RAY_AUTH_MODE=token): a driver that
        # reaches it from elsewhere, without the token, is refused. No dashboard. docs/archive.md.
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level=logging.WARNING)
    try:
        started = time.perf_counter() - t0
        cpus = int(ray.cluster_resources().get("CPU", 1))
        asked_workers, asked_threads = workers, threads
        if asked_workers and asked_threads and asked_workers * asked_threads > cpus:
            raise InputError(
                f"--workers {asked_workers} x --threads {asked_threads} asks for "
                f"{asked_workers * asked_threads} CPUs; the Ray cluster has {cpus}"
            )
        if asked_workers and asked_workers > cpus:
            raise InputError(f"--workers {asked_workers} asks for more workers than the Ray cluster's {cpus} CPUs")
        workers = min(workers or max(1, cpus // 2), len(pending))
        threads = threads or max(1, cpus // workers)
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        ds = ray.data.from_items([{"shard": json.dumps(asdict(s))} for s in pending], override_num_blocks=len(pending))
        ds = ds.map_batches(
            ShardLabeler,
            batch_size=1,
            batch_format="numpy",
            num_cpus=threads,
            compute=ray.data.ActorPoolStrategy(size=workers),
            fn_constructor_kwargs={
                "bundle": str(Path(bundle).resolve()),
                "out": str(Path(out).resolve()),
                "fmt": Format(fmt).value,
                "precision": precision,
                "threads": threads,
                "threshold": threshold,
            },
        )
        by_index = {s.index: s for s in pending}
        result = {
            "labelled": 0,
            "sentences": 0,
            "inserted": 0,
            "errors": [],
            "workers": workers,
            "threads_per_worker": threads,
            "ray_start_s": round(started, 3),
        }
        with tqdm(
            total=sum(s.articles for s in by_index.values()) + (done or 0),
            initial=done or 0,
            desc="labelling",
            unit="article",
            disable=done is None,
        ) as bar:
            for row in ds.iter_rows():
                if row["error"]:
                    result["errors"].append(str(row["error"]))
                result["labelled"] += int(row["articles"])
                result["sentences"] += int(row["sentences"])
                result["inserted"] += int(row["inserted"])
                bar.update(by_index[int(row["index"])].articles)
        return result
    finally:
        ray.shutdown()
