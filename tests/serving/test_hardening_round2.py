"""Issue 22, the second hardening round: each test names the item it covers and failed before the fix.

The HTTP items share one server with a small queue and a short body timeout (`round2_server`)."""

from __future__ import annotations

import json
import socket
import time

import pytest

from tests.serving.conftest import CLEAN_ENV

requests = pytest.importorskip("requests")

ARTICLE = "أعلنت وزارة الصحة اليوم افتتاح مستشفى جديد في المدينة. ويأتي ذلك في وقت يعاني فيه القطاع من إهمال مزمن."


@pytest.fixture(scope="module")
def round2_server(tiny_bundle, tmp_path_factory):
    from serving.serve import ServerProcess

    env = {**CLEAN_ENV, "MUDRAJ_MAX_QUEUE": "2", "MUDRAJ_TIMEOUT": "30", "MUDRAJ_BODY_TIMEOUT": "3"}
    log = tmp_path_factory.mktemp("round2") / "server.log"
    with ServerProcess(tiny_bundle, log, env=env, threads=1, ready_timeout=120) as srv:
        yield srv


def _idle(port: int, length: int = 100, sent: bytes = b"") -> socket.socket:
    """A connection that sends POST /classify headers promising `length` bytes, then only `sent`."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(
        b"POST /classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {length}\r\n\r\n".encode()
        + sent
    )
    return s


@pytest.mark.slow
def test_item1_idle_connections_take_no_queue_place_and_get_408(round2_server):
    idle = [_idle(round2_server.port), _idle(round2_server.port, sent=b'{"text": "')]  # as many as the queue holds
    try:
        time.sleep(0.5)
        ok = requests.post(round2_server.url + "/classify", json={"text": ARTICLE}, timeout=30)
        assert ok.status_code == 200, ok.text[:300]  # before the fix: 503, the queue held by idle sockets
        for s in idle:
            answer = b""
            while b"MUDRAJ_BODY_TIMEOUT" not in answer:  # headers and body may come in two segments
                chunk = s.recv(4096)
                if not chunk:
                    break
                answer += chunk
            answer = answer.decode("utf-8", "replace")
            assert answer.startswith("HTTP/1.1 408"), answer[:200]
            assert "MUDRAJ_BODY_TIMEOUT" in answer and "computation" not in answer
    finally:
        for s in idle:
            s.close()


@pytest.mark.slow
def test_item3_field_names_cannot_forge_or_flood_log_lines(round2_server):
    forged = "x\n2026-01-01 00:00:00 [ERROR] forged line"
    huge = "y" * 200_000
    for name in (forged, huge):
        r = requests.post(round2_server.url + "/classify", json={"text": ARTICLE, name: 1}, timeout=30)
        assert r.status_code == 400
        body = r.json()
        assert len(r.content) < 4000, len(r.content)  # not echoed whole
        assert "url" not in json.dumps(body) and "errors.pydantic.dev" not in r.text
        assert body["error"].startswith("1 validation error for")
    two = requests.post(round2_server.url + "/classify", json={"text": ARTICLE, "a": 1, "b": 2}, timeout=30)
    assert two.json()["error"].startswith("2 validation errors for")
    time.sleep(0.5)
    log = round2_server.log.read_text(errors="replace")
    assert "\n2026-01-01 00:00:00 [ERROR] forged line" not in log
    assert huge not in log and len(log) < 200_000


def test_item14_the_format_follows_the_output_suffix_and_contradictions_are_refused(tiny_bundle, tmp_path):
    from typer.testing import CliRunner

    from training.cli import app

    art = tmp_path / "a.txt"
    art.write_text(ARTICLE, encoding="utf-8")
    run = CliRunner().invoke
    assert run(app, ["predict", "-m", str(tiny_bundle), str(art), "-o", str(tmp_path / "p.csv")]).exit_code == 0
    assert (tmp_path / "p.csv").read_text(encoding="utf-8").startswith("id,index,start,end,label,score")
    bad = run(app, ["predict", "-m", str(tiny_bundle), str(art), "-o", str(tmp_path / "p.csv"), "--format", "jsonl"])
    assert bad.exit_code == 2 and "contradicts" in bad.output
    missing = run(app, ["predict", "-m", str(tiny_bundle), str(art), "-o", str(tmp_path / "no" / "dir" / "x.jsonl")])
    assert missing.exit_code == 2 and "does not exist" in missing.output and not (tmp_path / "no").exists()
    res = run(app, ["compare", "-m", str(tiny_bundle), str(art), str(art), "-o", str(tmp_path / "c.jsonl")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "c.jsonl").read_text(encoding="utf-8"))["summary"]["kept"] == 2
    csv_out = run(app, ["compare", "-m", str(tiny_bundle), str(art), str(art), "-o", str(tmp_path / "t.csv")])
    assert csv_out.exit_code == 2 and "jsonl or table" in csv_out.output


def test_item18_legacy_encodings_and_suffixes_get_clear_answers(tmp_path):
    from serving.batch.inputs import read_articles
    from serving.brackets import FormatError

    (tmp_path / "a.txt").write_bytes(ARTICLE.encode("cp1256"))
    (tmp_path / "b.txt").write_bytes(ARTICLE.encode("utf-16"))
    with pytest.raises(FormatError, match="iconv -f cp1256"):
        list(read_articles([tmp_path / "a.txt"]))
    with pytest.raises(FormatError, match="UTF-16"):
        list(read_articles([tmp_path / "b.txt"]))
    upper = tmp_path / "upper"
    upper.mkdir()
    (upper / "X.TXT").write_text(ARTICLE, encoding="utf-8")
    assert [a.id for a in read_articles([upper])] == ["X"]
    (tmp_path / "t.csv").write_text("id,text\n1,نص\n", encoding="utf-8")
    with pytest.raises(FormatError, match="not an input Mudraj reads"):
        list(read_articles([tmp_path / "t.csv"]))


def test_item19_csv_cells_never_start_a_formula(tiny_bundle):
    import csv
    import io

    from serving.batch.inputs import RawArticle
    from serving.batch.output import Format, render
    from serving.predictor import SentencePrediction

    arts = [RawArticle('=HYPERLINK("x")', "t", text="")]
    res = [
        [
            SentencePrediction(0, 5, "=1+1 ثم", "reporting", 0.1),
            SentencePrediction(6, 9, "@SUM(A1)", "inserted", 0.9),
            SentencePrediction(10, 12, "-2 نص", "reporting", 0.2),
            SentencePrediction(13, 15, "+نص", "reporting", 0.2),
        ]
    ]
    rows = list(csv.reader(io.StringIO(render(Format.csv, arts, res))))[1:]
    assert all(
        not row[0].startswith(("=", "+", "-", "@")) and not row[10].startswith(("=", "+", "-", "@")) for row in rows
    )
    assert rows[0][10] == "'=1+1 ثم"  # kept readable, not run


def _classify_count(url: str) -> float:
    import re

    text = requests.get(url + "/metrics", timeout=30).text
    rows = re.findall(r"^bentoml_service_request_total\{([^}]*)\}\s+(\S+)", text, re.M)
    return sum(
        float(v) for labels, v in rows if 'endpoint="/classify"' in labels and 'http_response_code="200"' in labels
    )


@pytest.mark.slow
def test_item4_a_second_server_leaves_the_first_ones_metrics_alone(round2_server, tiny_bundle, tmp_path):
    from serving.serve import ServerProcess

    before = _classify_count(round2_server.url)
    with ServerProcess(tiny_bundle, tmp_path / "b.log", env=CLEAN_ENV, threads=1, ready_timeout=120) as other:
        for _ in range(2):
            assert requests.post(round2_server.url + "/classify", json={"text": ARTICLE}, timeout=30).status_code == 200
        assert requests.post(other.url + "/classify", json={"text": ARTICLE}, timeout=30).status_code == 200
        assert _classify_count(other.url) == 1
        assert _classify_count(round2_server.url) == before + 2  # before: the second's count, or its own lost


PERSIAN = (
    "وزارت بهداشت ایران روز گذشته اعلام کرد که برنامه جدید واکسیناسیون کودکان از هفته آینده در همه "
    "استان‌ها آغاز می‌شود. این برنامه با هدف پیشگیری از گسترش بیماری‌های واگیر اجرا خواهد شد."
)
URDU = (
    "وزیر اعظم نے آج کہا کہ حکومت ملک میں تعلیم کے شعبے کو بہتر بنانے کے لیے نئے منصوبے شروع کرے گی۔ "
    "انہوں نے کہا کہ اسکولوں میں اساتذہ کی کمی پوری کی جائے گی۔"
)


def test_item17_one_language_rule_for_the_cli_and_the_service():
    from serving.batch.inputs import language_problem
    from serving.segment import segment

    assert language_problem(ARTICLE) is None
    assert language_problem("قال الرئيس إن شركة گوگل ستفتح مكتبا في المدينة قريبا.") is None  # a foreign name
    assert "Persian or Urdu" in language_problem(PERSIAN)
    assert "Persian or Urdu" in language_problem(URDU)
    assert "mostly not Arabic" in language_problem("The minister said on Monday that talks would go on. قال.")
    assert language_problem("ـــــــ") is not None  # tatweel only: no letter
    assert len(segment(URDU)) == 2  # the Urdu full stop ends a sentence


@pytest.mark.slow
@pytest.mark.parametrize(
    "path,body",
    [
        ("/classify", {"text": PERSIAN}),
        ("/classify_sentences", {"sentences": ["English."]}),
        ("/classify", {"text": "ــــــ"}),
        ("/classify", {"text": ARTICLE + "\u0000"}),
    ],
)
def test_item17_the_service_refuses_what_the_cli_refuses(round2_server, path, body):
    r = requests.post(round2_server.url + path, json=body, timeout=30)
    assert r.status_code == 400, r.text[:300]


def test_item17_predict_refuses_persian_in_one_line(tiny_bundle, tmp_path):
    from typer.testing import CliRunner

    from training.cli import app

    f = tmp_path / "fa.txt"
    f.write_text(PERSIAN, encoding="utf-8")
    res = CliRunner().invoke(app, ["predict", "-m", str(tiny_bundle), str(f)])
    assert res.exit_code == 2 and "Persian or Urdu" in res.output and len(res.output.strip().splitlines()) == 1


@pytest.mark.slow
def test_item20_duplicate_keys_two_framings_and_plain_text_bodies_are_refused(round2_server):
    url = round2_server.url + "/classify"
    dup = requests.post(
        url,
        data=json.dumps({"text": ARTICLE})[:-1] + ', "text": "نص آخر بالعربية."}',
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert dup.status_code == 400 and "repeats the key 'text'" in dup.json()["error"]
    plain = requests.post(url, data=json.dumps({"text": ARTICLE}), headers={"Content-Type": "text/plain"}, timeout=30)
    assert plain.status_code == 415 and "application/json" in plain.json()["error"]
    body = json.dumps({"text": ARTICLE}).encode()
    with socket.create_connection(("127.0.0.1", round2_server.port), timeout=30) as s:
        s.sendall(
            b"POST /classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
            + f"{len(body):x}\r\n".encode()
            + body
            + b"\r\n0\r\n\r\n"
        )
        answer = s.recv(4096).decode("utf-8", "replace")
    assert answer.split("\r\n")[0].split(" ")[1] == "400", answer[:300]
    assert requests.post(url, json={"text": ARTICLE}, timeout=30).status_code == 200  # a proper request still works


@pytest.mark.slow
def test_item20_the_page_is_sent_with_security_headers(round2_server):
    r = requests.get(round2_server.url + "/ui/", timeout=30)
    assert r.status_code == 200
    assert "frame-ancestors 'none'" in r.headers.get("content-security-policy", "")
    assert r.headers.get("x-content-type-options") == "nosniff"


def test_item21_counts_read_as_english_and_long_runs_report_progress_off_a_terminal(tiny_bundle, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import training.cli.predict as P
    from training.cli import app

    one = tmp_path / "one.txt"
    one.write_text(ARTICLE, encoding="utf-8")
    res = CliRunner().invoke(app, ["predict", "-m", str(tiny_bundle), str(one), "-o", str(tmp_path / "o.jsonl")])
    assert res.exit_code == 0 and "1 article, 2 sentences" in res.output, res.output
    many = tmp_path / "many.jsonl"
    many.write_text(
        "".join(json.dumps({"id": i, "text": ARTICLE}, ensure_ascii=False) + "\n" for i in range(7)), encoding="utf-8"
    )
    monkeypatch.setattr(P, "PROGRESS_EVERY", 3)
    res = CliRunner().invoke(app, ["predict", "-m", str(tiny_bundle), str(many), "-o", str(tmp_path / "m.jsonl")])
    assert res.exit_code == 0
    assert "labelled 3 of 7 articles" in res.output and "labelled 6 of 7 articles" in res.output


@pytest.mark.slow
def test_item21_favicon_is_no_error(round2_server):
    assert requests.get(round2_server.url + "/favicon.ico", timeout=30).status_code == 204


def test_item5_a_hard_wrapped_article_is_segmented_and_compared_as_the_unwrapped_one(tiny_bundle):
    import textwrap

    from serving.compare import compare, summary
    from serving.predictor import Predictor
    from serving.segment import segment
    from tests._paths import TINY_DATA

    text = "\n\n".join(
        p.replace("[", "").replace("]", "")
        for p in (TINY_DATA / "water-plant.txt").read_text(encoding="utf-8").split("\n\n")
    )
    wrapped = "\n\n".join(textwrap.fill(p, 70) for p in text.split("\n\n"))
    assert "\n" in wrapped.split("\n\n")[1]  # really wrapped inside a paragraph
    flat = lambda spans, t: [" ".join(t[s.start : s.end].split()) for s in spans]  # noqa: E731
    assert flat(segment(wrapped), wrapped) == flat(segment(text), text)
    p = Predictor(tiny_bundle)
    a, b = p.predict_texts([text])[0], p.predict_texts([wrapped])[0]
    assert [round(x.score, 4) for x in a] == [round(x.score, 4) for x in b]  # the same sentences, the same scores
    assert all(wrapped[x.start : x.end] == x.text for x in b)  # offsets still refer to the submitted text
    counts = summary(compare(wrapped, text, p))
    assert counts["added"] == 0 and counts["dropped"] == 0, counts


@pytest.mark.slow
def test_item16_each_side_of_a_comparison_has_its_own_limit(round2_server):
    from serving.schema import MAX_REQUEST_CHARS

    side = ("قال المتحدث إن العمل في المشروع مستمر حتى نهاية العام. " * 200)[: int(MAX_REQUEST_CHARS * 0.6)]
    ok = requests.post(round2_server.url + "/compare", json={"source": side, "published": side}, timeout=120)
    assert ok.status_code == 200, ok.text[:300]  # before: 400, the two sides counted together
    big = side * 2
    bad = requests.post(round2_server.url + "/compare", json={"source": big, "published": side}, timeout=120)
    assert bad.status_code == 400 and "source" in bad.text


MERGE_SRC = (
    "أعلن الوزير اليوم إطلاق برنامج جديد لدعم المزارعين في المناطق الريفية. وسيشمل البرنامج تقديم قروض "
    "ميسرة للشباب الراغبين في العمل الزراعي. وقال المتحدث إن التنفيذ سيبدأ الشهر المقبل."
)
MERGE_PUB = MERGE_SRC.replace("الريفية. وسيشمل", "الريفية، وسيشمل")


def test_item6_a_merge_and_a_split_are_edits_of_the_sentences_they_join():
    from serving.compare import align, summary

    rows = align(MERGE_SRC, MERGE_PUB)
    assert summary(rows) == {"kept": 1, "edited": 1, "added": 0, "dropped": 0}
    (edit,) = [r for r in rows if r.status == "edited"]
    assert edit.source.text.startswith("أعلن") and edit.source.text.endswith("الزراعي.")  # both source sentences
    assert [(c.op, c.source_text, c.published_text) for c in edit.changes] == [("replace", ".", "،")]
    rows = align(MERGE_PUB, MERGE_SRC)  # the other way round: one sentence cut in two
    assert summary(rows) == {"kept": 1, "edited": 2, "added": 0, "dropped": 0}
    assert all(r.published.text[0] not in "،,؛;:" for r in rows if r.status == "added")


def test_item6_an_added_clause_never_starts_with_a_comma():
    from serving.compare import align

    src = "أعلن الوزير اليوم إطلاق برنامج جديد لدعم المزارعين في المناطق الريفية."
    pub = src[:-1] + "، في خطوة يرى مراقبون أنها تأخرت كثيرا عن موعدها المنتظر."
    added = [r for r in align(src, pub) if r.status == "added"]
    assert added and all(r.published.text[0] not in "،,؛;: " for r in added)


@pytest.mark.slow
def test_item13_the_cli_and_the_endpoint_give_one_record_and_both_take_floor(round2_server, tiny_bundle, tmp_path):
    from typer.testing import CliRunner

    from training.cli import app

    (tmp_path / "s.txt").write_text(MERGE_SRC, encoding="utf-8")
    (tmp_path / "p.txt").write_text(MERGE_PUB, encoding="utf-8")
    res = CliRunner().invoke(
        app,
        [
            "compare",
            "-m",
            str(tiny_bundle),
            str(tmp_path / "s.txt"),
            str(tmp_path / "p.txt"),
            "--format",
            "jsonl",
            "--floor",
            "60",
        ],
    )
    assert res.exit_code == 0, res.output
    cli = json.loads(res.stdout)
    api = requests.post(
        round2_server.url + "/compare", json={"source": MERGE_SRC, "published": MERGE_PUB, "floor": 60.0}, timeout=60
    )
    assert api.status_code == 200, api.text[:300]  # before: floor was refused
    api = api.json()
    assert set(cli) == set(api) and cli["summary"] == api["summary"] and cli["threshold"] == api["threshold"]
    same = lambda rows: [{k: v for k, v in s.items() if k != "score" and v is not None} for s in rows]  # noqa: E731
    assert same(cli["published"]) == same(api["published"]) and cli["dropped"] == api["dropped"]


def test_item15_help_texts_say_what_the_commands_take():
    from typer.testing import CliRunner

    from training.cli import app

    run = lambda *a: CliRunner().invoke(app, [*a, "--help"], terminal_width=200).output  # noqa: E731
    compare = run("compare")
    assert "jsonl|table" in compare and "csv" not in compare and "parquet" not in compare
    assert "[paragraph.slot]" in run("corpus", "show")
    transfer = run("transfer")
    assert "the training config each" in transfer  # before: --config had no description


def test_item21_persian_keyboard_letters_read_as_arabic_ones():
    """ی (U+06CC) and ک (U+06A9), typed on a Persian keyboard inside Arabic text, are the model's ي and ك."""
    from serving.normalize import normalize

    steps = ["whitespace", "punctuation", "orthography"]
    assert normalize("قال المتحدث إن الکتاب فی المکتبة.", steps) == normalize(
        "قال المتحدث إن الكتاب في المكتبة.", steps
    )


def test_item21_parquet_sentences_carry_no_field_jsonl_lacks(tiny_bundle, tmp_path):
    """A Parquet sentence, its nulls dropped, is the JSONL sentence: no `windows: 1` JSONL does not write."""
    pq = pytest.importorskip("pyarrow.parquet")
    import json

    from typer.testing import CliRunner

    from training.cli import app

    art = tmp_path / "a.txt"
    art.write_text("قال الوزير إن العمل مستمر في المشروع. ويأمل الجميع أن ينجح المشروع قريبا.", encoding="utf-8")
    j = CliRunner().invoke(app, ["predict", "-m", str(tiny_bundle), str(art), "-o", str(tmp_path / "o.jsonl")])
    p = CliRunner().invoke(app, ["predict", "-m", str(tiny_bundle), str(art), "-o", str(tmp_path / "o.parquet")])
    assert j.exit_code == 0 and p.exit_code == 0, (j.output, p.output)
    want = json.loads((tmp_path / "o.jsonl").read_text(encoding="utf-8"))["sentences"]
    got = pq.read_table(tmp_path / "o.parquet").to_pylist()[0]["sentences"]
    assert [{k: v for k, v in s.items() if v is not None} for s in got] == want
