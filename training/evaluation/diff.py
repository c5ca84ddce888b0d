"""Two evaluation reports of the same articles, cell by cell: is the new model at least as good?

    mudraj diff reports/e5-small/test-v2-corpus/report.json reports/e5-small-v2/test/report.json

Every cell both reports have is compared: the headline metrics, and each row of the per-source,
per-genre, per-voice, per-kind and hard-negative tables. Each difference is set against its own
sampling noise (one binomial standard error of the old value, over the sentences the cell counts; a rate of 0
or 1 counts as one event in n),
so a cell is `worse` only when it drops by more than that, `within noise` when it drops by less.
"""

from __future__ import annotations

import math

# metric -> (higher is better, what it counts for the standard error)
METRICS = {
    "f1": (True, "inserted"),
    "precision": (True, "inserted"),
    "recall": (True, "inserted"),
    "false_alarm_rate": (False, "reporting"),
    "pr_auc": (True, "inserted"),
    "roc_auc": (True, "inserted"),
    "clean_articles_with_false_alarm": (False, "clean_articles"),
    "article_detection_rate": (True, "articles"),
}
TABLES = ("per_source", "per_genre", "per_voice", "per_kind")


def _cells(report: dict) -> dict[tuple[str, str], tuple[float, int]]:
    """(table, metric) -> (value, how many sentences or articles it is measured on)."""
    out = {}
    test = report["test"]
    n = {
        "inserted": test["inserted"],
        "reporting": test["sentences"] - test["inserted"],
        "articles": test.get("articles", 0),
        "clean_articles": test.get("clean_articles", 0),
    }
    for m, (_, what) in METRICS.items():
        if test.get(m) is not None:
            out[("overall", m)] = (float(test[m]), int(n[what]))
    for table in TABLES:
        for name, row in (report.get(table) or {}).items():
            counts = {"inserted": row.get("inserted", 0), "reporting": row["sentences"] - row.get("inserted", 0)}
            for m in ("f1", "precision", "recall", "false_alarm_rate"):
                if row.get(m) is not None:
                    out[(f"{table.removeprefix('per_')}: {name}", m)] = (float(row[m]), int(counts[METRICS[m][1]]))
    hard = report.get("hard_negatives") or {}
    if hard.get("false_alarm_rate") is not None:
        out[("hard negatives", "false_alarm_rate")] = (float(hard["false_alarm_rate"]), int(hard["sentences"]))
    for shape, row in (hard.get("per_shape") or {}).items():
        out[(f"hard negatives: {shape}", "false_alarm_rate")] = (float(row["false_alarm_rate"]), int(row["sentences"]))
    return out


def diff(old: dict, new: dict) -> list[dict]:
    """One row per cell both reports have: old, new, the change, its noise, and a verdict."""
    a, b = _cells(old), _cells(new)
    rows = []
    for key in [k for k in a if k in b]:
        (va, n), (vb, _) = a[key], b[key]
        higher = METRICS[key[1]][0]
        gain = (vb - va) if higher else (va - vb)  # > 0: better
        # A rate of 0 or 1 has no spread of its own: one event in n is the least it can move by.
        p = min(max(va, 1 / n), 1 - 1 / n) if n > 1 else va
        noise = max(math.sqrt(p * (1 - p) / n), 1 / n) if n and 0 <= va <= 1 else 0.0
        verdict = (
            "better" if gain > 0 else "same" if gain == 0 else ("within noise" if -gain <= noise + 1e-12 else "worse")
        )
        rows.append(
            {
                "cell": key[0],
                "metric": key[1],
                "old": va,
                "new": vb,
                "gain": gain,
                "noise": noise,
                "n": n,
                "verdict": verdict,
            }
        )
    return rows


def markdown(rows: list[dict], old_name: str, new_name: str) -> str:
    counts = {v: sum(r["verdict"] == v for r in rows) for v in ("better", "same", "within noise", "worse")}
    lines = [
        f"{len(rows)} cells: " + ", ".join(f"{n} {v}" for v, n in counts.items()),
        "",
        f"| cell | metric | {old_name} | {new_name} | change (+ is better) | noise (1 s.e.) | n | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['cell']} | {r['metric']} | {r['old']:.3f} | {r['new']:.3f} | {r['gain']:+.3f} | "
            f"{r['noise']:.3f} | {r['n']} | {'**worse**' if r['verdict'] == 'worse' else r['verdict']} |"
        )
    return "\n".join(lines) + "\n"
