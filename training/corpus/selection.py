"""Choosing host articles from all sources, with a genre for each and the genres in balance.

    mudraj corpus select            # extends data/hosts.jsonl and data/splits.json

What it keeps and adds:
- every host already in data/hosts.jsonl (their insertions are written): only their genre is filled in;
- from each new source (baly2018, ArMPro), up to `per_source` hosts that pass `hosts.assess`,
  deduplicated by content, at most `max_per_outlet` from one outlet, the non-politics genres first
  (these sources are mostly politics);
- SaudiNewsNet hosts of the genres still short, until every genre holds at least `min_genre_share`
  of all hosts and science/technology + health + environment together at least `min_science_share`.
New outlets are assigned to the dev and test splits (about 10% and 20% of each new source's hosts,
whole outlets, seeded) in data/splits.json; outlets already there keep their split.

Genres come from training/corpus/genres.py (zero-shot, e5 backbone) and are cached by content hash in
build/genres.jsonl, so a rerun only embeds hosts it has not seen.
"""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Iterable

from serving.errors import InputError
from training.corpus.hosts import Candidate, Host, assess
from training.defaults import CORPORA, GENRE_CACHE, HOST_SEED, N_HOSTS

SCIENCE = ("science_technology", "health", "environment")


def candidates(hosts: Iterable[Host]) -> dict[str, tuple[Candidate, Host]]:
    """Usable hosts by id, deduplicated by content (the first of identical texts wins)."""
    seen: set[str] = set()
    out = {}
    for h in hosts:
        if h.sha256 in seen:
            continue
        seen.add(h.sha256)
        c = assess(h)
        if c is not None:
            out[h.id] = (c, h)
    return out


def genres_for(pairs: list[tuple[Candidate, Host]], cache: Path, classifier=None, batch: int = 32) -> dict[str, str]:
    """sha256 -> genre for every host, from the cache or computed (and cached, line by line)."""
    from tqdm import tqdm

    from training.corpus.genres import GenreClassifier, host_text

    cache = Path(cache)
    known: dict[str, str] = {}
    if cache.is_file():
        for line in cache.read_text(encoding="utf-8").splitlines():
            if line.strip():
                r = json.loads(line)
                known[r["sha256"]] = r["genre"]
    todo = [(c, h) for c, h in pairs if c.sha256 not in known]
    if todo:
        clf = classifier or GenreClassifier()
        cache.parent.mkdir(parents=True, exist_ok=True)
        with open(cache, "a", encoding="utf-8") as f, tqdm(total=len(todo), desc="genres", unit=" hosts") as bar:
            for b in range(0, len(todo), batch):
                chunk = todo[b : b + batch]
                for (c, _), g in zip(chunk, clf.predict([host_text(h.paragraphs) for _, h in chunk])):
                    known[c.sha256] = g
                    f.write(json.dumps({"sha256": c.sha256, "id": c.id, "genre": g}) + "\n")
                f.flush()  # a killed run keeps what it computed
                bar.update(len(chunk))
    return {c.sha256: known[c.sha256] for c, _ in pairs}


def _take(pool: list[Candidate], n: int, max_per_outlet: int, have: Counter) -> list[Candidate]:
    out = []
    for c in pool:
        if len(out) >= n:
            break
        if have[c.outlet] < max_per_outlet:
            out.append(c)
            have[c.outlet] += 1
    return out


def balance(
    existing: list[Candidate],
    new: dict[str, list[Candidate]],
    fill: list[Candidate],
    per_source: int = 900,
    max_per_outlet: int = 15,
    min_genre_share: float = 0.08,
    min_science_share: float = 0.20,
    max_fill: int = 800,
    n_first: int = N_HOSTS,
    seed: int = HOST_SEED,
) -> list[Candidate]:
    """The selection: existing hosts, new-source hosts (non-politics first), then genre fill-up."""
    rng = random.Random(seed)
    chosen = list(existing)
    taken = {c.id for c in chosen}
    for source in sorted(new):
        pool = sorted((c for c in new[source] if c.id not in taken), key=lambda c: c.id)
        rng.shuffle(pool)
        pool.sort(key=lambda c: c.genre == "politics")  # stable: the rest first, in shuffled order
        # per_source counts the hosts a source already has: rerunning the selection adds nothing new.
        have = [c for c in chosen if c.source == source]
        picked = _take(pool, per_source - len(have), max_per_outlet, Counter(c.outlet for c in have))
        chosen += picked
        taken |= {c.id for c in picked}
    fill = sorted((c for c in fill if c.id not in taken), key=lambda c: c.id)
    max_fill -= sum(c.source == "saudinewsnet" for c in existing) - n_first  # fill-up already done counts
    rng.shuffle(fill)
    by_genre: dict[str, list[Candidate]] = defaultdict(list)
    for c in fill:
        by_genre[c.genre].append(c)
    added = 0
    while added < max_fill:
        counts = Counter(c.genre for c in chosen)
        total = len(chosen)
        short = [g for g in by_genre if by_genre[g] and counts[g] < min_genre_share * total]
        if sum(counts[g] for g in SCIENCE) < min_science_share * total:
            short += [g for g in SCIENCE if by_genre[g] and g not in short]
        if not short:
            break
        g = min(short, key=lambda g: counts[g])  # the scarcest first
        chosen.append(by_genre[g].pop())
        added += 1
    return sorted(chosen, key=lambda c: (c.source, c.outlet, c.id))


def assign_splits(
    selection: list[Candidate], splits: dict, shares: dict[str, float] | None = None, seed: int = HOST_SEED
) -> dict:
    """Give outlets not yet in splits.json a split: whole outlets, per source about `shares` of its hosts
    (an outlet already placed, by an earlier source or an earlier run, keeps its split everywhere).
    SaudiNewsNet's outlets were split by hand before and are left as they are."""
    shares = shares or {"test": 0.2, "dev": 0.1}
    out = {k: list(v) for k, v in splits.items()}
    placed = {o: k for k in ("test", "dev") for o in out.get(k, [])}
    rng = random.Random(seed)
    for source in sorted({c.source for c in selection} - {"saudinewsnet"}):
        hosts = [c for c in selection if c.source == source]
        per_outlet = Counter(c.outlet for c in hosts)
        got = Counter(placed[c.outlet] for c in hosts if c.outlet in placed)
        new_outlets = sorted(o for o in per_outlet if o not in placed and o not in saudi_outlets(selection))
        rng.shuffle(new_outlets)
        for o in new_outlets:
            want = next((k for k in ("test", "dev") if got[k] + per_outlet[o] <= shares[k] * len(hosts)), None)
            if want is not None:
                out.setdefault(want, []).append(o)
                placed[o] = want
                got[want] += per_outlet[o]
    return {k: sorted(v) if k in ("test", "dev") else v for k, v in out.items()}


def saudi_outlets(selection: list[Candidate]) -> set[str]:
    return {c.outlet for c in selection if c.source == "saudinewsnet"}


def summary(selection: list[Candidate]) -> dict:
    n = len(selection)
    genres = Counter(c.genre for c in selection)
    return {
        "hosts": n,
        "per_source": dict(Counter(c.source for c in selection)),
        "per_genre": {g: f"{k} ({k / n:.1%})" for g, k in genres.most_common()},
        "science_health_environment": f"{sum(genres[g] for g in SCIENCE) / max(1, n):.1%}",
        "per_style": dict(Counter(c.style for c in selection)),
        "outlets": len({c.outlet for c in selection}),
    }


def read_rejected(path: Path) -> set[str]:
    """Host ids never to select (data/rejected_hosts.txt: one id a line, '#' starts a comment)."""
    path = Path(path)
    if not path.is_file():
        return set()
    return {line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines()} - {""}


def select_all(
    existing: list[Candidate],
    corpora: Path = CORPORA,
    cache: Path = GENRE_CACHE,
    fill_sample: float = 0.08,
    rejected: set[str] = frozenset(),
    **kw,
) -> list[Candidate]:
    """Read every source, give every host a genre and choose (see `balance`). The hosts already
    selected stay, as recorded (their insertions are written), whatever today's filters say."""
    from training.corpus.sources import iter_hosts

    old = {c.id: c for c in existing}
    kept: dict[str, Host] = {}
    fresh = []
    for h in iter_hosts(corpora):
        if h.id in old:
            kept[h.id] = h
        elif h.id in rejected:
            continue
        elif h.source != "saudinewsnet" or int(h.sha256[:2], 16) < fill_sample * 256:
            # SaudiNewsNet's 31k articles are only a fill-up reserve: a fixed sample (by content hash) is
            # enough, and embedding them all would take an hour on a 2-core machine.
            fresh.append(h)
    missing = sorted(set(old) - set(kept))
    if missing:
        raise InputError(f"{len(missing)} hosts of the current selection are not in {corpora}, e.g. {missing[:3]}")
    seen = {h.sha256 for h in kept.values()}
    pool = candidates(h for h in fresh if h.sha256 not in seen)
    pairs = [(old[i], kept[i]) for i in sorted(kept)] + list(pool.values())
    genre = genres_for(pairs, cache)
    new: dict[str, list[Candidate]] = defaultdict(list)
    fill = []
    for c, _ in pool.values():
        c = replace(c, genre=genre[c.sha256])
        (fill if c.source == "saudinewsnet" else new[c.source]).append(c)
    return balance([replace(old[i], genre=genre[old[i].sha256]) for i in sorted(old)], dict(new), fill, **kw)
