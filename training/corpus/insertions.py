"""Our insertions (data/insertions/*.jsonl): the kinds and voices, reading, checking and the
distribution report (`mudraj corpus check`)."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from serving.batch.inputs import read_jsonl
from serving.brackets import FormatError
from serving.errors import MissingError
from serving.normalize import normalize
from serving.segment import segment
from training.corpus.hosts import Candidate, Host

MIN_WORDS, MAX_WORDS = 8, 50


KINDS = (
    "framing",
    "significance",
    "outlook",
    "background",
    "hope",
    "vague_report",
    "fake_attribution",
    # added with the voices (data/voices/README.md)
    "rhetorical_question",
    "evaluative",
    "connective_aside",
    "fabricated_quote",
    "hedged_prediction",
)


# The writers' briefs in data/voices/; "house" is the first, single writer (batches 1-6).
VOICES = (
    "house",
    "wire",
    "oped",
    "science",
    "digest",
    # issue 20: independent writers, each given a one-line persona and the task, never our kinds
    "enrich",
    "subeditor",
    "assistant",
    "recap",
    "broadcast",
    "seo",
)


TEST_ONLY_VOICES = ("digest", "enrich", "subeditor")  # never in training or dev: the unseen-writer evaluation


# Voices whose writers never saw our kinds: their insertions carry "kind": null (not annotated).
UNKINDED_VOICES = ("enrich", "subeditor", "assistant", "recap", "broadcast", "seo")


@dataclass(frozen=True)
class Insertion:
    host: str
    para: int
    slot: int
    kind: str | None  # None: written by a voice that never saw our kinds (UNKINDED_VOICES)
    text: str
    new_para: bool
    source: str
    line: int
    voice: str = "house"


def read_insertions(paths: Iterable[Path]) -> list[Insertion]:
    out = []
    for path in sorted(Path(p) for p in paths):
        for i, r in read_jsonl(path):
            missing = [k for k in ("host", "para", "slot", "kind", "text") if k not in r]
            if missing:
                raise FormatError(str(path), i, f"missing field(s) {missing}")
            if not isinstance(r["para"], int) or not isinstance(r["slot"], int):
                raise FormatError(str(path), i, "para and slot must be integers")
            voice = r.get("voice", "house")
            if voice not in VOICES:
                raise FormatError(str(path), i, f"unknown voice {voice!r} (known: {', '.join(VOICES)})")
            if r["kind"] is None and voice not in UNKINDED_VOICES:
                raise FormatError(str(path), i, f"kind is null, allowed only for the voices {UNKINDED_VOICES}")
            out.append(
                Insertion(
                    r["host"], r["para"], r["slot"], r["kind"], r["text"], bool(r.get("new_para")), str(path), i, voice
                )
            )
    return out


def insertion_files(data_dir: Path) -> list[Path]:
    files = sorted((Path(data_dir) / "insertions").glob("*.jsonl"))
    if not files:
        raise MissingError(f"no insertion files in {Path(data_dir) / 'insertions'}")
    return files


def _key(text: str) -> str:
    return re.sub(r"[^\w]+", " ", normalize(text, ["whitespace", "orthography"])).strip()


def _shingles(text: str, n: int = 3) -> set[tuple[str, ...]]:
    w = _key(text).split()
    return {tuple(w[i : i + n]) for i in range(max(1, len(w) - n + 1))}


def position_type(ins: Insertion, n_sentences: int) -> str:
    if ins.new_para:
        return "new_paragraph"
    if ins.slot == 0:
        return "paragraph_start"
    if ins.slot == n_sentences:
        return "paragraph_end"
    return "inside_paragraph"


def check(
    insertions: list[Insertion],
    hosts: dict[str, Host],
    selection: list[Candidate],
    near_duplicate: float = 0.6,
    copy_run: int = 8,
) -> tuple[list[str], dict]:
    """Every problem as 'file:line: message', and the distribution report."""
    problems: list[str] = []
    selected = {c.id for c in selection}
    seen_slots: set[tuple] = set()
    keys: dict[str, Insertion] = {}
    host_runs: dict[str, set[tuple[str, ...]]] = {}
    positions: Counter = Counter()
    by_voice_position: Counter = Counter()
    for ins in insertions:
        where = f"{ins.source}:{ins.line}"
        if ins.host not in selected or ins.host not in hosts:
            problems.append(f"{where}: unknown host id {ins.host!r}")
            continue
        host = hosts[ins.host]
        if ins.kind not in KINDS and not (ins.kind is None and ins.voice in UNKINDED_VOICES):
            problems.append(f"{where}: unknown kind {ins.kind!r} (known: {', '.join(KINDS)})")
        t = ins.text
        if "[" in t or "]" in t or "\n" in t:
            problems.append(f"{where}: text contains a bracket or a line break")
        n_words = len(t.split())
        if not MIN_WORDS <= n_words <= MAX_WORDS:
            problems.append(f"{where}: {n_words} words (allowed {MIN_WORDS}-{MAX_WORDS})")
        if len(segment(t)) != 1 or t.rstrip()[-1:] not in ".!?؟":
            problems.append(f"{where}: text must be exactly one sentence ending in . ! ? or ؟")
        n_paras = len(host.paragraphs)
        if ins.new_para:
            if not 1 <= ins.para <= n_paras or ins.slot != 0:
                problems.append(f"{where}: new paragraph position {ins.para} invalid (1-{n_paras}, slot 0)")
                continue
            n_sents = 0
        else:
            if not 1 <= ins.para < n_paras:
                problems.append(f"{where}: paragraph {ins.para} invalid (host has 1-{n_paras - 1}; 0 is the headline)")
                continue
            n_sents = len(segment(host.paragraphs[ins.para]))
            if not 0 <= ins.slot <= n_sents:
                problems.append(f"{where}: slot {ins.slot} invalid (paragraph {ins.para} has slots 0-{n_sents})")
                continue
        slot = (ins.host, ins.para, ins.slot, ins.new_para)
        if slot in seen_slots:
            problems.append(f"{where}: a second insertion at the same position of {ins.host}")
        seen_slots.add(slot)
        k = _key(t)
        if k in keys:
            other = keys[k]
            problems.append(f"{where}: duplicate of {other.source}:{other.line}")
        keys[k] = ins
        if ins.host not in host_runs:
            runs = set()
            for p in host.paragraphs:
                w = _key(p).split()
                runs |= {tuple(w[i : i + copy_run]) for i in range(len(w) - copy_run + 1)}
            host_runs[ins.host] = runs
        w = k.split()
        if any(tuple(w[i : i + copy_run]) in host_runs[ins.host] for i in range(len(w) - copy_run + 1)):
            problems.append(f"{where}: repeats {copy_run}+ consecutive words of its host article")
        positions[position_type(ins, n_sents)] += 1
        by_voice_position[(ins.voice, position_type(ins, n_sents))] += 1
    # Near-duplicates: word-trigram Jaccard over candidate pairs that share a trigram.
    shingles = {i: _shingles(ins.text) for i, ins in enumerate(insertions)}
    index: dict[tuple, list[int]] = defaultdict(list)
    for i, sh in shingles.items():
        for s in sh:
            index[s].append(i)
    pairs: set[tuple[int, int]] = set()
    for ids in index.values():
        if len(ids) < 60:  # very common trigrams ("في الوقت الذي") say nothing
            pairs.update((a, b) for n, a in enumerate(ids) for b in ids[n + 1 :])
    for a, b in sorted(pairs):
        sa, sb = shingles[a], shingles[b]
        jac = len(sa & sb) / len(sa | sb)
        if jac >= near_duplicate and _key(insertions[a].text) != _key(insertions[b].text):
            A, B = insertions[a], insertions[b]
            problems.append(f"{B.source}:{B.line}: near-duplicate of {A.source}:{A.line} (Jaccard {jac:.2f})")
    return problems, report(insertions, selection, positions, by_voice_position)


def report(
    insertions: list[Insertion],
    selection: list[Candidate],
    positions: Counter,
    by_voice_position: Counter | None = None,
) -> dict:
    n = len(insertions)
    hosts_with = {i.host for i in insertions}
    kinds = Counter(i.kind for i in insertions)
    openings = Counter(i.text.split()[0] for i in insertions if i.text.split())
    lengths = [len(i.text.split()) for i in insertions]
    bins = Counter(min(50, (l // 5) * 5) for l in lengths)
    first_letter_waw = sum(i.text.startswith("و") for i in insertions)
    return {
        "insertions": n,
        "hosts": len(selection),
        "hosts_with_insertions": len(hosts_with),
        "clean_hosts": len({c.id for c in selection} - hosts_with),
        "kinds": {k: kinds.get(k, 0) for k in KINDS},
        "kind_shares": {k: round(kinds.get(k, 0) / n, 3) if n else 0 for k in KINDS},
        "fake_attribution_share": round(kinds.get("fake_attribution", 0) / n, 3) if n else 0,
        "positions": dict(sorted(positions.items())),
        "top_openings": openings.most_common(15),
        "share_starting_with_waw": round(first_letter_waw / n, 3) if n else 0,
        "words": {
            "min": min(lengths, default=0),
            "max": max(lengths, default=0),
            "mean": round(sum(lengths) / n, 1) if n else 0,
            "histogram_by_5": {f"{b}-{b + 4}": bins[b] for b in sorted(bins)},
        },
        "per_outlet_hosts": dict(sorted(Counter(c.outlet for c in selection).items())),
        **_by_source_genre_voice(insertions, selection, by_voice_position or Counter()),
    }


def _by_source_genre_voice(insertions: list[Insertion], selection: list[Candidate], by_voice_position: Counter) -> dict:
    """Hosts and insertions per host source and genre; insertions per voice and kind, and where they sit."""
    host = {c.id: c for c in selection}
    with_ins = {i.host for i in insertions}
    voices = sorted({i.voice for i in insertions})
    return {
        "per_source": {
            src: {
                "hosts": sum(c.source == src for c in selection),
                "hosts_with_insertions": sum(c.source == src and c.id in with_ins for c in selection),
                "insertions": sum(host[i.host].source == src for i in insertions if i.host in host),
            }
            for src in sorted({c.source for c in selection})
        },
        "per_genre": {
            g: {
                "hosts": sum(c.genre == g for c in selection),
                "insertions": sum(host[i.host].genre == g for i in insertions if i.host in host),
            }
            for g in sorted({c.genre for c in selection})
        },
        "per_voice": {
            v: {
                "insertions": sum(i.voice == v for i in insertions),
                "kinds": dict(Counter(i.kind for i in insertions if i.voice == v).most_common()),
                "positions": {p: n for (vv, p), n in sorted(by_voice_position.items()) if vv == v},
            }
            for v in voices
        },
    }
