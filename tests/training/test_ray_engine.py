"""`mudraj predict --engine ray`: on a local Ray, with a tiny bundle, every record equals the local
engine's; a run killed after its first part resumes without recomputing what it finished."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests._paths import REPO, TINY_DATA

pytest.importorskip("ray", reason="Ray is in the [ray] extra, which `make test` installs")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

pytestmark = pytest.mark.slow


def _texts() -> list[str]:
    return [p.read_text(encoding="utf-8") for p in sorted(TINY_DATA.glob("*.txt"))]


def _inputs(folder: Path, copies: int = 3) -> list[Path]:
    """A JSONL file, a Parquet file and a folder of .txt files, with unique ids."""
    texts = _texts()
    folder.mkdir(parents=True, exist_ok=True)
    jsonl = folder / "a.jsonl"
    jsonl.write_text(
        "".join(
            json.dumps({"id": f"j{c}-{i}", "text": t}, ensure_ascii=False) + "\n"
            for c in range(copies)
            for i, t in enumerate(texts)
        ),
        encoding="utf-8",
    )
    rows = [{"id": f"p{c}-{i}", "text": t, "outlet": "x"} for c in range(copies - 1) for i, t in enumerate(texts)]
    pq.write_table(pa.Table.from_pylist(rows), folder / "b.parquet", row_group_size=5)
    txt = folder / "txt"
    txt.mkdir(exist_ok=True)
    for i, t in enumerate(texts):
        (txt / f"t{i}.txt").write_text(t, encoding="utf-8")
    return [jsonl, folder / "b.parquet", txt]


def _cli(*args, **kw) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    return subprocess.Popen(
        [sys.executable, "-m", "training.cli", "predict", *map(str, args)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def _run(*args) -> str:
    p = _cli(*args)
    out, err = p.communicate(timeout=600)
    assert p.returncode == 0, err[-3000:]
    return err


def _kill(p: subprocess.Popen) -> None:
    """SIGKILL the driver, the Ray processes it started and their workers, and wait until all are gone:
    no actor finishes its part after this."""
    procs = [psutil.Process(p.pid)]
    procs += procs[0].children(recursive=True)
    os.killpg(p.pid, signal.SIGKILL)
    for q in procs:
        try:
            q.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=60)
    p.communicate()


def _records(out: Path) -> list[dict]:
    recs = []
    for part in sorted(out.glob("part-*")):
        if part.suffix == ".parquet":
            recs += pq.read_table(part).to_pylist()
        else:
            recs += [json.loads(line) for line in part.read_text(encoding="utf-8").splitlines()]
    return recs


def _same(ray_records: list[dict], local_records: list[dict]) -> None:
    assert [r["id"] for r in ray_records] == [r["id"] for r in local_records]  # input order, part by part
    for a, b in zip(ray_records, local_records):
        assert len(a["sentences"]) == len(b["sentences"]), a["id"]
        for s, t in zip(a["sentences"], b["sentences"]):
            assert (s["start"], s["end"], s["text"], s["label"]) == (t["start"], t["end"], t["text"], t["label"])
            assert (s.get("windows") or 1) == (t.get("windows") or 1)  # Parquet writes null where JSONL omits it
            assert abs(s["score"] - t["score"]) <= 1e-5


def test_ray_engine_gives_the_local_engines_records(tiny_bundle, tmp_path):
    inputs = _inputs(tmp_path / "in")
    _run("-m", tiny_bundle, *inputs, "-o", tmp_path / "local.jsonl", "-q")
    local = [json.loads(line) for line in (tmp_path / "local.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(local) == 3 * 8 + 2 * 8 + 8
    err = _run(
        "-m",
        tiny_bundle,
        *inputs,
        "--engine",
        "ray",
        "--workers",
        "2",
        "--threads",
        "1",
        "--shard-size",
        "5",
        "-o",
        tmp_path / "ray",
    )
    parts = sorted(p.name for p in (tmp_path / "ray").glob("part-*"))
    # 24 JSON lines in 5 parts, 16 Parquet rows in 4, 8 .txt files in 2: no part spans two files
    assert parts == [f"part-{i:05d}.jsonl" for i in range(11)]
    _same(_records(tmp_path / "ray"), local)
    done = json.loads((tmp_path / "ray" / "_SUCCESS.json").read_text())
    assert (done["articles"], done["labelled"], done["workers"], done["errors"]) == (48, 48, 2, [])
    assert "48 articles in 11 parts (0 already done)" in err
    # the same command again: nothing left to do, nothing rewritten
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "ray").glob("part-*")}
    err = _run(
        "-m",
        tiny_bundle,
        *inputs,
        "--engine",
        "ray",
        "--shard-size",
        "5",
        "--workers",
        "2",
        "--threads",
        "1",
        "-o",
        tmp_path / "ray",
    )
    assert "(11 already done)" in err
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "ray").glob("part-*")} == before


def test_a_killed_run_resumes_without_recomputing_finished_parts(tiny_bundle, tmp_path):
    texts = _texts()
    folder = tmp_path / "in"
    folder.mkdir()
    rows = [{"id": f"a{i}", "text": texts[i % len(texts)]} for i in range(240)]
    pq.write_table(pa.Table.from_pylist(rows), folder / "archive.parquet")
    out = tmp_path / "out"
    args = [
        "-m",
        tiny_bundle,
        folder,
        "--engine",
        "ray",
        "--workers",
        "1",
        "--threads",
        "1",
        "--shard-size",
        "2",
        "--format",
        "parquet",
        "-o",
        out,
    ]
    p = _cli(*args, start_new_session=True)
    deadline = time.monotonic() + 300
    while not (out / "part-00000.parquet").exists():
        assert p.poll() is None, p.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "no part written in 300 s"
        time.sleep(0.01)
    _kill(p)
    finished = {q.name: (q.stat().st_ino, q.stat().st_mtime_ns) for q in out.glob("part-*.parquet")}
    assert 1 <= len(finished) < 120, f"{len(finished)} of 120 parts: the run was not killed half-way"
    assert not (out / "_SUCCESS.json").exists()

    # Item 10: the same input typed as a relative path resumes too (fingerprints of resolved paths).
    relative = Path(os.path.relpath(folder, REPO))
    err = _run(*[relative if a == folder else a for a in args])
    assert f"({len(finished)} already done)" in err
    after = {q.name: (q.stat().st_ino, q.stat().st_mtime_ns) for q in out.glob("part-*.parquet")}
    assert len(after) == 120
    assert {k: after[k] for k in finished} == finished  # not recomputed, not rewritten
    _run("-m", tiny_bundle, folder / "archive.parquet", "-o", tmp_path / "local.jsonl", "-q")
    local = [json.loads(line) for line in (tmp_path / "local.jsonl").read_text(encoding="utf-8").splitlines()]
    _same(_records(out), local)
    done = json.loads((out / "_SUCCESS.json").read_text())
    assert done["articles"] == 240
    # Item 8: _SUCCESS.json describes the whole folder, not only what the last invocation labelled.
    assert done["labelled"] < 240 and done["output"]["articles"] == 240 and done["output"]["parts"] == 120
    assert done["output"]["sentences"] == sum(len(r["sentences"]) for r in _records(out))


def test_joins_a_running_cluster_and_names_a_missing_one(tiny_bundle, tmp_path):
    """--address auto joins the cluster that `ray start --head` runs (as on a user's head node); with
    no cluster there, one line says so."""
    import shutil

    inputs = _inputs(tmp_path / "in", copies=2)
    _run("-m", tiny_bundle, *inputs, "-o", tmp_path / "local.jsonl", "-q")
    local = [json.loads(line) for line in (tmp_path / "local.jsonl").read_text(encoding="utf-8").splitlines()]
    ray_cli = shutil.which("ray", path=str(Path(sys.executable).parent)) or "ray"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    start = subprocess.run(
        [ray_cli, "start", "--head", "--num-cpus", "2", "--include-dashboard", "false", "--disable-usage-stats"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert start.returncode == 0, start.stderr[-3000:]
    try:
        err = _run(
            "-m",
            tiny_bundle,
            *inputs,
            "--engine",
            "ray",
            "--address",
            "auto",
            "--workers",
            "1",
            "--shard-size",
            "6",
            "-o",
            tmp_path / "ray",
        )
        assert "32 articles in 7 parts" in err
        _same(_records(tmp_path / "ray"), local)
    finally:
        subprocess.run([ray_cli, "stop", "--force"], env=env, capture_output=True, timeout=120)
    p = _cli("-m", tiny_bundle, *inputs, "--engine", "ray", "--address", "auto", "-o", tmp_path / "ray2")
    _, err = p.communicate(timeout=120)
    assert p.returncode == 2 and "--address auto: cannot join a Ray cluster" in err and "Traceback" not in err
    assert not (tmp_path / "ray2").exists()  # item 11: OUT untouched until a cluster is reached


def test_a_local_run_refuses_drivers_without_its_token(tiny_bundle, tmp_path):
    """Issue 22 item 2: before, anyone who could reach the machine during a run could join its Ray cluster
    as a driver and run code. Ray binds every interface, so the run's cluster now requires a token."""
    folder = tmp_path / "in"
    folder.mkdir()
    texts = _texts()
    pq.write_table(
        pa.Table.from_pylist([{"id": f"a{i}", "text": texts[i % len(texts)]} for i in range(3000)]),
        folder / "archive.parquet",
    )
    out = tmp_path / "out"
    p = _cli(
        "-m",
        tiny_bundle,
        folder,
        "--engine",
        "ray",
        "--workers",
        "1",
        "--threads",
        "1",
        "--shard-size",
        "2",
        "-o",
        out,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not (out / "part-00000.jsonl").exists():
            assert p.poll() is None, p.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "no part written in 300 s"
            time.sleep(0.05)
        ports = []
        for q in psutil.Process(p.pid).children(recursive=True):
            try:
                if q.name() == "gcs_server":
                    ports += [c.laddr.port for c in q.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        assert ports, "the run's GCS server was not found"
        ips = [
            a.address
            for addrs in psutil.net_if_addrs().values()
            for a in addrs
            if a.family.name == "AF_INET" and not a.address.startswith("127.")
        ] or ["127.0.0.1"]
        home = tmp_path / "stranger"
        home.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")} | {"HOME": str(home)}
        joined = []
        for port in ports:
            code = f"import ray; ray.init(address='{ips[0]}:{port}'); print('JOINED')"
            r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=180)
            joined.append((port, r.returncode, "JOINED" in r.stdout, r.stderr[-300:]))
        assert all(rc != 0 and not ok for _, rc, ok, _ in joined), joined
        assert any("token" in err.lower() or "Failed to connect" in err for *_, err in joined), joined
    finally:
        _kill(p)


def test_an_unreachable_address_fails_in_seconds_and_leaves_out_alone(tiny_bundle, tmp_path):
    """Issue 22 item 11: before, minutes of GCS warnings and _run.json written first."""
    inputs = _inputs(tmp_path / "in", copies=2)
    t0 = time.monotonic()
    p = _cli("-m", tiny_bundle, *inputs, "--engine", "ray", "--address", "127.0.0.1:1", "-o", tmp_path / "out")
    _, err = p.communicate(timeout=120)
    assert p.returncode == 2 and "127.0.0.1:1" in err and "Traceback" not in err, err[-2000:]
    assert len(err.strip().splitlines()) == 1, err
    assert time.monotonic() - t0 < 30
    assert not (tmp_path / "out").exists()


def test_workers_and_threads_beyond_the_machine_are_refused_before_any_work(tiny_bundle, tmp_path):
    """Issue 22 item 12: checked before Ray starts or OUT is written, naming what was asked."""
    inputs = _inputs(tmp_path / "in", copies=2)
    asked = (os.cpu_count() or 2) + 2
    p = _cli(
        "-m", tiny_bundle, *inputs, "--engine", "ray", "--workers", str(asked), "--threads", "1", "-o", tmp_path / "out"
    )
    _, err = p.communicate(timeout=120)
    assert p.returncode == 2 and f"--workers {asked} x --threads 1" in err, err[-2000:]
    assert not (tmp_path / "out").exists()


def test_plan_checks_ids_and_inputs_before_any_work(tmp_path):
    from serving.batch.shards import plan_shards
    from serving.brackets import FormatError

    text = _texts()[0]
    (tmp_path / "a.jsonl").write_text(
        json.dumps({"id": "x", "text": text}, ensure_ascii=False)
        + "\n\n"
        + json.dumps({"id": "y", "text": text}, ensure_ascii=False)
        + "\n",
        encoding="utf-8",
    )
    (tmp_path / "y.txt").write_text(text, encoding="utf-8")
    with pytest.raises(FormatError, match=r"y.txt: duplicate id 'y' \(also .*a.jsonl:3\)"):
        plan_shards([tmp_path / "a.jsonl", tmp_path / "y.txt"], 1)
    (tmp_path / "b.jsonl").write_text('{"id": "z", "text": "نص"}\n{"id": "w", "text": \n', encoding="utf-8")
    with pytest.raises(FormatError, match=r"b.jsonl:2: invalid JSON"):
        plan_shards([tmp_path / "b.jsonl"], 10)
    with pytest.raises(ValueError, match="not standard input"):
        plan_shards(["-"], 10)
    shards = plan_shards([tmp_path / "a.jsonl"], 1)  # a blank line between the records: line numbers kept
    assert [(s.first_line, s.articles) for s in shards] == [(1, 1), (3, 1)]


def test_rerun_keeps_matching_parts_redoes_changed_inputs_and_refuses_other_settings(tmp_path):
    from serving.batch.ray_engine import RUN_FILE, prepare
    from serving.batch.shards import plan_shards

    text = _texts()[0]
    for name in ("a", "b"):
        (tmp_path / f"{name}.jsonl").write_text(
            json.dumps({"id": name, "text": text}, ensure_ascii=False) + "\n", encoding="utf-8"
        )
    inputs = [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    out = tmp_path / "out"
    settings = {
        "bundle": "m",
        "bundle_sha256": "0",
        "format": "jsonl",
        "shard_size": 1,
        "precision": "auto",
        "threshold": None,
    }
    assert [s.index for s in prepare(out, plan_shards(inputs, 1), settings)] == [0, 1]
    for i in (0, 1):
        (out / f"part-{i:05d}.jsonl").write_text("{}\n")  # as if labelled
    assert prepare(out, plan_shards(inputs, 1), settings) == []
    (tmp_path / "b.jsonl").write_text(
        json.dumps({"id": "b", "text": text + " "}, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    assert [s.index for s in prepare(out, plan_shards(inputs, 1), settings)] == [1]  # only the changed input
    assert (out / "part-00000.jsonl").exists() and not (out / "part-00001.jsonl").exists()
    with pytest.raises(ValueError, match="another threshold"):
        prepare(out, plan_shards(inputs, 1), {**settings, "threshold": 0.3})
    assert json.loads((out / RUN_FILE).read_text())["settings"] == settings  # the refused run changed nothing
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="not empty and holds no mudraj run"):
        prepare(tmp_path / "other", plan_shards(inputs, 1), settings)
