import pytest

from serving.brackets import FormatError, decode_utf8, strip_brackets


def test_offsets_refer_to_the_text_without_brackets():
    clean, spans = strip_brackets("أ. [ب ج.] د.\n\n[هـ و.]")
    assert clean == "أ. ب ج. د.\n\nهـ و."
    assert [clean[a:b] for a, b in spans] == ["ب ج.", "هـ و."]


@pytest.mark.parametrize(
    "text, line, message",
    [
        ("سطر.\n[أ [ب] ج]", 2, "nested"),
        ("سطر.\nسطر.\nأ] ب", 3, "without a matching"),
        ("سطر.\n[أ ب\n\nج", 2, "never closed"),
        ("أ [ ] ب", 1, "empty"),
    ],
)
def test_bad_brackets_name_the_line(text, line, message):
    with pytest.raises(FormatError) as err:
        strip_brackets(text, "art.txt")
    assert err.value.line == line and message in str(err.value) and "art.txt" in str(err.value)


def test_invalid_utf8_names_the_line():
    raw = "سطر أول\nسطر ثان\n".encode() + b"\xff\xfe bad\n"
    with pytest.raises(FormatError) as err:
        decode_utf8(raw, "bad.txt")
    assert err.value.line == 3 and "invalid UTF-8" in str(err.value)


def test_binary_file_is_refused():
    with pytest.raises(FormatError, match="binary"):
        decode_utf8(b"abc\x00def", "x.bin")
