import json
from pathlib import Path

import pytest

from serving.batch.inputs import read_articles
from serving.brackets import FormatError


def test_reads_txt_folder_and_jsonl(tmp_path):
    (tmp_path / "a.txt").write_text("جملة. [مدرجة.]", encoding="utf-8")
    (tmp_path / "b.jsonl").write_text(
        json.dumps({"id": "x", "text": "نص."}, ensure_ascii=False)
        + "\n\n"
        + json.dumps({"id": "y", "sentences": [{"text": "أ.", "label": "inserted"}], "outlet": "o"})
        + "\n",
        encoding="utf-8",
    )
    arts = list(read_articles([tmp_path]))
    assert [a.id for a in arts] == ["a", "x", "y"]
    assert arts[2].sentences[0]["label"] == "inserted" and arts[2].meta == {"outlet": "o"} and arts[2].line == 3


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", "invalid JSON"),
        ('["a"]', "expected a JSON object"),
        ('{"id": "a"}', "expected a field 'text' or 'sentences'"),
        ('{"id": "a", "text": "   "}', "empty"),
        ('{"id": "a", "sentences": [{"text": "x", "label": "maybe"}]}', "label"),
    ],
)
def test_jsonl_errors_name_file_and_line(tmp_path, line, message):
    f = tmp_path / "bad.jsonl"
    f.write_text('{"id": "ok", "text": "نص."}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(FormatError) as err:
        list(read_articles([f]))
    assert err.value.line == 2 and message in str(err.value) and "bad.jsonl" in str(err.value)


def test_duplicate_ids_are_refused(tmp_path):
    f = tmp_path / "d.jsonl"
    f.write_text('{"id": "a", "text": "x."}\n{"id": "a", "text": "y."}\n')
    with pytest.raises(FormatError, match="duplicate id"):
        list(read_articles([f]))


def test_empty_file_and_empty_folder(tmp_path):
    (tmp_path / "e.txt").write_text("  \n", encoding="utf-8")
    with pytest.raises(FormatError, match="empty file"):
        list(read_articles([tmp_path / "e.txt"]))
    (tmp_path / "sub").mkdir()
    with pytest.raises(FormatError, match="no .txt, .jsonl or .parquet"):
        list(read_articles([tmp_path / "sub"]))
    with pytest.raises(FormatError, match="no such file"):
        list(read_articles([tmp_path / "missing.txt"]))


def test_ids_are_unique_across_all_inputs_and_the_error_names_both(tmp_path):
    for d in ("one", "two"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "a.txt").write_text("نص.", encoding="utf-8")
    with pytest.raises(FormatError, match="duplicate id 'a'") as err:
        list(read_articles([tmp_path / "one", tmp_path / "two"]))
    assert str(tmp_path / "one" / "a.txt") in str(err.value) and str(tmp_path / "two" / "a.txt") in str(err.value)

    j = tmp_path / "more.jsonl"
    j.write_text('{"id": "x", "text": "نص."}\n{"id": "a", "text": "نص."}\n', encoding="utf-8")
    with pytest.raises(FormatError, match="duplicate id 'a'") as err:
        list(read_articles([tmp_path / "one" / "a.txt", j]))
    assert err.value.line == 2 and str(tmp_path / "one" / "a.txt") in str(err.value) and str(j) in str(err.value)

    j.write_text('{"id": "a", "text": "نص."}\n\n{"id": "a", "text": "نص."}\n', encoding="utf-8")
    with pytest.raises(FormatError, match="duplicate id 'a'") as err:
        list(read_articles([j]))
    assert err.value.line == 3 and f"{j}:1" in str(err.value)


def test_a_file_given_twice_is_refused(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("نص.", encoding="utf-8")
    with pytest.raises(FormatError, match="given twice"):
        list(read_articles([f, f]))
    with pytest.raises(FormatError, match="given twice"):
        list(read_articles([tmp_path, f]))  # the folder already holds it


def test_stdin_is_one_article_with_id_stdin(tmp_path, monkeypatch):
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO("\ufeffنص [مدرج].".encode()), encoding="utf-8"))
    (art,) = read_articles([Path("-")])
    assert (art.id, art.source, art.text) == ("stdin", "<stdin>", "نص [مدرج].")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"\xd9\x86\n\xff"), encoding="utf-8"))
    with pytest.raises(FormatError, match="<stdin>:2: invalid UTF-8"):
        list(read_articles([Path("-")]))
    with pytest.raises(FormatError, match="given twice"):
        list(read_articles([Path("-"), Path("-")]))


def test_one_leading_byte_order_mark_is_dropped_as_the_service_drops_it(tmp_path):
    """.txt files and JSONL "text" fields alike: the text less one leading U+FEFF (serving.brackets.offsets_text)."""
    (tmp_path / "a.txt").write_bytes("\ufeff\ufeffنص.".encode())
    (tmp_path / "b.jsonl").write_bytes(
        "\ufeff".encode() + json.dumps({"id": "b", "text": "\ufeffنص."}).encode() + b"\n"
    )
    a, b = read_articles([tmp_path])
    assert a.text == "\ufeffنص." and b.text == "نص."


def test_articles_without_arabic_are_read_for_training_but_refused_for_prediction(tmp_path):
    from serving.batch.inputs import NO_ARABIC, prediction_text

    f = tmp_path / "d.jsonl"
    f.write_text('{"id": "ar", "text": "نص [مدرج]."}\n{"id": "en", "text": "Latin only."}\n', encoding="utf-8")
    ar, en = read_articles([f])  # reading does not judge the language
    assert prediction_text(ar) == "نص مدرج."
    with pytest.raises(FormatError) as err:
        prediction_text(en)
    assert str(err.value) == f"{f}:2: {NO_ARABIC}"
