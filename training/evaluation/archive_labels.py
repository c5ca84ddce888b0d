"""Reading an archive's labels for `mudraj report` (training/evaluation/archive_report.py): `mudraj predict`
output as one JSONL or Parquet file, or a Ray output folder (its parts, with _SUCCESS.json), one row per
article with its outlet, month, URL and flagged sentences. Mixed or truncated inputs fail with a message
that names the file and line."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from serving.brackets import FormatError
from serving.errors import MissingError

DONE_FILE = "_SUCCESS.json"


@dataclass
class ArticleRow:
    id: str
    outlet: str | None
    month: str | None  # YYYY-MM
    url: str | None
    n: int  # sentences
    inserted: int
    max_score: float
    flagged: list[tuple[float, str, str | None]] = field(default_factory=list)  # (score, text, kind)
    kinds: Counter = field(default_factory=Counter)


def _month(date: str | None) -> str | None:
    from training.corpus.sources import year_month

    return year_month(str(date)) if date else None


def _row(rec: dict, where: str) -> ArticleRow:
    if not isinstance(rec, dict) or "id" not in rec or not isinstance(rec.get("sentences"), list):
        raise FormatError(where, None, 'not a `mudraj predict` record (needs "id" and a "sentences" list)')
    sents = rec["sentences"]
    try:
        scores = [float(s["score"]) for s in sents]
        labels = [s["label"] for s in sents]
    except (KeyError, TypeError, ValueError):
        raise FormatError(where, None, f"article {rec['id']!r}: a sentence lacks its label or score") from None
    row = ArticleRow(
        str(rec["id"]),
        rec.get("outlet") or None,
        _month(rec.get("date")),
        rec.get("url") or None,
        len(sents),
        sum(lab == "inserted" for lab in labels),
        max(scores, default=0.0),
    )
    for s, lab in zip(sents, labels):
        if lab == "inserted":
            kind = (s.get("kind") or {}).get("name") if isinstance(s.get("kind"), dict) else None
            row.flagged.append((float(s["score"]), str(s.get("text", "")), kind))
            if kind:
                row.kinds[kind] += 1
    return row


def _jsonl_rows(path: Path) -> list[ArticleRow]:
    raw = path.read_bytes()
    if raw and not raw.endswith(b"\n"):
        raise FormatError(
            str(path),
            raw.count(b"\n") + 1,
            "the last line has no line end: the file is truncated (was predict stopped while writing it?)",
        )
    out = []
    for i, line in enumerate(raw.decode("utf-8").split("\n"), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as err:
            raise FormatError(str(path), i, f"invalid JSON ({err.msg}): truncated or not predict output") from None
        out.append(_row(rec, f"{path}:{i}"))
    return out


def _parquet_rows(path: Path) -> list[ArticleRow]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise RuntimeError("reading Parquet needs pyarrow: pip install -e '.[ray]'") from None
    try:
        table = pq.read_table(path)
    except Exception as err:  # pyarrow raises several types for a damaged file
        raise FormatError(str(path), None, f"not a readable Parquet file ({err}): truncated?") from None
    return [_row(rec, f"{path} row {i + 1}") for i, rec in enumerate(table.to_pylist())]


def read_labels(path: Path) -> list[ArticleRow]:
    """Every article of predict's output at path (a file, or a Ray output folder of one format)."""
    path = Path(path)
    if path.is_dir():
        parts = sorted(p for p in path.glob("part-*") if p.suffix in (".jsonl", ".parquet"))
        if not parts:
            raise MissingError(
                f"{path} holds no part-*.jsonl or part-*.parquet files (a `mudraj predict --engine ray` output folder)"
            )
        kinds = {p.suffix for p in parts}
        if len(kinds) > 1:
            raise FormatError(
                str(path),
                None,
                f"mixed part formats ({', '.join(sorted(kinds))}): one run writes one "
                "format; move the other run's parts elsewhere",
            )
        if not (path / DONE_FILE).is_file():
            raise FormatError(
                str(path),
                None,
                f"no {DONE_FILE}: the run has not finished (rerun the same "
                "`mudraj predict --engine ray` command to complete it)",
            )
        files = parts
    elif path.is_file():
        files = [path]
    else:
        raise MissingError(f"{path}: no such file or folder")
    rows: list[ArticleRow] = []
    for f in files:
        if f.suffix == ".parquet":
            rows += _parquet_rows(f)
        elif f.suffix == ".jsonl":
            rows += _jsonl_rows(f)
        else:
            raise FormatError(str(f), None, "expected predict's JSONL (.jsonl) or Parquet (.parquet) output")
    seen: dict[str, int] = Counter(r.id for r in rows)
    dup = [i for i, n in seen.items() if n > 1]
    if dup:
        raise FormatError(
            str(path),
            None,
            f"{len(dup)} article ids occur more than once (e.g. {dup[0]!r}): outputs of two runs mixed together",
        )
    if not rows:
        raise FormatError(str(path), None, "no articles")
    return rows
