"""Labels from compare mode: `mudraj evaluate --compare` scores the model against what an alignment
of each published text with its source says was added (serving/compare.py), not against brackets.

Input, per article, either
- a JSON line with "source" and "published" (the original and the republished text; "id" optional), or
- a labelled article in the bracket format (a .txt file, a folder, or JSON lines with "text", such as
  the corpus builder's splits): its source is the text without the bracketed sentences, its
  published text the text without brackets. The brackets then also check the alignment: every
  bracketed sentence should come out `added`, and nothing else.

Each published sentence is labelled inserted when it was added, reporting when it was kept or edited.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from serving.batch.inputs import read_articles, read_jsonl
from serving.brackets import FormatError, offsets_text, source_and_published
from serving.compare import (
    EDGE,  # quote marks at a sentence's edge may be segmented with either neighbour
    align,
)
from training.corpus.articles import Article, Sentence


def _pairs(paths: Iterable[Path]):
    """(id, source, published, bracketed spans or None, meta) for every article of the inputs."""
    for path in map(Path, paths):
        rows = list(read_jsonl(path)) if path.suffix == ".jsonl" and path.is_file() else None
        if rows and any("published" in r for _, r in rows):
            for line, r in rows:
                for field in ("source", "published"):
                    if not isinstance(r.get(field), str) or not r[field].strip():
                        raise FormatError(str(path), line, f"a compare pair needs a non-empty string field {field!r}")
                meta = {k: v for k, v in r.items() if k not in ("id", "source", "published")}
                yield (
                    str(r.get("id", f"{path.stem}-{line}")),
                    offsets_text(r["source"]),
                    offsets_text(r["published"]),
                    None,
                    meta,
                )
            continue
        for art in read_articles([path]):
            if art.text is None:
                raise FormatError(art.source, art.line, "compare needs whole texts, not pre-split sentences")
            src, pub, spans = source_and_published(art.text, art.source)
            yield art.id, src, pub, spans, dict(art.meta or {})


def compare_articles(paths: Iterable[Path]) -> tuple[list[Article], dict]:
    """Articles whose sentence labels come from aligning published with source, and the alignment's
    counts; with bracketed inputs, how many bracketed sentences it found as added, missed, or added
    besides them."""
    articles = []
    counts = {"articles": 0, "kept": 0, "edited": 0, "added": 0, "dropped": 0}
    check = {"articles": 0, "bracketed": 0, "recovered": 0, "missed": 0, "other_added": 0, "exact_articles": 0}
    for art_id, src, pub, spans, meta in _pairs(paths):
        rows = align(src, pub)
        counts["articles"] += 1
        for r in rows:
            counts[r.status] += 1
        sentences = [
            Sentence(r.published.start, r.published.end, r.published.text, int(r.status == "added"))
            for r in rows
            if r.published is not None
        ]
        if spans is not None:
            truth = sorted(pub[s:e].strip(EDGE) for s, e in spans)
            found = sorted(r.published.text.strip(EDGE) for r in rows if r.status == "added")
            hit = len(set(truth) & set(found))
            exact = truth == found
            check.update(
                articles=check["articles"] + 1,
                bracketed=check["bracketed"] + len(truth),
                recovered=check["recovered"] + hit,
                missed=check["missed"] + len(truth) - hit,
                other_added=check["other_added"] + len(found) - hit,
                exact_articles=check["exact_articles"] + exact,
            )
            if not exact:  # per-insertion details (kind, voice) follow the brackets: only where they agree
                meta = {k: v for k, v in meta.items() if k not in ("kinds", "voices")}
        articles.append(Article(art_id, pub, sentences, [], meta, source=art_id))
    return articles, {**counts, "brackets": check if check["articles"] else None}
