"""The shards of a batch run (`mudraj predict --engine ray`, serving/batch/ray_engine.py): the inputs cut in
reading order into pieces of up to SHARD_SIZE .txt files, JSON lines or Parquet rows, never spanning two
JSONL or Parquet files, every id checked for uniqueness before any labelling; and reading one shard back."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from serving.batch.inputs import (
    expand,
    input_kind,
    jsonl_article,
    jsonl_lines,
    parquet_file,
    read_parquet,
    read_txt,
    unique_id,
)
from serving.batch.output import Format
from serving.brackets import FormatError
from serving.errors import InputError

SHARD_SIZE = 1000  # articles a shard


@dataclass(frozen=True)
class Shard:
    index: int
    kind: str  # "txt", "jsonl" or "parquet"
    files: tuple[str, ...]  # txt: its files; jsonl, parquet: the one file
    start: int = 0  # jsonl: byte offset; parquet: row (0-based)
    end: int = 0
    first_line: int = 1  # jsonl: the number of the line at `start`
    articles: int = 0

    def part(self, fmt: Format) -> str:
        return f"part-{self.index:05d}.{Format(fmt).value}"

    def fingerprint(self) -> str:
        # Resolved paths: `arts/x` and `/abs/arts/x` are one input, so a rerun typed either way resumes.
        stats = [(os.path.realpath(f), st.st_size, st.st_mtime_ns) for f, st in ((f, os.stat(f)) for f in self.files)]
        return json.dumps([self.kind, stats, self.start, self.end], ensure_ascii=False)


def _jsonl_shards(path: Path, size: int, seen: dict[str, str]) -> Iterator[tuple[int, int, int, int]]:
    """(byte start, byte end, first line, articles) for each shard of a JSONL file; every record is
    parsed and checked, its id recorded in `seen`."""
    count, start, first = 0, 0, 1
    for lineno, pos, end, rec in jsonl_lines(path):
        art = jsonl_article(path, lineno, rec)
        unique_id(art.id, str(path), seen, lineno)
        if count == 0:
            start, first = pos, lineno
        count += 1
        if count == size:
            yield start, end, first, count
            count = 0
    if count:
        yield start, end, first, count


def plan_shards(inputs: Iterable[Path], shard_size: int = SHARD_SIZE) -> list[Shard]:
    """The shards of the inputs, in reading order; ids are checked for uniqueness across all of them."""
    if shard_size < 1:
        raise InputError(f"--shard-size must be at least 1, got {shard_size}")
    shards: list[Shard] = []
    txt: list[Path] = []
    seen: dict[str, str] = {}

    def add(kind: str, files, **kw) -> None:
        shards.append(Shard(len(shards), kind, tuple(map(str, files)), **kw))

    def flush() -> None:
        if txt:
            add("txt", txt, articles=len(txt))
            txt.clear()

    for f in expand(inputs):
        kind = input_kind(f)
        if kind == "stdin":
            raise InputError("--engine ray reads files, not standard input: save the article as a .txt file")
        if kind == "jsonl":
            flush()
            ranges = list(_jsonl_shards(f, shard_size, seen))
            if not ranges:
                raise FormatError(str(f), None, "empty file: no JSON lines")
            for start, end, first, n in ranges:
                add("jsonl", [f], start=start, end=end, first_line=first, articles=n)
        elif kind == "parquet":
            flush()
            pf = parquet_file(f)
            ids = pf.read(columns=["id"]).column("id").to_pylist()
            if not ids:
                raise FormatError(str(f), None, "empty file: no rows")
            for row, art_id in enumerate(ids, 1):
                unique_id(str(art_id), f"{f} row {row}", seen)
            for lo in range(0, len(ids), shard_size):
                add(
                    "parquet",
                    [f],
                    start=lo,
                    end=min(len(ids), lo + shard_size),
                    articles=min(shard_size, len(ids) - lo),
                )
        else:
            unique_id(f.stem, str(f), seen)
            txt.append(f)
            if len(txt) == shard_size:
                flush()
    flush()
    return shards


def read_shard(shard: Shard) -> list:
    """The shard's articles (serving.batch.inputs.RawArticle), checked as the local engine checks them."""
    if shard.kind == "txt":
        return [read_txt(Path(f)) for f in shard.files]
    path = Path(shard.files[0])
    if shard.kind == "jsonl":
        return [
            jsonl_article(path, ln, rec)
            for ln, _, _, rec in jsonl_lines(path, shard.start, shard.end, shard.first_line)
        ]
    return list(read_parquet(path, shard.start, shard.end))
