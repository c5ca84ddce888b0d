"""Host articles: the human-written SaudiNewsNet news that our insertions go into.

The corpus stays where it is (`../shared/corpora/saudinewsnet`, CC BY-NC-SA); the repo keeps
only host ids, content hashes and our own sentences.
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

from serving.batch.inputs import read_jsonl
from serving.brackets import FormatError
from serving.errors import InputError, MissingError
from serving.segment import segment
from training.defaults import SAUDINEWSNET as DEFAULT_CORPUS

# Verbs and phrases by which news attributes a statement to a source.
ATTRIBUTION_CUES = re.compile(
    r"\b(?:و?قال|وأضاف|أضاف|وأكد|أكد|وأوضح|أوضح|وأشار|أشار|بحسب|حسب|وفقا|وفقاً|نقلت|ونقلت|صرح|وصرح|"
    r"أعلن|وأعلن|أفاد|وأفاد|ذكرت|وذكرت|ذكر|وذكر|قالت|وقالت|أفادت|وأفادت|أعلنت|وأعلنت|مصدر|مصادر|"
    r"لوكالة|وكالة الأنباء|في تصريح|في بيان|بيان)"
)


@dataclass(frozen=True)
class Host:
    id: str
    outlet: str
    url: str
    title: str
    date: str
    sha256: str  # of the paragraphs as we lay them out (title + body)
    paragraphs: tuple[str, ...]
    source: str = "saudinewsnet"  # which corpus (training/corpus/sources.py)

    def text(self) -> str:
        return "\n\n".join(self.paragraphs)


def host_id(outlet: str, url: str) -> str:
    return f"{outlet}-{hashlib.sha1(url.encode('utf-8')).hexdigest()[:10]}"


def _paragraphs(title: str, content: str) -> tuple[str, ...]:
    paras = [re.sub(r"[ \t]+", " ", p).strip() for p in re.split(r"\n\s*", content)]
    paras = [p for p in paras if p]
    title = re.sub(r"\s+", " ", title or "").strip()
    return tuple(([title] if title else []) + paras)


def iter_corpus(corpus: Path = DEFAULT_CORPUS) -> Iterator[Host]:
    """Every article of the SaudiNewsNet zips, laid out as title + paragraphs."""
    corpus = Path(corpus)
    zips = sorted(corpus.glob("*.zip"))
    if not zips:
        raise MissingError(f"no SaudiNewsNet .zip files in {corpus}")
    for z in zips:
        with zipfile.ZipFile(z) as archive:
            for name in sorted(archive.namelist()):
                try:
                    records = json.loads(archive.read(name))
                except json.JSONDecodeError as err:
                    raise FormatError(f"{z}!{name}", err.lineno, f"invalid JSON: {err.msg}") from None
                for rec in records:
                    paras = _paragraphs(rec.get("title", ""), rec.get("content", ""))
                    digest = hashlib.sha256("\n\n".join(paras).encode("utf-8")).hexdigest()
                    yield Host(
                        id=host_id(rec["source"], rec["url"]),
                        outlet=rec["source"],
                        url=rec["url"],
                        title=rec.get("title", ""),
                        date=rec.get("date_extracted", ""),
                        sha256=digest,
                        paragraphs=paras,
                    )


def load_hosts(ids: set[str], corpus: Path = DEFAULT_CORPUS) -> dict[str, Host]:
    found = {h.id: h for h in iter_corpus(corpus) if h.id in ids}
    missing = sorted(ids - set(found))
    if missing:
        raise InputError(f"{len(missing)} host ids not found in {corpus}: {missing[:5]}")
    return found


@dataclass(frozen=True)
class Candidate:
    id: str
    outlet: str
    sha256: str
    n_sentences: int
    n_paragraphs: int
    n_cues: int
    style: str  # "news" (attributed reporting) or "opinion" (commentary written by a human)
    source: str = "saudinewsnet"  # training/corpus/sources.py
    genre: str = ""  # politics, economy, science_technology, health, ... (training/corpus/genres.py)


def assess(host: Host) -> Candidate | None:
    """Decide whether an article is usable news; None for lists, fragments and giants."""
    body = host.paragraphs[1:] if len(host.paragraphs) > 1 else host.paragraphs
    text = "\n\n".join(body)
    # ArMPro keeps only a page's annotated paragraphs (most pages: one): a shorter host is fine there.
    min_paragraphs, min_sentences = (1, 3) if host.source == "armpro" else (2, 5)
    if len(text) > 8000 or len(body) < min_paragraphs:
        return None
    # Share of the Arabic script block (letters, Arabic digits and punctuation), not of ARABIC_LETTER:
    # a host may be mostly Arabic figures and still be Arabic news.
    arabic = sum("\u0600" <= c <= "\u06ff" for c in text)
    if arabic < 0.6 * len(text.replace(" ", "")):
        return None
    sentences = segment(text)
    if not min_sentences <= len(sentences) <= 40:
        return None
    words = [len(s.text.split()) for s in sentences]
    # Lists and tables: many very short lines.
    if sum(w < 5 for w in words) > 0.3 * len(words) or max(words) > 150:
        return None
    cues = len(ATTRIBUTION_CUES.findall(text))
    style = "news" if cues >= 2 else "opinion"
    return Candidate(host.id, host.outlet, host.sha256, len(sentences), len(body), cues, style, host.source)


def write_selection(cands: list[Candidate], path: Path) -> None:
    from serving.batch.io import atomic_write_text

    lines = [json.dumps(asdict(c), ensure_ascii=False) for c in cands]
    atomic_write_text(path, "\n".join(lines) + "\n")


def read_selection(path: Path) -> list[Candidate]:
    out = []
    for i, rec in read_jsonl(path):
        try:
            out.append(Candidate(**rec))
        except TypeError as err:
            raise FormatError(str(path), i, f"bad host record: {err}") from None
    return out


def show(host: Host) -> str:
    """The host laid out for a writer: [p.s] before each sentence (paragraph p, sentence s)."""
    lines = [f"# {host.id}  ({host.outlet}, {host.date})"]
    for p, para in enumerate(host.paragraphs):
        sents = segment(para)
        lines.append("")
        lines.append(" ".join(f"[{p}.{s}] {sp.text}" for s, sp in enumerate(sents)) + f"  [{p}.{len(sents)}]")
    return "\n".join(lines)
