"""The release rule (issue 20): does a candidate bundle replace the shipped one?

    mudraj gate --candidate runs/X-candidate \
        --shipped-test reports/e5-small/test-v3-corpus --shipped-old reports/e5-small/test \
        --candidate-test reports/X/test --candidate-old reports/X/test-v1-corpus

Each model has two reports (folders with report.json): `mudraj evaluate` on the extended test split
with `--genuine build/corpus/genuine-test.jsonl`, and on the old out-of-outlet test (the first
corpus's test split), the same articles for both models. The candidate ships when all of these hold:
(a) F1 on the test-only voices at the calibrated threshold >= shipped + 0.03;
(b) genuine benchmark (test-outlet half): sentences flagged <= shipped and <= 1.5%, articles flagged <= shipped;
(c) old out-of-outlet test F1 >= shipped - 0.02;
(d) recall >= 0.5 on every kind with >= 30 test insertions;
(e) bundle <= 40 MB, and speed >= the shipped model's on this CPU (measured here, rounds interleaved).
`mudraj diff` stays as information.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from serving.errors import InputError, MissingError

MIN_UNSEEN_GAIN = 0.03
MAX_GENUINE_FLAGGED = 0.015
MAX_OLD_TEST_DROP = 0.02
MIN_KIND_RECALL, MIN_KIND_COUNT = 0.5, 30
MAX_BUNDLE_BYTES = 40 * 1024 * 1024


def _report(folder: Path) -> dict:
    path = Path(folder) / "report.json" if Path(folder).is_dir() else Path(folder)
    if not path.is_file():
        raise MissingError(f"{path} is missing: run `mudraj evaluate` into {path.parent} first")
    return json.loads(path.read_text(encoding="utf-8"))


def bundle_bytes(bundle: Path) -> int:
    """What a user downloads: the int8 model, tokenizer and metadata (the shipped layout; fp32 not counted)."""
    from serving.bundle import METADATA, MODEL_FILES

    names = (MODEL_FILES["int8"], "tokenizer.json", METADATA)
    return sum((Path(bundle) / n).stat().st_size for n in names if (Path(bundle) / n).is_file())


def speed(bundles: dict[str, Path], data: Path, articles: int = 60, rounds: int = 3) -> dict[str, float]:
    """Sentences per second of each bundle's int8 predictor on the same articles, rounds interleaved
    (so that a change in machine load hits both)."""
    from serving.predictor import Predictor
    from training.corpus.articles import load_articles

    texts = [[s.text for s in a.sentences] for a in load_articles([data])[:articles]]
    n = sum(len(t) for t in texts)
    preds = {k: Predictor(b, precision="int8") for k, b in bundles.items()}
    for p in preds.values():
        p.score_articles(texts[:2])  # warm-up
    best = {k: float("inf") for k in preds}
    for _ in range(rounds):
        for k, p in preds.items():
            t0 = time.perf_counter()
            p.score_articles(texts)
            best[k] = min(best[k], time.perf_counter() - t0)
    return {k: n / v for k, v in best.items()}


def _same_articles(a: dict, b: dict) -> bool:
    """Reports of the same articles: the same article, sentence and inserted counts (paths differ by machine)."""
    keys = ("articles", "sentences", "inserted")
    return all(a["test"].get(k) == b["test"].get(k) for k in keys)


def decide(shipped: dict, candidate: dict, sizes: dict[str, int], speeds: dict[str, float]) -> dict:
    """The rule's verdict. shipped/candidate: {"test": report, "old": report}. Each rule: passed, and the
    numbers it compared."""
    s, c = shipped["test"], candidate["test"]
    for who, r in (("shipped", s), ("candidate", c)):
        if not r.get("unseen_writers") or not r.get("genuine"):
            raise InputError(
                f"the {who} test report lacks the unseen-writer or genuine-benchmark section: "
                "evaluate with the current corpus and --genuine"
            )
    if not (
        _same_articles(s, c)
        and s["genuine"]["all"]["sentences"] == c["genuine"]["all"]["sentences"]
        and s["genuine"]["all"]["articles"] == c["genuine"]["all"]["articles"]
    ):
        raise InputError("the two test reports were not made on the same articles")
    rules = {}
    su, cu = s["unseen_writers"]["pooled"]["f1"], c["unseen_writers"]["pooled"]["f1"]
    rules["a_unseen_writers_f1"] = {
        "passed": cu >= su + MIN_UNSEEN_GAIN,
        "shipped": su,
        "candidate": cu,
        "needed": su + MIN_UNSEEN_GAIN,
    }
    sg, cg = s["genuine"]["all"], c["genuine"]["all"]
    rules["b_genuine_false_alarms"] = {
        "passed": cg["sentences_flagged"] <= min(sg["sentences_flagged"], MAX_GENUINE_FLAGGED)
        and cg["articles_flagged"] <= sg["articles_flagged"],
        "shipped": {"sentences": sg["sentences_flagged"], "articles": sg["articles_flagged"]},
        "candidate": {"sentences": cg["sentences_flagged"], "articles": cg["articles_flagged"]},
        "cap_sentences": MAX_GENUINE_FLAGGED,
    }
    so, co = shipped["old"]["test"]["f1"], candidate["old"]["test"]["f1"]
    rules["c_old_test_f1"] = {
        "passed": co >= so - MAX_OLD_TEST_DROP,
        "shipped": so,
        "candidate": co,
        "needed": so - MAX_OLD_TEST_DROP,
    }
    kinds = {k: m for k, m in c["per_kind"].items() if m["inserted"] >= MIN_KIND_COUNT}
    weak = {k: m["recall"] for k, m in kinds.items() if m["recall"] < MIN_KIND_RECALL}
    rules["d_recall_per_kind"] = {
        "passed": not weak,
        "kinds_checked": len(kinds),
        "below": weak,
        "min": MIN_KIND_RECALL,
    }
    rules["e_size_and_speed"] = {
        "passed": sizes["candidate"] <= MAX_BUNDLE_BYTES and speeds["candidate"] >= speeds["shipped"],
        "bytes": sizes,
        "sentences_per_second": {k: round(v, 1) for k, v in speeds.items()},
    }
    return {"ship": all(r["passed"] for r in rules.values()), "rules": rules}


def render(verdict: dict) -> str:
    """The verdict as a Markdown table."""
    lines = ["| rule | passed | shipped | candidate | needed |", "|---|---|---|---|---|"]
    r = verdict["rules"]
    a = r["a_unseen_writers_f1"]
    lines.append(
        f"| (a) F1, test-only voices | {a['passed']} | {a['shipped']:.3f} | {a['candidate']:.3f} | "
        f">= {a['needed']:.3f} |"
    )
    b = r["b_genuine_false_alarms"]
    lines.append(
        f"| (b) genuine text: sentences / articles flagged | {b['passed']} | "
        f"{b['shipped']['sentences']:.2%} / {b['shipped']['articles']:.1%} | "
        f"{b['candidate']['sentences']:.2%} / {b['candidate']['articles']:.1%} | "
        f"<= shipped and <= {b['cap_sentences']:.1%} |"
    )
    c = r["c_old_test_f1"]
    lines.append(
        f"| (c) old out-of-outlet test F1 | {c['passed']} | {c['shipped']:.3f} | {c['candidate']:.3f} | "
        f">= {c['needed']:.3f} |"
    )
    d = r["d_recall_per_kind"]
    below = ", ".join(f"{k} {v:.3f}" for k, v in d["below"].items()) or "none"
    lines.append(
        f"| (d) recall >= {d['min']} on every kind with >= {MIN_KIND_COUNT} insertions | {d['passed']} | | "
        f"{d['kinds_checked']} kinds; below: {below} | |"
    )
    e = r["e_size_and_speed"]
    sp = e["sentences_per_second"]
    lines.append(
        f"| (e) size, speed (sentences/s, this CPU) | {e['passed']} | {e['bytes']['shipped'] / 2**20:.1f} MB, "
        f"{sp['shipped']} | {e['bytes']['candidate'] / 2**20:.1f} MB, {sp['candidate']} | <= 40 MB, >= shipped |"
    )
    lines.append("")
    lines.append(f"**Decision: {'ship the candidate' if verdict['ship'] else 'keep the shipped model'}.**")
    return "\n".join(lines) + "\n"


def gate(shipped_bundle: Path, candidate_bundle: Path, reports: dict[str, Path], speed_data: Path) -> dict:
    """reports: shipped_test, shipped_old, candidate_test, candidate_old (report folders or files)."""
    shipped = {"test": _report(reports["shipped_test"]), "old": _report(reports["shipped_old"])}
    candidate = {"test": _report(reports["candidate_test"]), "old": _report(reports["candidate_old"])}
    if not _same_articles(shipped["old"], candidate["old"]):
        raise InputError("the two old-test reports were not made on the same articles")
    sizes = {"shipped": bundle_bytes(shipped_bundle), "candidate": bundle_bytes(candidate_bundle)}
    speeds = speed({"shipped": Path(shipped_bundle), "candidate": Path(candidate_bundle)}, speed_data)
    return decide(shipped, candidate, sizes, speeds)
