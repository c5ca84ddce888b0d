import json

import pytest

from serving.brackets import FormatError
from serving.inputs import read_articles


def test_reads_txt_folder_and_jsonl(tmp_path):
    (tmp_path / "a.txt").write_text("جملة. [مدرجة.]", encoding="utf-8")
    (tmp_path / "b.jsonl").write_text(
        json.dumps({"id": "x", "text": "نص."}, ensure_ascii=False) + "\n\n"
        + json.dumps({"id": "y", "sentences": [{"text": "أ.", "label": "inserted"}], "outlet": "o"}) + "\n",
        encoding="utf-8")
    arts = list(read_articles([tmp_path]))
    assert [a.id for a in arts] == ["a", "x", "y"]
    assert arts[2].sentences[0]["label"] == "inserted" and arts[2].meta == {"outlet": "o"} and arts[2].line == 3


@pytest.mark.parametrize("line, message", [
    ("{not json", "invalid JSON"),
    ('["a"]', "expected a JSON object"),
    ('{"id": "a"}', "expected a field 'text' or 'sentences'"),
    ('{"id": "a", "text": "   "}', "empty"),
    ('{"id": "a", "sentences": [{"text": "x", "label": "maybe"}]}', "label"),
])
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
    with pytest.raises(FormatError, match="no .txt or .jsonl"):
        list(read_articles([tmp_path / "sub"]))
    with pytest.raises(FormatError, match="no such file"):
        list(read_articles([tmp_path / "missing.txt"]))
