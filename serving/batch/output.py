"""What `mudraj predict` writes: JSONL (one record per article), CSV (one row per sentence), Parquet
(one row per article, like JSONL), or a table for a person reading in a terminal."""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from enum import Enum
from typing import TYPE_CHECKING, Sequence

import click

from serving.errors import InputError

if TYPE_CHECKING:  # the CLI imports this module at start: no onnxruntime for the option's choices
    from serving.batch.inputs import RawArticle
    from serving.predictor import SentencePrediction


# Input fields carried through to the JSONL and Parquet records (for `mudraj report`: per outlet, per month).
CARRIED = ("outlet", "date", "url")


def carried(meta: dict) -> dict:
    """The article's carried fields that the input had, as strings."""
    return {k: str(meta[k]) for k in CARRIED if meta.get(k) not in (None, "")}


class Format(str, Enum):
    jsonl = "jsonl"
    csv = "csv"
    table = "table"
    parquet = "parquet"


def parquet_bytes(arts, results) -> bytes:
    """The JSONL records as a Parquet file: one row per article, `id` and `sentences` (a list of
    {start, end, text, label, score, windows, kind}). A field JSONL leaves out is null here: windows for a
    sentence scored in one window, kind for a sentence labelled reporting. Needs pyarrow."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    kind_score = pa.struct([("name", pa.string()), ("p", pa.float64())])
    kind = pa.struct([("name", pa.string()), ("p", pa.float64()), ("top", pa.list_(kind_score))])
    sentence = pa.struct(
        [
            ("start", pa.int64()),
            ("end", pa.int64()),
            ("text", pa.string()),
            ("label", pa.string()),
            ("score", pa.float64()),
            ("windows", pa.int64()),
            ("kind", kind),
        ]
    )
    schema = pa.schema(
        [("id", pa.string())] + [(k, pa.string()) for k in CARRIED] + [("sentences", pa.list_(sentence))]
    )
    rows = [
        {"id": a.id, **carried(a.meta), "sentences": [{"windows": None, "kind": None, **s.as_dict()} for s in r]}
        for a, r in zip(arts, results)
    ]
    buf = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), buf)
    return buf.getvalue().to_pybytes()


def _as_jsonl(arts, results) -> str:
    return "".join(
        json.dumps({"id": a.id, **carried(a.meta), "sentences": [s.as_dict() for s in r]}, ensure_ascii=False) + "\n"
        for a, r in zip(arts, results)
    )


def _as_csv(arts, results) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["id", "index", "start", "end", "label", "score", "kind", "kind_p", "kind_2", "kind_3", "text"])
    for a, r in zip(arts, results):
        w.writerows(
            [safe_cell(a.id), i, s.start, s.end, s.label, s.score, *_kind_cells(s.kind), safe_cell(s.text)]
            for i, s in enumerate(r)
        )
    return buf.getvalue()


def safe_cell(value):
    """A text cell a spreadsheet will not run as a formula: one starting with = + - @ (or a tab or carriage
    return) gets a leading apostrophe. Numbers are left as they are."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _kind_cells(kind: dict | None) -> list:
    """CSV cells of a sentence's kind: the likeliest kind, its probability, the 2nd and 3rd (empty: none)."""
    if not kind:
        return ["", "", "", ""]
    top = [t["name"] for t in kind["top"]] + ["", "", ""]
    return [kind["name"], kind["p"], top[1], top[2]]


def _as_table(arts, results) -> str:
    """For a person at a terminal: per article a heading, then one line per sentence, score and label
    first and the sentence last, so a right-to-left sentence never shares its line with other text
    after it; inserted sentences in colour (dropped where the output is not a terminal). A sentence
    is one line, its control characters (escape sequences too) blanked."""
    blocks = []
    for a, r in zip(arts, results):
        n_ins = sum(s.label == "inserted" for s in r)
        lines = [click.style(a.id, bold=True) + f"  ({len(r)} sentences, {n_ins} inserted)"]
        for s in r:
            text = " ".join("".join(" " if unicodedata.category(c) == "Cc" else c for c in s.text).split())
            if s.label == "inserted":
                kind = f"  [{s.kind['name']} {s.kind['p']:.2f}]" if s.kind else ""
                lines.append(click.style(f"  {s.score:.3f}  inserted{kind}   {text}", fg="yellow", bold=True))
            else:
                lines.append(f"  {s.score:.3f}  reporting  {text}")
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def render(fmt: Format, arts: Sequence["RawArticle"], results: Sequence[Sequence["SentencePrediction"]]) -> str:
    """The text formats (Parquet is binary: parquet_bytes)."""
    if Format(fmt) is Format.parquet:
        raise ValueError("Parquet is binary: use parquet_bytes")
    return {Format.jsonl: _as_jsonl, Format.csv: _as_csv, Format.table: _as_table}[Format(fmt)](arts, results)


def render_compare(fmt: Format, rows, source_name: str, published_name: str, rec: dict | None = None) -> str:
    """`mudraj compare` output: JSONL (the one record POST /compare answers, serving.compare.record) or a
    table (one line per published sentence: status, similarity, the model's score, the sentence;
    edited sentences with their changes under them; then the dropped source sentences)."""
    from serving.compare import summary

    if Format(fmt) is Format.jsonl:
        if rec is None:
            raise ValueError("compare's JSON output needs its record (serving.compare.record)")
        return json.dumps(rec, ensure_ascii=False) + "\n"
    if Format(fmt) is not Format.table:
        raise InputError(f"compare writes jsonl or table, not {fmt}")
    flat = lambda t: " ".join("".join(" " if unicodedata.category(c) == "Cc" else c for c in t).split())  # noqa: E731
    counts = summary(rows)
    lines = [
        click.style(f"{published_name} against {source_name}", bold=True)
        + "  ("
        + ", ".join(f"{n} {k}" for k, n in counts.items())
        + ")"
    ]
    colour = {"added": "yellow", "edited": "cyan"}
    for r in rows:
        if r.published is None:
            continue
        model = f"{r.score:.3f} {r.label:<9}" if r.score is not None else ""
        line = f"  {r.status:<7} {r.similarity:5.1f}  {model} {flat(r.published.text)}"
        lines.append(click.style(line, fg=colour[r.status], bold=r.status == "added") if r.status in colour else line)
        for c in r.changes:
            lines.append(f"            {c.op:<7} -{flat(c.source_text) or '∅'}  +{flat(c.published_text) or '∅'}")
    dropped = [r for r in rows if r.published is None]
    if dropped:
        lines.append(click.style("  dropped from the source:", bold=True))
        lines += [f"  dropped        {flat(r.source.text)}" for r in dropped]
    return "\n".join(lines) + "\n"
