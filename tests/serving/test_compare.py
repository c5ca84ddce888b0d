"""Compare mode: a published text against its source. Every inserted sentence of the built corpus is
found as `added` and nothing else moves; edits are reported with their differences; the CLI and
/compare give the same answer with offsets into each text."""

import json

import pytest

from serving.brackets import offsets_text, source_and_published
from serving.compare import align, summary

SOURCE = (
    "قال وزير النقل إن مشروع القطار سيكتمل العام المقبل بعد تأخر استمر عامين. "
    "وأضاف في تصريح للصحفيين أن نسبة الإنجاز بلغت 80 في المئة حتى الآن.\n\n"
    "وأوضح أن المرحلة الأولى تشمل خمس محطات في شمال المدينة. "
    "وذكر بيان للوزارة أن التكلفة بلغت ملياري ريال."
)
ADDED = "ويأتي هذا المشروع ضمن خطة أوسع لتطوير شبكة النقل العام في المدن الكبرى."


def statuses(rows):
    return [(r.status, (r.published or r.source).text) for r in rows]


def test_an_inserted_sentence_is_added_and_the_rest_kept_with_offsets_into_each_text():
    published = SOURCE.replace("حتى الآن.", "حتى الآن. " + ADDED)
    rows = align(SOURCE, published)
    assert summary(rows) == {"kept": 4, "edited": 0, "added": 1, "dropped": 0}
    added = [r for r in rows if r.status == "added"]
    assert [r.published.text for r in added] == [ADDED]
    for r in rows:
        assert published[r.published.start : r.published.end] == r.published.text
        if r.source:
            assert SOURCE[r.source.start : r.source.end] == r.source.text


@pytest.mark.parametrize(
    "old, new",
    [
        ("80 في", "85 في"),  # a changed number
        ("وأضاف في", "وزعم في"),  # a changed attribution verb
    ],
)
def test_an_edited_sentence_reports_its_changes(old, new):
    published = SOURCE.replace(old, new)
    rows = align(SOURCE, published)
    assert summary(rows) == {"kept": 3, "edited": 1, "added": 0, "dropped": 0}
    (edited,) = [r for r in rows if r.status == "edited"]
    assert 70 <= edited.similarity < 100
    # The changes sit inside the words that changed, on both sides.
    at_src, at_pub = SOURCE.index(old), published.index(new)
    assert edited.changes and all(
        at_src <= c.source[0] <= c.source[1] <= at_src + len(old)
        and at_pub <= c.published[0] <= c.published[1] <= at_pub + len(new)
        for c in edited.changes
    )
    for c in edited.changes:  # offsets into each text
        assert published[c.published[0] : c.published[1]] == c.published_text
        assert SOURCE[c.source[0] : c.source[1]] == c.source_text
    # Applying the changes to the source sentence gives the published one.
    src = edited.source
    text, at = [], src.start
    for c in edited.changes:
        text.append(SOURCE[at : c.source[0]] + c.published_text)
        at = c.source[1]
    text.append(SOURCE[at : src.end])
    assert "".join(text) == edited.published.text


def test_reordered_paragraphs_dropped_sentences_and_repeats():
    first, second = SOURCE.split("\n\n")
    rows = align(SOURCE, second + "\n\n" + first)
    assert summary(rows) == {"kept": 4, "edited": 0, "added": 0, "dropped": 0}
    rows = align(SOURCE, first)  # the second paragraph left out
    assert [s for s, _ in statuses(rows)] == ["kept", "kept", "dropped", "dropped"]
    # A sentence that occurs twice in both texts is matched in reading order.
    twice = "قال الوزير إن العمل مستمر. وأكد المدير ذلك. قال الوزير إن العمل مستمر."
    rows = align(twice, twice)
    assert [(r.published.start, r.source.start) for r in rows] == [(0, 0), (27, 27), (44, 44)]


def test_a_clause_glued_on_without_a_full_stop_is_added():
    for stop, counts in (("", {"kept": 4, "edited": 0}), (".", {"kept": 3, "edited": 1})):
        source = SOURCE.replace("حتى الآن.", "حتى الآن" + stop)  # the end of a paragraph
        published = SOURCE.replace("حتى الآن.", "حتى الآن " + ADDED)
        rows = align(source, published)
        assert summary(rows) == {**counts, "added": 1, "dropped": 0}
        (added,) = [r for r in rows if r.status == "added"]
        assert added.published.text == ADDED and published[added.published.start : added.published.end] == ADDED
        if stop:  # the source sentence lost its full stop: an edit, and it says so
            (edited,) = [r for r in rows if r.status == "edited"]
            assert [(c.op, c.source_text, c.published_text) for c in edited.changes] == [("delete", ".", "")]


def test_brackets_and_a_byte_order_mark_are_removed_first():
    assert offsets_text("\ufeffقال [الوزير] إن") == "قال الوزير إن"
    src, pub, spans = source_and_published("قال الوزير إن العمل مستمر. [" + ADDED + "] وختم بالشكر.")
    assert src == "قال الوزير إن العمل مستمر. وختم بالشكر."
    assert [pub[s:e] for s, e in spans] == [ADDED]


def test_every_insertion_of_the_dev_split_is_found_and_nothing_else(built_corpus):
    edge = " \"'«»“”"
    n = 0
    for line in (built_corpus / "dev.jsonl").read_text(encoding="utf-8").splitlines():
        art = json.loads(line)
        src, pub, spans = source_and_published(art["text"], art["id"])
        rows = align(src, pub)
        added = sorted(r.published.text.strip(edge) for r in rows if r.status == "added")
        assert added == sorted(pub[s:e].strip(edge) for s, e in spans), art["id"]
        assert {r.status for r in rows} <= {"kept", "added"}, art["id"]
        n += len(spans)
    assert n > 400


def test_cli_compare_writes_jsonl_and_a_table(tiny_bundle, tmp_path):
    from typer.testing import CliRunner

    from training.cli import app

    (tmp_path / "src.txt").write_text(SOURCE, encoding="utf-8")
    published = SOURCE.replace("حتى الآن.", "حتى الآن. " + ADDED).replace("80 في", "85 في")
    (tmp_path / "pub.txt").write_text(published, encoding="utf-8")
    runner = CliRunner()
    res = runner.invoke(
        app,
        [
            "compare",
            str(tmp_path / "src.txt"),
            str(tmp_path / "pub.txt"),
            "--model",
            str(tiny_bundle),
            "--format",
            "jsonl",
        ],
    )
    assert res.exit_code == 0, res.output
    rec = json.loads(res.output)
    assert rec["summary"] == {"kept": 3, "edited": 1, "added": 1, "dropped": 0}
    assert all(0 <= s["score"] <= 1 and s["label"] in ("reporting", "inserted") for s in rec["published"])
    assert rec["model"]["name"] and 0 <= rec["threshold"] <= 1  # the record /compare answers
    res = runner.invoke(
        app, ["compare", str(tmp_path / "src.txt"), str(tmp_path / "pub.txt"), "--model", str(tiny_bundle)]
    )
    assert res.exit_code == 0 and "added" in res.output and "edited" in res.output
    (tmp_path / "en.txt").write_text("Nothing Arabic here.", encoding="utf-8")
    res = runner.invoke(
        app, ["compare", str(tmp_path / "en.txt"), str(tmp_path / "pub.txt"), "--model", str(tiny_bundle)]
    )
    assert res.exit_code == 2 and "en.txt" in res.output and "Arabic" in res.output


def test_compare_endpoint(server):
    import requests

    published = "\ufeff" + SOURCE.replace("حتى الآن.", "حتى الآن. " + ADDED).replace("80 في", "85 في")
    r = requests.post(server.url + "/compare", json={"source": SOURCE, "published": published}, timeout=60)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["summary"] == {"kept": 3, "edited": 1, "added": 1, "dropped": 0}
    pub = body["published_text"]
    assert pub == published[1:] and body["source_text"] is None  # the BOM is not part of the text
    for s in body["published"]:
        assert pub[s["start"] : s["end"]] == s["text"]
        assert s["label"] == ("inserted" if s["score"] >= body["threshold"] else "reporting")
    (edited,) = [s for s in body["published"] if s["status"] == "edited"]
    assert edited["changes"] and SOURCE[edited["source"]["start"] : edited["source"]["end"]] == edited["source"]["text"]
    # The model's scores are those of /classify on the published text.
    classified = requests.post(server.url + "/classify", json={"text": pub}, timeout=60).json()
    assert [s["score"] for s in body["published"]] == [s["score"] for s in classified["sentences"]]


def test_evaluate_compare_labels_from_the_alignment(tiny_bundle, tmp_path):
    from training.evaluation.evaluate import evaluate

    pairs = tmp_path / "pairs.jsonl"
    published = SOURCE.replace("حتى الآن.", "حتى الآن. " + ADDED).replace("80 في", "85 في")
    pairs.write_text(
        json.dumps({"id": "p1", "source": SOURCE, "published": published}, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    bracketed = tmp_path / "b.txt"
    bracketed.write_text(SOURCE.replace("حتى الآن.", "حتى الآن. [" + ADDED + "]"), encoding="utf-8")
    r = evaluate(tiny_bundle, [pairs, bracketed], tmp_path / "report", compare=True)
    assert r["test"]["articles"] == 2 and r["test"]["sentences"] == 10 and r["test"]["inserted"] == 2
    al = r["alignment"]
    assert (al["kept"], al["edited"], al["added"], al["dropped"]) == (7, 1, 2, 0)
    assert al["brackets"] == {
        "articles": 1,
        "bracketed": 1,
        "recovered": 1,
        "missed": 0,
        "other_added": 0,
        "exact_articles": 1,
    }
    assert "Labels from compare mode" in (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"source": SOURCE, "published": ""}) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="bad.jsonl:1: a compare pair needs a non-empty string field 'published'"):
        evaluate(tiny_bundle, [bad], tmp_path / "r2", compare=True)
