"""The HTTP service, end to end: a real BentoML server (the `server` fixture, tests/serving/conftest.py) with the tiny bundle."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml

requests = pytest.importorskip("requests")

from serving.bundle import BundleError  # noqa: E402
from serving.segment import segment  # noqa: E402

pytestmark = pytest.mark.slow

from tests._paths import REPO, service_endpoints  # noqa: E402

SAMPLE = REPO / "serving" / "static" / "sample.txt"


def sample_text() -> str:
    return SAMPLE.read_text(encoding="utf-8").strip()


def article_25() -> str:
    """A 25-sentence article: the sample three times, plus one more sentence."""
    text = "\n".join([sample_text()] * 3) + "\nوختم المتحدث بالقول إن البلدية ستعلن تفاصيل إضافية في وقت لاحق."
    assert len(segment(text)) == 25
    return text


def post(server, path: str, body=None, raw: bytes | None = None) -> requests.Response:
    if raw is not None:
        return requests.post(server.url + path, data=raw, headers={"Content-Type": "application/json"}, timeout=60)
    return requests.post(server.url + path, json=body, timeout=60)


# Dynamic int8 quantisation picks its activation scales per model batch, so a sentence's score
# moves by ~1e-4 with what else is in the batch (other articles, other requests, padding).
BATCH_TOL = 1e-3


def same_results(got: list[dict], want: list[dict], threshold: float) -> None:
    """Same sentences, scores within BATCH_TOL, same labels unless the score is that close to the threshold."""
    assert [(s["start"], s["end"], s["text"]) for s in got] == [(s["start"], s["end"], s["text"]) for s in want]
    for g, w in zip(got, want):
        assert g["score"] == pytest.approx(w["score"], abs=BATCH_TOL)
        if abs(w["score"] - threshold) > BATCH_TOL:
            assert g["label"] == w["label"]


def check_article(text: str, result: dict, threshold: float) -> None:
    sents = result["sentences"]
    assert sents, "no sentences"
    for s in sents:
        assert text[s["start"] : s["end"]] == s["text"]
        assert 0.0 <= s["score"] <= 1.0
        assert s["label"] == ("inserted" if s["score"] >= threshold else "reporting")
    assert [s["text"] for s in sents] == [sp.text for sp in segment(text)]
    assert result["inserted"] == sum(s["label"] == "inserted" for s in sents)
    starts = [s["start"] for s in sents]
    assert starts == sorted(starts)
    # Sentences longer than the model's input (64 tokens for the tiny bundle) were windowed.
    assert result["windowed"] == sorted(set(result["windowed"]))
    assert all(0 <= i < len(sents) for i in result["windowed"])


# ---------------------------------------------------------------- happy paths


def test_health_endpoints(server):
    for path in ("/healthz", "/livez", "/readyz"):
        assert requests.get(server.url + path, timeout=10).status_code == 200, path


def test_classify_article(server):
    text = sample_text()
    r = post(server, "/classify", {"text": text})
    assert r.status_code == 200, r.text
    body = r.json()
    model = body["model"]
    assert model["name"] == "mudraj-tiny"
    assert model["precision"] == "int8" and model["device"] == "cpu"
    assert body["threshold"] == model["threshold"]
    assert body["text"] is None  # no brackets: offsets refer to the text as sent
    check_article(text, body, model["threshold"])
    assert len(body["sentences"]) == 8


def test_classify_threshold_param(server):
    text = sample_text()
    scores = [s["score"] for s in post(server, "/classify", {"text": text}).json()["sentences"]]
    middle = statistics.median(scores)
    for thr in (0.0, middle, 1.0):
        body = post(server, "/classify", {"text": text, "threshold": thr}).json()
        assert body["threshold"] == thr
        assert [s["score"] for s in body["sentences"]] == scores  # the threshold changes labels only
        check_article(text, body, thr)
    assert post(server, "/classify", {"text": text, "threshold": 0}).json()["inserted"] == len(scores)


def test_classify_brackets_are_removed(server):
    text = "قال الوزير إن العمل مستمر في المشروع. [وهذا تصريح لا يصدقه أحد.] وأضاف أن الخطة جاهزة."
    body = post(server, "/classify", {"text": text}).json()
    clean = body["text"]
    assert clean == "قال الوزير إن العمل مستمر في المشروع. وهذا تصريح لا يصدقه أحد. وأضاف أن الخطة جاهزة."
    check_article(clean, body, body["threshold"])
    assert len(body["sentences"]) == 3


def test_long_sentence_is_windowed_not_truncated(server):
    long = "وقال المسؤول " + "، ".join(["إن المشروع سيكتمل قريبا في المدينة الجديدة"] * 40) + "."
    text = "أعلنت الوزارة افتتاح المشروع. " + long + " وأضاف أن الخطة جاهزة."
    body = post(server, "/classify", {"text": text}).json()
    check_article(text, body, body["threshold"])
    assert 1 in body["windowed"]
    assert body["sentences"][1]["text"] == long


def test_classify_batch(server):
    texts = {"first": sample_text(), "2": "قال الوزير إن العمل مستمر. وأضاف أن الخطة جاهزة.", "third": article_25()}
    articles = [{"id": k, "text": v} for k, v in texts.items()] + [{"id": 7, "text": "خبر قصير."}]
    r = post(server, "/classify_batch", {"articles": articles, "threshold": 0.4})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"]["name"] == "mudraj-tiny" and body["threshold"] == 0.4
    assert [res["id"] for res in body["results"]] == ["first", "2", "third", 7]
    for art, res in zip(articles, body["results"]):
        check_article(art["text"], res, 0.4)
        alone = post(server, "/classify", {"text": art["text"], "threshold": 0.4}).json()
        same_results(res["sentences"], alone["sentences"], 0.4)  # batching does not change the result
        assert res["windowed"] == alone["windowed"]


def test_classify_sentences(server):
    sentences = [s.text for s in segment(sample_text())]
    r = post(server, "/classify_sentences", {"sentences": sentences})
    assert r.status_code == 200, r.text
    out = r.json()
    assert len(out) == len(sentences)
    thr = post(server, "/model_card", {}).json()["threshold"]
    for sentence, item in zip(sentences, out):
        assert item["label"] == ("inserted" if item["score"] >= thr else "reporting")
        # Each sentence is scored alone: the same as a one-sentence article.
        alone = post(server, "/classify", {"text": sentence}).json()["sentences"]
        assert len(alone) == 1 and alone[0]["score"] == pytest.approx(item["score"], abs=BATCH_TOL)


def test_classify_sentences_concurrent_requests_are_batched_correctly(server):
    base = [s.text for s in segment(article_25())]
    requests_ = [base[i : i + 1 + i % 5] for i in range(16)]
    expected = [post(server, "/classify_sentences", {"sentences": sents}).json() for sents in requests_]
    with ThreadPoolExecutor(16) as pool:
        got = list(pool.map(lambda s: post(server, "/classify_sentences", {"sentences": s}), requests_))
    for r, exp, sents in zip(got, expected, requests_):
        assert r.status_code == 200, r.text
        out = r.json()
        assert len(out) == len(sents)
        assert [o["score"] for o in out] == pytest.approx([e["score"] for e in exp], abs=BATCH_TOL)


def test_model_card(server):
    post_card = post(server, "/model_card", {})
    assert post_card.status_code == 200
    get_card = requests.get(server.url + "/model_card", timeout=10)
    assert get_card.status_code == 200
    card = post_card.json()
    assert get_card.json() == card
    meta = json.loads((server.model / "metadata.json").read_text(encoding="utf-8"))
    assert card["name"] == meta["name"] and card["threshold"] == meta["threshold"]
    assert card["files"] == sorted(meta["files"])  # names only, no checksums
    assert card["serving"]["precision"] == "int8" and card["serving"]["threads"] == 1
    assert "metrics" in card


def test_concurrent_classify_matches_sequential(server):
    texts = [sample_text(), article_25(), "قال الوزير إن العمل مستمر. وأضاف أن الخطة جاهزة."] * 6
    texts = texts[:16]
    sequential = [post(server, "/classify", {"text": t}).json() for t in texts]
    with ThreadPoolExecutor(16) as pool:
        concurrent = list(pool.map(lambda t: post(server, "/classify", {"text": t}), texts))
    for r, seq, t in zip(concurrent, sequential, texts):
        assert r.status_code == 200, r.text
        assert r.json() == seq
        check_article(t, seq, seq["threshold"])


def test_openapi_schema_lists_the_endpoints(server):
    spec = requests.get(server.url + "/docs.json", timeout=10).json()
    for path in (*service_endpoints(), "/healthz", "/readyz"):
        assert path in spec["paths"], path
    schemas = spec["components"]["schemas"]
    # Follow the endpoint's own request schema (BentoML names the component itself).
    body = spec["paths"]["/classify"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    if "$ref" in body:
        body = schemas[body["$ref"].rsplit("/", 1)[-1]]
    text_field = body["properties"]["text"]
    assert "Arabic" in text_field["description"] and text_field["examples"]
    assert "windowed" in json.dumps(schemas)


def test_web_page_is_served(server):
    r = requests.get(server.url + "/ui", timeout=10)  # redirected to /ui/
    assert r.status_code == 200 and 'dir="rtl"' in r.text and 'lang="ar"' in r.text
    for asset in ("app.js", "style.css", "sample.txt"):
        assert requests.get(f"{server.url}/ui/{asset}", timeout=10).status_code == 200, asset
    for asset in ("", "app.js", "style.css"):  # nothing is loaded from the internet
        assert "://" not in requests.get(f"{server.url}/ui/{asset}", timeout=10).text, asset


def test_sample_article():
    text = sample_text()
    assert 6 <= len(segment(text)) <= 10
    assert "[" not in text and "]" not in text


# ---------------------------------------------------------------- errors: 4xx with JSON naming the problem

from serving.schema import MAX_CHARS  # noqa: E402  (the default: the test server sets no MUDRAJ_MAX_CHARS)

BIG = "خبر " * (MAX_CHARS // 4 + 1)  # just over the default MUDRAJ_MAX_CHARS


@pytest.mark.parametrize(
    "path, body, loc, words",
    [
        ("/classify", {"text": ""}, ["text"], "empty"),
        ("/classify", {"text": " \n\t "}, ["text"], "empty"),
        ("/classify", {"text": "Hello, world. Nothing Arabic here."}, ["text"], "Arabic"),
        ("/classify", {"text": BIG}, ["text"], str(MAX_CHARS)),
        ("/classify", {"text": "قال [الوزير إن العمل مستمر."}, ["text"], "bracket"),
        ("/classify", {"text": "قال الوزير] إن العمل مستمر."}, ["text"], "bracket"),
        ("/classify", {"text": "قال الوزير.", "threshold": 1.5}, ["threshold"], "less than or equal"),
        ("/classify", {"text": "قال الوزير.", "threshold": -0.1}, ["threshold"], "greater than or equal"),
        ("/classify", {"text": "قال الوزير.", "threshold": "high"}, ["threshold"], "number"),
        ("/classify", {"text": "قال الوزير.", "threshold": "0.5"}, ["threshold"], "number"),
        ("/classify", {"text": "قال الوزير.", "threshold": True}, ["threshold"], "number"),
        ("/classify", {"text": 42}, ["text"], "string"),
        ("/classify", {"text": ["قال الوزير."]}, ["text"], "string"),
        ("/classify", {}, ["text"], "required"),
        ("/classify", ["قال الوزير."], [], "object"),
        ("/classify_batch", {"articles": []}, ["articles"], "empty"),
        ("/classify_batch", {"articles": [{"id": i, "text": "خبر."} for i in range(65)]}, ["articles"], "64"),
        (
            "/classify_batch",
            {"articles": [{"id": 1, "text": "خبر."}, {"id": 1, "text": "خبر."}]},
            ["articles"],
            "duplicate",
        ),
        (
            "/classify_batch",
            {"articles": [{"id": "a", "text": "خبر."}, {"id": "b", "text": "news"}]},
            ["articles", 1, "text"],
            "Arabic",
        ),
        ("/classify_batch", {"articles": [{"id": "a"}]}, ["articles", 0, "text"], "required"),
        ("/classify_batch", {"articles": "خبر."}, ["articles"], "array"),
        ("/classify_batch", {"articles": [{"id": "a", "text": "خبر."}], "threshold": 2}, ["threshold"], "less than"),
        ("/compare", {"source": "", "published": "قال الوزير."}, ["source"], "empty"),
        ("/compare", {"source": "قال الوزير.", "published": "Only English here."}, ["published"], "Arabic"),
        ("/compare", {"source": BIG, "published": "قال الوزير."}, ["source"], str(MAX_CHARS)),
        ("/compare", {"source": "قال الوزير."}, ["published"], "required"),
        ("/compare", {"source": "قال الوزير.", "published": "قال.", "threshold": 2}, ["threshold"], "less than"),
        ("/compare", {"source": "قال الوزير.", "published": "قال.", "extra": 1}, ["extra"], "not permitted"),
        ("/classify_sentences", {"sentences": []}, ["sentences"], "empty"),
        ("/classify_sentences", {"sentences": ["قال الوزير.", "  "]}, ["sentences", 1], "empty"),
        ("/classify_sentences", {"sentences": "قال الوزير."}, ["sentences"], "array"),
        ("/classify_sentences", {"sentences": ["خبر."] * 1025}, ["sentences"], "1024"),
    ],
    ids=lambda v: None if not isinstance(v, str) or len(v) > 40 else v,
)
def test_bad_requests_get_400_json(server, path, body, loc, words):
    r = post(server, path, body)
    assert r.status_code == 400, r.text[:300]
    err = r.json()
    assert err["error"] and err["detail"], err
    first = err["detail"][0]
    assert first["loc"] == loc, err
    assert words.lower() in first["msg"].lower(), err


@pytest.mark.parametrize(
    "raw",
    ['{"text": "قال'.encode(), b"not json", b"\xff\xfe{}", b"", '{"text": "قال الوزير.", "threshold": NaN}'.encode()],
)
def test_invalid_json_gets_400_json(server, raw):
    r = post(server, "/classify", raw=raw)
    assert r.status_code == 400
    err = r.json()
    assert err["detail"][0]["type"] in ("json_invalid", "missing", "finite_number"), err


def test_unknown_path_is_404(server):
    r = requests.post(server.url + "/nope", json={}, timeout=10)
    assert r.status_code == 404 and "/nope" in r.json()["error"]


# ---------------------------------------------------------------- latency (reported, loosely bounded)


def test_repeated_requests_give_the_same_answer(server):
    """30 sequential /classify calls on a 25-sentence article: all answered, all identical.
    (Latency is measured in bench/http_load.py, not asserted here.)"""
    body = {"text": article_25()}
    first = post(server, "/classify", body).json()
    for _ in range(30):
        r = post(server, "/classify", body)
        assert r.status_code == 200 and r.json()["sentences"] == first["sentences"]
    assert len(first["sentences"]) == 25


# ---------------------------------------------------------------- process hygiene and packaging


def test_service_imports_no_torch_or_transformers(tiny_bundle):
    code = (
        "import sys, serving.service; bad = [m for m in ('torch', 'transformers') if m in sys.modules]; "
        "assert not bad, bad; print('ok')"
    )
    env = {**os.environ, "MUDRAJ_MODEL": str(tiny_bundle), "BENTOML_DO_NOT_TRACK": "True"}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-2000:]


def test_serve_helpers(tiny_bundle, tmp_path, monkeypatch):
    from serving import serve as srv

    env = srv.serve_env(tiny_bundle, workers=2, threads=1, base={})
    assert env["MUDRAJ_MODEL"] == str(tiny_bundle) and env["MUDRAJ_WORKERS"] == "2" and env["MUDRAJ_THREADS"] == "1"
    assert str(REPO) in env["PYTHONPATH"].split(os.pathsep)
    cmd = srv.serve_command("127.0.0.1", 3123)
    assert cmd[1:5] == ["-m", "bentoml", "serve", "serving.service:Mudraj"]
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1" and cmd[cmd.index("--port") + 1] == "3123"
    assert srv.page_url("127.0.0.1", 3123) == "http://127.0.0.1:3123/ui"
    with pytest.raises(ValueError):
        srv.serve_env(tiny_bundle, workers=0, base={})
    # A bad model path fails at once, clearly, before any server starts.
    with pytest.raises(BundleError, match="no such folder"):
        srv.serve(tmp_path / "missing", port=3123)
    monkeypatch.setenv("MUDRAJ_MODEL", str(tiny_bundle))
    assert srv.resolve_bundle() == tiny_bundle.resolve()
    monkeypatch.setenv("MUDRAJ_MODEL", str(tmp_path / "nope"))
    with pytest.raises(BundleError, match="MUDRAJ_MODEL"):
        srv.resolve_bundle()


@pytest.mark.parametrize("variant", ["cpu", "gpu"])
def test_bentoml_build_offline(variant, tiny_bundle, tmp_path):
    """bentofile.yaml (and bentofile-gpu.yaml, built as docs/archive.md says) builds a Bento with no
    registry access (packages listed, not locked); the GPU variant records the GPU for schedulers,
    installs onnxruntime-gpu and starts from a CUDA image."""
    bentofile = "bentofile.yaml" if variant == "cpu" else "bentofile-gpu.yaml"
    src = tmp_path / "src"
    (src / "models").mkdir(parents=True)
    shutil.copy(REPO / bentofile, src)
    shutil.copytree(REPO / "serving", src / "serving", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(tiny_bundle, src / "models" / "mudraj-e5-small")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MUDRAJ_")},
        "BENTOML_HOME": str(tmp_path / "home"),
        "BENTOML_DO_NOT_TRACK": "True",
        "PIP_NO_INDEX": "1",
        **({"MUDRAJ_GPUS": "1"} if variant == "gpu" else {}),
    }
    out = subprocess.run(
        [sys.executable, "-m", "bentoml", "build", "-f", bentofile, "-o", "tag"],
        cwd=src,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    bento = next((tmp_path / "home" / "bentos").glob("*/*/bento.yaml")).parent
    for rel in ("src/serving/service.py", "src/serving/static/index.html", "src/models/mudraj-e5-small/metadata.json"):
        assert (bento / rel).is_file(), rel
    reqs = (bento / "env" / "python" / "requirements.txt").read_text().split()
    assert "torch" not in " ".join(reqs) and "transformers" not in " ".join(reqs)
    meta = yaml.safe_load((bento / "bento.yaml").read_text())
    config = meta["services"][0]["config"]
    dockerfile = (bento / "env" / "docker" / "Dockerfile").read_text()
    if variant == "cpu":
        assert "onnxruntime>=1.20" in reqs and not any("onnxruntime-gpu" in r for r in reqs)
        assert "resources" not in config and "nvidia/cuda" not in dockerfile
    else:
        assert "onnxruntime-gpu>=1.20" in reqs and "onnxruntime>=1.20" not in reqs
        assert config["resources"] == {"gpu": 1} and meta["name"] == "mudraj-gpu"
        assert "FROM nvidia/cuda:12.8" in dockerfile
        assert {e["name"]: e["value"] for e in meta["envs"]}["MUDRAJ_DEVICE"] == "cuda"


def test_oversized_request_body_is_refused_before_parsing(server):
    raw = b'{"text": "' + "خبر ".encode() * (9 * 2**20 // 7) + b'"}'  # about 9 MB, over the 8 MiB default
    r = post(server, "/classify", raw=raw)
    assert r.status_code == 413 and "MUDRAJ_MAX_BODY_BYTES" in r.json()["error"]
    assert post(server, "/classify", {"text": "قال الوزير إن العمل مستمر."}).status_code == 200  # still serving


@pytest.mark.parametrize(
    "p, thr",
    [(0.4752679, 0.475268), (0.4752681, 0.475268), (0.49999996, 0.5), (0.5, 0.5), (1e-9, 0.0), (0.9999999, 1.0)],
)
def test_label_is_decided_on_the_score_the_client_sees(p, thr):
    # A client re-applying 'score >= threshold' to the returned score must get the returned label,
    # also when the raw probability sits within rounding of the threshold.
    from serving.predictor import decide

    label, score = decide(p, thr)
    assert score == round(p, 6)
    assert label == ("inserted" if score >= thr else "reporting")
