"""Reading articles from files: `.txt` (one article each), folders of them, JSONL, Parquet (`id` and
`text` columns), and `-` (one article from standard input, id "stdin").

JSONL lines are `{"id", "text"}` (brackets allowed) or pre-split
`{"id", "sentences": [{"text", "label"}]}`; other fields (outlet, ...) are kept as metadata.
Ids are unique across all inputs. Every error names the file and the line.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from serving.brackets import FormatError, decode_utf8, strip_brackets, without_bom
from serving.normalize import ARABIC_LETTER

MAX_ARTICLE_CHARS = 1_000_000
SUFFIXES = (".txt", ".jsonl", ".parquet")  # what a folder is searched for
STDIN = "-"  # as an input path: one article from standard input
NO_ARABIC = "text has no Arabic letters (Mudraj reads Arabic news articles)"


def has_arabic(text: str) -> bool:
    """Whether the text has at least one Arabic letter (tatweel, a stretching mark, is not one)."""
    return ARABIC_LETTER.search(text.replace(TATWEEL, "")) is not None


TATWEEL = "\u0640"
# Letters of Persian and Urdu that Arabic news writes only in the odd foreign name: a text with many is
# Persian or Urdu in the Arabic script, outside what the model was trained on. (ی and ک are left out:
# some Arabic keyboards type them for ي and ك.)
NOT_ARABIC_LANGUAGE = frozenset("پچژگٹڈڑںےۓھۀ")
MIN_ARABIC_SHARE = 0.5  # of a text's letters
MAX_PERSIAN_URDU_SHARE = 0.015  # of its Arabic-script letters


def language_problem(text: str, what: str = "text") -> str | None:
    """Why a text is out of scope for the model, or None: no Arabic letter, letters mostly of another
    script, or Persian/Urdu letters in numbers. The one rule for `mudraj predict`, `compare` and every
    endpoint of the service."""
    letters = [c for c in text if c.isalpha() and c != TATWEEL]
    arabic = [c for c in letters if ARABIC_LETTER.match(c)]
    if not arabic:
        return NO_ARABIC.replace("text", what, 1)
    if len(arabic) < MIN_ARABIC_SHARE * len(letters):
        return (
            f"{what} is mostly not Arabic ({len(arabic) / len(letters):.0%} of its letters are; Mudraj reads "
            "Arabic news articles)"
        )
    other = sum(c in NOT_ARABIC_LANGUAGE for c in arabic)
    if other >= 3 and other > MAX_PERSIAN_URDU_SHARE * len(arabic):
        return (
            f"{what} reads as Persian or Urdu (letters such as پ چ گ ے ں), not Arabic; Mudraj reads Arabic "
            "news articles"
        )
    return None


@dataclass
class RawArticle:
    id: str
    source: str  # the file it came from
    text: str | None = None  # may carry [ ] brackets
    sentences: list[dict] | None = None  # pre-split form: [{"text", "label"}]
    meta: dict = field(default_factory=dict)
    line: int | None = None  # JSONL line


def expand(paths: Iterable[Path]) -> list[Path]:
    """The input files in reading order: a folder gives its .txt, .jsonl and .parquet files, searched
    recursively and sorted; a file named twice (or standard input twice) is an error."""
    files: list[Path] = []
    given: dict[Path | str, str] = {}  # each file once, however it was named
    for p in map(Path, paths):
        if str(p) == STDIN:
            found = [p]
        elif p.is_dir():
            found = sorted(x for x in p.rglob("*") if x.is_file() and x.suffix.lower() in SUFFIXES)
            if not found:
                raise FormatError(str(p), None, "folder has no .txt, .jsonl or .parquet files")
        elif p.is_file():
            found = [p]
        else:
            raise FormatError(str(p), None, "no such file or folder")
        for f in found:
            key = STDIN if str(f) == STDIN else f.resolve()
            if key in given:
                name = "standard input" if key == STDIN else "the file"
                also = "" if given[key] == str(f) else f" (also as {given[key]})"
                raise FormatError(str(f), None, f"{name} is given twice{also}")
            given[key] = str(f)
        files.extend(found)
    return files


def jsonl_lines(
    path: Path, start: int = 0, end: int | None = None, first_line: int = 1
) -> Iterator[tuple[int, int, int, dict]]:
    """(line number, byte offset, byte end, object) for each non-blank line of a JSONL file, or of its
    bytes [start, end) (whole lines, the first of them numbered first_line). Lines end at "\\n" only:
    a raw U+2028 inside a JSON string is text, not a line break. Invalid UTF-8, invalid JSON and a line
    that is not a JSON object raise FormatError naming the file and the line."""
    path = Path(path)
    with open(path, "rb") as f:
        f.seek(start)
        pos = start
        for lineno, raw in enumerate(f, first_line):
            if end is not None and pos >= end:
                return
            at, pos = pos, pos + len(raw)
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise FormatError(
                    str(path), lineno, f"invalid UTF-8 (byte 0x{raw[err.start]:02x} at offset {at + err.start})"
                ) from None
            if "\x00" in line:
                raise FormatError(str(path), lineno, "binary file (NUL byte); expected UTF-8 text")
            if at == 0:
                line = without_bom(line)  # the file's signature, not JSON
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as err:
                raise FormatError(str(path), lineno, f"invalid JSON ({err.msg} at column {err.colno})") from None
            if not isinstance(rec, dict):
                raise FormatError(str(path), lineno, "expected a JSON object")
            yield lineno, at, pos, rec


def read_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line of a JSONL file (see jsonl_lines)."""
    for lineno, _, _, rec in jsonl_lines(path):
        yield lineno, rec


def jsonl_article(path: Path, lineno: int, rec: dict) -> RawArticle:
    """One JSONL record as an article; errors name the file and the line."""
    art_id = rec.get("id", f"{path.stem}-{lineno}")
    if not isinstance(art_id, (str, int)):
        raise FormatError(str(path), lineno, "field 'id' must be a string")
    art_id = str(art_id)
    meta = {k: v for k, v in rec.items() if k not in ("id", "text", "sentences")}
    src = str(path)
    if "sentences" in rec:
        sents = rec["sentences"]
        if not isinstance(sents, list) or not sents:
            raise FormatError(str(path), lineno, "field 'sentences' must be a non-empty list")
        for i, s in enumerate(sents):
            if not isinstance(s, dict) or not isinstance(s.get("text"), str) or not s["text"].strip():
                raise FormatError(str(path), lineno, f"sentences[{i}] needs a non-empty string field 'text'")
            if "label" in s and s["label"] not in ("reporting", "inserted", 0, 1):
                raise FormatError(
                    str(path), lineno, f"sentences[{i}].label must be 'reporting' or 'inserted', got {s['label']!r}"
                )
        return RawArticle(art_id, src, sentences=sents, meta=meta, line=lineno)
    if "text" in rec:
        if not isinstance(rec["text"], str):
            raise FormatError(str(path), lineno, "field 'text' must be a string")
        if not rec["text"].strip():
            raise FormatError(str(path), lineno, "field 'text' is empty")
        return RawArticle(art_id, src, text=without_bom(rec["text"]), meta=meta, line=lineno)
    raise FormatError(str(path), lineno, "expected a field 'text' or 'sentences'")


def _read_jsonl(path: Path) -> Iterator[RawArticle]:
    n = 0
    for lineno, rec in read_jsonl(path):
        yield jsonl_article(path, lineno, rec)
        n += 1
    if n == 0:
        raise FormatError(str(path), None, "empty file: no JSON lines")


def parquet_file(path: Path):
    """The pyarrow ParquetFile of an input, checked for `id` and `text` columns."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise FormatError(str(path), None, "reading Parquet needs pyarrow (pip install pyarrow)") from None
    try:
        pf = pq.ParquetFile(path)
    except Exception as err:  # pyarrow raises its own ArrowInvalid for a file that is not Parquet
        raise FormatError(str(path), None, f"not a readable Parquet file ({err})") from None
    missing = {"id", "text"} - set(pf.schema_arrow.names)
    if missing:
        raise FormatError(str(path), None, f"Parquet input needs columns 'id' and 'text'; missing {sorted(missing)}")
    return pf


def read_parquet(path: Path, start: int = 0, end: int | None = None) -> Iterator[RawArticle]:
    """Articles of rows [start, end) of a Parquet file with `id` and `text` columns (other columns are
    ignored); an article's `source`, and so every error about it, names the file and the row (1-based). Only the row groups that hold the rows are read."""
    pf = parquet_file(path)
    end = pf.metadata.num_rows if end is None else end
    if pf.metadata.num_rows == 0:
        raise FormatError(str(path), None, "empty file: no rows")
    first = 0
    for g in range(pf.metadata.num_row_groups):
        size = pf.metadata.row_group(g).num_rows
        lo, hi = max(start, first), min(end, first + size)
        if lo < hi:
            table = pf.read_row_group(g, columns=["id", "text"]).slice(lo - first, hi - lo)
            for k, (art_id, text) in enumerate(zip(table.column("id").to_pylist(), table.column("text").to_pylist())):
                row = lo + k + 1
                if not isinstance(art_id, (str, int)) or isinstance(art_id, bool):
                    raise FormatError(f"{path} row {row}", None, "column 'id' must be a string or an integer")
                if not isinstance(text, str) or not text.strip():
                    raise FormatError(f"{path} row {row}", None, "column 'text' is empty or not a string")
                yield RawArticle(str(art_id), f"{path} row {row}", text=without_bom(text))
        first += size


def read_txt(path: Path) -> RawArticle:
    """A .txt file as one article, its id the file name without the suffix."""
    return _read_txt(Path(path).read_bytes(), Path(path).stem, str(path))


def _read_txt(raw: bytes, art_id: str, source: str) -> RawArticle:
    if len(raw) > 4 * MAX_ARTICLE_CHARS:
        raise FormatError(
            source, None, f"file is {len(raw):,} bytes; an article is at most {MAX_ARTICLE_CHARS:,} characters"
        )
    text = without_bom(decode_utf8(raw, source))
    if not text.strip():
        raise FormatError(source, None, "empty file")
    if len(text) > MAX_ARTICLE_CHARS:
        raise FormatError(source, None, f"article has {len(text):,} characters; at most {MAX_ARTICLE_CHARS:,}")
    return RawArticle(art_id, source, text=text)


def _stdin_bytes() -> bytes:
    stream = getattr(sys.stdin, "buffer", None)
    return stream.read() if stream is not None else sys.stdin.read().encode("utf-8")


def input_kind(path: Path) -> str:
    """The one dispatch on an input path, for the local and the Ray engine: "stdin", "jsonl", "parquet"
    or "txt" (suffixes in any case); anything else is refused, naming the file."""
    if str(path) == STDIN:
        return "stdin"
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".parquet"):
        return suffix[1:]
    if suffix in ("", ".txt"):
        return "txt"
    raise FormatError(
        str(path),
        None,
        f"{path.suffix} is not an input Mudraj reads: give .txt (one "
        'article), .jsonl ({"id", "text"} a line) or .parquet (id and '
        "text columns)",
    )


def unique_id(art_id: str, where: str, seen: dict[str, str], line: int | None = None) -> None:
    """The one duplicate-id check of both engines: `seen` maps each id to where it was first read."""
    if art_id in seen:
        raise FormatError(
            where, line, f"duplicate id {art_id!r} (also {seen[art_id]}); ids must be unique across all inputs"
        )
    seen[art_id] = where if line is None else f"{where}:{line}"


def _read_all(paths: Iterable[Path]) -> Iterator[RawArticle]:
    for path in expand(paths):
        kind = input_kind(path)
        if kind == "stdin":
            yield _read_txt(_stdin_bytes(), "stdin", "<stdin>")
        elif kind == "jsonl":
            yield from _read_jsonl(path)
        elif kind == "parquet":
            yield from read_parquet(path)
        else:
            yield read_txt(path)


def read_articles(paths: Iterable[Path]) -> Iterator[RawArticle]:
    """Articles from .txt files, folders, JSONL files and `-` (standard input), in a stable order.
    An id seen twice, in one file or across inputs, is an error naming both places."""
    seen: dict[str, str] = {}
    for art in _read_all(paths):
        unique_id(art.id, art.source, seen, art.line)
        yield art


def strip_article(article: RawArticle) -> tuple[str, list[tuple[int, int]]]:
    """The article's bracket-free text and bracketed spans; errors name file and line."""
    if article.text is None:  # pre-split: sentences joined by a space
        return " ".join(s["text"].strip() for s in article.sentences or []), []
    try:
        return strip_brackets(article.text, article.source)
    except FormatError as err:
        if article.line:  # JSONL: the record's line, and the line inside its text
            raise FormatError(
                article.source, article.line, f"field 'text': {err.message} (line {err.line} of the text)"
            ) from None
        raise


def prediction_text(article: RawArticle) -> str:
    """The text `mudraj predict` labels (offsets refer to it): brackets removed. Refused, like the
    service refuses it, when it has no Arabic letters. Training reads such articles; it does not call this."""
    clean, _ = strip_article(article)
    problem = language_problem(clean)
    if problem:
        raise FormatError(article.source, article.line, problem)
    return clean
