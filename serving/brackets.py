"""The labelled-article bracket format: inserted sentences wrapped in `[ ]`.

`strip_brackets` turns a labelled text into the bracket-free text and the spans (offsets
into that text) that were bracketed. Prediction removes brackets the same way, so offsets
always refer to the text without them.
"""

from __future__ import annotations

from serving.errors import InputError

BOM = "\ufeff"


class FormatError(InputError):
    """Bad input, with where it is: file (or record id) and 1-based line."""

    def __init__(self, source: str, line: int | None, message: str):
        self.source, self.line, self.message = source, line, message
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {message}")


def strip_brackets(text: str, source: str = "<text>") -> tuple[str, list[tuple[int, int]]]:
    """Return (text without brackets, [(start, end)] of each bracketed span in that text)."""
    out: list[str] = []
    spans: list[tuple[int, int]] = []
    open_at: int | None = None  # position in the clean text where the open span starts
    open_line = 0
    line = 1
    n = 0
    for ch in text:
        if ch == "[":
            if open_at is not None:
                raise FormatError(source, line, f"nested '[' (the span opened on line {open_line} is not closed)")
            open_at, open_line = n, line
            continue
        if ch == "]":
            if open_at is None:
                raise FormatError(source, line, "']' without a matching '['")
            if n == open_at or not "".join(out[open_at:]).strip():
                raise FormatError(source, line, "empty '[ ]' span")
            spans.append((open_at, n))
            open_at = None
            continue
        if ch == "\n":
            line += 1
        out.append(ch)
        n += 1
    if open_at is not None:
        raise FormatError(source, open_line, "'[' is never closed")
    clean = "".join(out)
    # Whitespace just inside the brackets is not part of the sentence.
    tidy = []
    for s, e in spans:
        while s < e and clean[s].isspace():
            s += 1
        while e > s and clean[e - 1].isspace():
            e -= 1
        tidy.append((s, e))
    return clean, tidy


def _looks_like_cp1256_arabic(raw: bytes) -> bool:
    """Whether bytes that are not UTF-8 read as mostly Arabic letters in Windows-1256 (the legacy Arabic code page)."""
    try:
        text = raw[:20000].decode("cp1256")
    except UnicodeDecodeError:
        return False
    letters = [c for c in text if c.isalpha()]
    return bool(letters) and sum("\u0600" <= c <= "\u06ff" for c in letters) > 0.5 * len(letters)


def decode_utf8(raw: bytes, source: str) -> str:
    """Decode file bytes as UTF-8, naming the line of the first bad byte. A leading byte-order mark
    is kept: `offsets_text` (below) is the one rule for it."""
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise FormatError(
            source,
            1,
            "UTF-16 text (it starts with a UTF-16 byte-order mark); Mudraj reads UTF-8: "
            f"iconv -f UTF-16 -t UTF-8 {source} > converted.txt",
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        hint = ""
        if _looks_like_cp1256_arabic(raw):
            hint = f"; it reads as Arabic in Windows-1256: iconv -f cp1256 -t utf-8 {source} > converted.txt"
        raise FormatError(
            source, line, f"invalid UTF-8 (byte 0x{raw[err.start]:02x} at offset {err.start}){hint}"
        ) from None
    if "\x00" in text:
        raise FormatError(
            source, text[: text.index("\x00")].count("\n") + 1, "binary file (NUL byte); expected UTF-8 text"
        )
    return text


def source_and_published(text: str, source: str = "<text>") -> tuple[str, str, list[tuple[int, int]]]:
    """A labelled article as the pair compare mode takes: (the text without its bracketed sentences,
    the text without brackets, the bracketed spans in the latter). Each removed sentence takes one
    neighbouring space with it, so the source reads as the host did before anything was inserted."""
    published, spans = strip_brackets(text, source)
    pieces, at = [], 0
    for s, e in spans:
        if s > at and published[s - 1] == " ":
            s -= 1
        elif e < len(published) and published[e] == " ":
            e += 1
        pieces.append(published[at:s])
        at = e
    pieces.append(published[at:])
    return "".join(pieces), published, spans


def without_bom(text: str) -> str:
    """The text as submitted, less one leading byte-order mark (U+FEFF is a file's encoding signature,
    not part of the article)."""
    return text[1:] if text.startswith(BOM) else text


def offsets_text(text: str, source: str = "<text>") -> str:
    """The one rule for the text every offset refers to, in the CLI, the service, compare and training
    alike: the text as submitted, less one leading byte-order mark, less the [ ] brackets (FormatError,
    naming source and line, when they do not pair up)."""
    text = without_bom(text)
    return strip_brackets(text, source)[0] if ("[" in text or "]" in text) else text
