"""Genuine articles: human-written news and commentary that carries no insertion (issue 20).

    mudraj corpus genuine        # writes data/genuine.jsonl (ids, reasons, scores; no text)
    mudraj corpus build          # also writes build/corpus/genuine-{train,dev,test}.jsonl

Two uses, kept apart by outlet:
- **Negatives for training** (outlets of the train split only): (a) articles in which the shipped
  model flags a sentence (hard negatives), (b) opinion, analysis and explainer pieces (few attribution
  cues), balanced over genres. Every sentence of such an article is `reporting`: journalists' own
  background, expectation and judgement are not insertions. The trainer draws a share of them
  (`genuine_fraction` in the config).
- **The false-alarm benchmark** (outlets of the dev and test splits): every usable genuine article
  there that is neither a host nor mined. The dev-outlet half sets the threshold (at most 1% of
  genuine sentences flagged, training/ship/calibrate.py), the test-outlet half is reported.
Only articles dated before November 2022 (before AI assistants made such insertions common) are used;
hosts, rejected pages, evaluation-only outlets and duplicate texts never are.
"""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

from serving.batch.inputs import read_jsonl
from serving.brackets import FormatError
from serving.errors import InputError, MissingError
from training.defaults import CORPORA, DATA, GENRE_CACHE, HOST_SEED

GENUINE_FILE = DATA / "genuine.jsonl"
CUTOFF = "2022-11"  # text dated in or after this month is not trusted to be free of AI insertions
ROLES = ("negative", "benchmark")


@dataclass(frozen=True)
class Genuine:
    id: str
    outlet: str
    source: str
    sha256: str
    split: str  # the outlet's split: train (negatives) or dev/test (benchmark)
    role: str  # "negative" or "benchmark"
    reason: str  # negative: "flagged" and/or "opinion"; benchmark: "benchmark"
    style: str  # news / opinion (attribution cues, training/corpus/hosts.py)
    genre: str
    n_sentences: int
    max_score: float | None = None  # the shipped model's highest P(inserted) in the article, when scored


def article_text(paragraphs: Iterable[str]) -> str:
    """The article as the corpus lays it out: paragraphs split by a blank line; square brackets mark
    insertions in our formats, so the article's own become parentheses (as in corpus.assemble)."""
    return "\n\n".join(p.replace("[", "(").replace("]", ")") for p in paragraphs)


def before_cutoff(host) -> bool:
    """Dated before CUTOFF. ArMPro (2020-22) must carry a readable date; SaudiNewsNet (2015) and baly2018
    (2011-18, no dates) predate it by provenance, unless a readable date says otherwise."""
    from training.corpus.sources import year_month

    ym = year_month(host.date)
    if ym is None:
        return host.source != "armpro"
    return ym < CUTOFF


def pool(corpora: Path = CORPORA, data_dir: Path = DATA) -> list[tuple]:
    """(Candidate, Host, split) for every usable genuine article that is not a host: deduplicated by
    content (hosts' texts count as seen), dated before CUTOFF, not rejected."""
    from training.corpus.hosts import assess, read_selection
    from training.corpus.selection import read_rejected
    from training.corpus.sources import iter_hosts
    from training.corpus.splits import read_splits, split_of

    data_dir = Path(data_dir)
    selection = read_selection(data_dir / "hosts.jsonl")
    selected = {c.id for c in selection}
    seen = {c.sha256 for c in selection}
    rejected = read_rejected(data_dir / "rejected_hosts.txt")
    splits = read_splits(data_dir / "splits.json")
    out = []
    for h in iter_hosts(corpora):
        if h.id in selected or h.id in rejected or h.sha256 in seen:
            continue
        if not before_cutoff(h):
            continue
        seen.add(h.sha256)
        c = assess(h)
        if c is not None:
            out.append((c, h, split_of(c.outlet, splits)))
    return out


def _balanced(cands: list, n: int, key, rng: random.Random) -> list:
    """Up to n items, round-robin over the groups of `key` (the scarcest groups are taken whole)."""
    groups: dict[str, list] = defaultdict(list)
    for c in sorted(cands, key=lambda c: c.id):
        groups[key(c)].append(c)
    for g in groups.values():
        rng.shuffle(g)
    out: list = []
    while len(out) < n and any(groups.values()):
        for g in sorted(groups):
            if groups[g] and len(out) < n:
                out.append(groups[g].pop())
    return out


def select(
    pooled: list[tuple],
    genre_of,
    score_of,
    n_opinion: int = 3000,
    n_scored: int = 2000,
    flag_at: float | None = None,
    seed: int = HOST_SEED,
) -> list[Genuine]:
    """The genuine records: negatives from train outlets, the benchmark from dev and test outlets.

    genre_of(list of (Candidate, Host)) -> {sha256: genre}; score_of(list of Host) -> {id: max P(inserted)}.
    Negatives: n_opinion opinion pieces balanced over genres, plus every article among n_scored drawn
    train-outlet articles (news and opinion) in which the shipped model flags a sentence (P >= flag_at).
    Only the drawn articles are scored (max_score is None for the others)."""
    rng = random.Random(seed)
    train = [(c, h) for c, h, s in pooled if s == "train"]
    bench = [(c, h, s) for c, h, s in pooled if s != "train"]
    opinion = [(c, h) for c, h in train if c.style == "opinion"]
    genres = genre_of(opinion + [(c, h) for c, h, _ in bench])
    picked_op = _balanced([c for c, _ in opinion], n_opinion, lambda c: genres[c.sha256], rng)
    drawn = sorted(train, key=lambda p: p[0].id)
    rng.shuffle(drawn)
    drawn = drawn[:n_scored]
    by_id = {c.id: (c, h) for c, h in train}
    to_score = {c.id for c, _ in drawn}
    scores = score_of([by_id[i][1] for i in sorted(to_score)])
    flagged = {i for i in to_score if flag_at is not None and scores[i] >= flag_at}
    need = [(c, h) for c, h in drawn if c.id in flagged and c.sha256 not in genres]
    genres.update(genre_of(need) if need else {})
    opinion_ids = {c.id for c in picked_op}
    out = []
    for i in sorted(opinion_ids | flagged):
        c, _ = by_id[i]
        reason = "+".join(r for r, ok in (("flagged", i in flagged), ("opinion", i in opinion_ids)) if ok)
        score = round(float(scores[i]), 4) if i in scores else None
        out.append(
            Genuine(
                c.id,
                c.outlet,
                c.source,
                c.sha256,
                "train",
                "negative",
                reason,
                c.style,
                genres[c.sha256],
                c.n_sentences,
                score,
            )
        )
    for c, _, s in sorted(bench, key=lambda p: p[0].id):
        out.append(
            Genuine(
                c.id,
                c.outlet,
                c.source,
                c.sha256,
                s,
                "benchmark",
                "benchmark",
                c.style,
                genres[c.sha256],
                c.n_sentences,
            )
        )
    return out


def write(records: list[Genuine], path: Path = GENUINE_FILE) -> None:
    from serving.batch.io import atomic_write_text

    atomic_write_text(Path(path), "".join(json.dumps(asdict(r), ensure_ascii=False) + "\n" for r in records))


def read(path: Path = GENUINE_FILE) -> list[Genuine]:
    path = Path(path)
    if not path.is_file():
        raise MissingError(f"{path} is missing: make it with `mudraj corpus genuine`")
    out = []
    for i, rec in read_jsonl(path):
        try:
            g = Genuine(**rec)
        except TypeError as err:
            raise FormatError(str(path), i, f"bad genuine-article record: {err}") from None
        if g.role not in ROLES:
            raise FormatError(str(path), i, f"role must be one of {ROLES}, got {g.role!r}")
        if (g.role == "negative") != (g.split == "train"):
            raise FormatError(
                str(path),
                i,
                f"{g.id}: negatives come from train outlets only, the benchmark "
                f"from dev and test outlets (role {g.role!r}, split {g.split!r})",
            )
        out.append(g)
    return out


def articles(records: list[Genuine], corpora: Path = CORPORA) -> dict[str, list[dict]]:
    """Corpus rows (bracket-free text, every sentence reporting) by file name: genuine-train (the
    negatives), genuine-dev and genuine-test (the benchmark halves). Refuses texts that changed."""
    from training.corpus.sources import load_hosts

    hosts = load_hosts({r.id for r in records}, corpora)
    changed = [r.id for r in records if hosts[r.id].sha256 != r.sha256]
    if changed:
        raise InputError(f"{len(changed)} genuine articles differ from their recorded content hash, e.g. {changed[:3]}")
    out: dict[str, list[dict]] = {"genuine-train": [], "genuine-dev": [], "genuine-test": []}
    for r in sorted(records, key=lambda r: r.id):
        out[f"genuine-{r.split}"].append(
            {
                "id": r.id,
                "text": article_text(hosts[r.id].paragraphs),
                "outlet": r.outlet,
                "source": r.source,
                "genre": r.genre,
                "style": r.style,
                "reason": r.reason,
                "kinds": [],
                **({"date": hosts[r.id].date[:10]} if hosts[r.id].date else {}),
            }
        )
    return out


def summary(records: list[Genuine]) -> dict:
    """Counts for the data card and the command's output."""
    out: dict = {}
    for role in ROLES:
        rs = [r for r in records if r.role == role]
        out[role] = {
            "articles": len(rs),
            "sentences": sum(r.n_sentences for r in rs),
            "per_split": dict(Counter(r.split for r in rs)),
            "per_source": dict(Counter(r.source for r in rs)),
            "per_style": dict(Counter(r.style for r in rs)),
            "per_genre": dict(Counter(r.genre for r in rs).most_common()),
            "outlets": len({r.outlet for r in rs}),
        }
        if role == "negative":
            out[role]["per_reason"] = dict(Counter(r.reason for r in rs))
    return out


def genres_with_cache(cache: Path = GENRE_CACHE):
    """genre_of for `select`: the zero-shot genre classifier with the selection's cache."""
    from training.corpus.selection import genres_for

    return lambda pairs: genres_for(pairs, cache)


def shipped_scorer(bundle: Path):
    """score_of for `select`: the highest P(inserted) the bundle gives a sentence of each article."""
    from tqdm import tqdm

    from serving.predictor import Predictor

    predictor = Predictor(bundle)

    def score_of(hosts) -> dict[str, float]:
        out = {}
        for h in tqdm(hosts, desc="scoring genuine articles", unit=" articles"):
            preds = predictor.predict_texts([article_text(h.paragraphs)])[0]
            out[h.id] = max((p.score for p in preds), default=0.0)
        return out

    return predictor, score_of
