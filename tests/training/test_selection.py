"""Host selection across sources: genre balance, outlet caps, and outlet splits."""

from collections import Counter

from training.corpus.hosts import Candidate
from training.corpus.selection import SCIENCE, assign_splits, balance


def cand(i, source, outlet, genre):
    return Candidate(f"{source}-{i}", outlet, f"{i:064x}", 10, 3, 2, "news", source, genre)


def test_balance_keeps_existing_prefers_non_politics_and_fills_short_genres():
    existing = [cand(i, "saudinewsnet", f"s{i % 4}", "politics" if i % 2 else "sport") for i in range(40)]
    new = {
        "baly2018": [cand(100 + i, "baly2018", f"b{i % 10}", "politics" if i < 80 else "society") for i in range(100)]
    }
    fill = [
        cand(1000 + i, "saudinewsnet", f"s{i % 4}", g)
        for i, g in enumerate(
            ["health"] * 30 + ["environment"] * 30 + ["science_technology"] * 30 + ["culture"] * 30 + ["economy"] * 30
        )
    ]
    chosen = balance(
        existing,
        new,
        fill,
        per_source=40,
        max_per_outlet=6,
        min_genre_share=0.08,
        min_science_share=0.2,
        max_fill=200,
        seed=1,
    )
    ids = {c.id for c in chosen}
    assert {c.id for c in existing} <= ids  # what has insertions stays
    baly = [c for c in chosen if c.source == "baly2018"]
    assert len(baly) == 40 and max(Counter(c.outlet for c in baly).values()) <= 6
    assert sum(c.genre == "society" for c in baly) == 20  # all non-politics first, then politics
    genres = Counter(c.genre for c in chosen)
    assert all(genres[g] >= 0.08 * len(chosen) for g in genres)
    assert sum(genres[g] for g in SCIENCE) >= 0.2 * len(chosen)
    assert balance(existing, new, fill, per_source=40, max_per_outlet=6, seed=1) == balance(
        existing, new, fill, per_source=40, max_per_outlet=6, seed=1
    )  # seeded


def test_new_outlets_get_whole_splits_and_shared_outlets_one_split():
    sel = [cand(i, "baly2018", f"o{i % 20}", "politics") for i in range(200)]
    sel += [cand(500 + i, "armpro", f"o{i % 3}" if i < 6 else f"a{i}", "health") for i in range(30)]
    sel += [cand(900 + i, "saudinewsnet", "okaz", "sport") for i in range(10)]
    out = assign_splits(sel, {"test": ["almadina"], "dev": ["okaz"]}, seed=3)
    assert "almadina" in out["test"] and "okaz" in out["dev"]  # earlier choices stay
    assert not set(out["test"]) & set(out["dev"])
    for source, n in (("baly2018", 200), ("armpro", 30)):
        hosts = [c for c in sel if c.source == source]
        in_test = sum(c.outlet in out["test"] for c in hosts)
        in_dev = sum(c.outlet in out["dev"] for c in hosts)
        assert 0 < in_test <= 0.2 * n + 10 and 0 < in_dev <= 0.1 * n + 10, (source, in_test, in_dev)
    assert assign_splits(sel, {"test": ["almadina"], "dev": ["okaz"]}, seed=3) == out
