"""`mudraj report OUT/`: what an archive's labels say, for a researcher (issue 24).

    mudraj predict archive/ -o labels.jsonl            # or --engine ray -o labels/ (parts), or Parquet
    mudraj report labels.jsonl -o report/              # report/index.html and report/groups.csv

Reads `mudraj predict` output: one JSONL or Parquet file, or a Ray output folder (its part-*.jsonl or
part-*.parquet, with _SUCCESS.json). Outlet, date and URL come from the input fields that predict
carries through. Writes one self-contained HTML page (figures inline, no request to any other host)
and a CSV of the groups:
- the inserted-sentence share per outlet and per month, with a 95% interval that treats articles as
  the sampled units (sentences of one article are not independent);
- the kinds of insertion per outlet (bundles with a kind head);
- the distribution of per-article scores (each article's highest sentence score);
- the articles to read first: most inserted sentences, then the highest score, with their flagged sentences.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from training.evaluation.archive_labels import ArticleRow, read_labels

Z95 = 1.959964


def share_interval(inserted: np.ndarray, sentences: np.ndarray) -> tuple[float, float, float]:
    """The inserted-sentence share of a group of articles and its 95% interval. Articles are the sampled units:
    a ratio estimator whose variance comes from the articles' residuals. It is never narrower than the Wilson
    interval on the sentences themselves: a few articles that happen to agree (two articles, 2 of 6 each)
    would otherwise claim certainty."""
    total = float(sentences.sum())
    if total == 0:
        return 0.0, 0.0, 0.0
    share = float(inserted.sum()) / total
    m = len(sentences)
    if m < 2:
        return share, 0.0, 1.0
    # Wilson score interval, sentences as independent draws
    centre = (share + Z95**2 / (2 * total)) / (1 + Z95**2 / total)
    half = Z95 * math.sqrt(share * (1 - share) / total + Z95**2 / (4 * total**2)) / (1 + Z95**2 / total)
    low, high = centre - half, centre + half
    resid = inserted - share * sentences
    se = math.sqrt(m / (m - 1) * float((resid**2).sum())) / total
    return share, max(0.0, min(low, share - Z95 * se)), min(1.0, max(high, share + Z95 * se))


def kinds_of(rows: list[ArticleRow]) -> Counter:
    total: Counter = Counter()
    for r in rows:
        total.update(r.kinds)  # in place: summing Counters copies the total once per article
    return total


def groups(rows: list[ArticleRow], key: str) -> list[dict]:
    members: dict[str, list[ArticleRow]] = defaultdict(list)
    for r in rows:
        g = getattr(r, key)
        if g:
            members[g].append(r)
    out = []
    for g, rs in members.items():
        ins = np.array([r.inserted for r in rs], float)
        n = np.array([r.n for r in rs], float)
        share, low, high = share_interval(ins, n)
        out.append(
            {
                "group": key,
                "name": g,
                "articles": len(rs),
                "sentences": int(n.sum()),
                "inserted": int(ins.sum()),
                "share": share,
                "low": low,
                "high": high,
                "articles_with_insertion": sum(r.inserted > 0 for r in rs),
                "kinds": dict(kinds_of(rs).most_common()),
            }
        )
    key_fn = (lambda d: d["name"]) if key == "month" else (lambda d: (-d["articles"], d["name"]))
    return sorted(out, key=key_fn)


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def figures(rows: list[ArticleRow], outlets: list[dict], months: list[dict], top_outlets: int = 25) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figs = {}
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.hist([r.max_score for r in rows], bins=40, range=(0, 1), color="#4a6fa5")
    ax.set_xlabel("highest sentence score of the article")
    ax.set_ylabel("articles")
    ax.set_title(f"Per-article scores ({len(rows):,} articles)")
    figs["scores"] = _png(fig)
    if outlets:
        shown = sorted(outlets[:top_outlets], key=lambda d: d["share"])
        fig, ax = plt.subplots(figsize=(7, 0.3 * len(shown) + 1))
        y = np.arange(len(shown))
        share = np.array([d["share"] for d in shown])
        err = np.array([[d["share"] - d["low"] for d in shown], [d["high"] - d["share"] for d in shown]])
        ax.barh(y, 100 * share, xerr=100 * err, color="#c9733d", ecolor="#333", capsize=2)
        ax.set_yticks(y, [f"{d['name']} ({d['articles']})" for d in shown])
        ax.set_xlabel("inserted sentences, % (95% interval)")
        ax.set_title(f"Per outlet (the {len(shown)} with most articles)")
        figs["outlets"] = _png(fig)
        kinds = sorted({k for d in shown for k in d["kinds"]})
        if kinds:
            fig, ax = plt.subplots(figsize=(7, 0.3 * len(shown) + 1.5))
            left = np.zeros(len(shown))
            cmap = plt.get_cmap("tab20")
            for i, k in enumerate(kinds):
                vals = np.array([d["kinds"].get(k, 0) for d in shown], float)
                ax.barh(y, vals, left=left, color=cmap(i % 20), label=k)
                left += vals
            ax.set_yticks(y, [d["name"] for d in shown])
            ax.set_xlabel("inserted sentences by kind")
            ax.legend(fontsize=7, ncol=3, loc="lower right")
            ax.set_title("Kinds of insertion per outlet")
            figs["kinds"] = _png(fig)
    if months:
        fig, ax = plt.subplots(figsize=(7, 3))
        x = np.arange(len(months))
        ax.plot(x, [100 * d["share"] for d in months], marker="o", color="#c9733d")
        ax.fill_between(
            x, [100 * d["low"] for d in months], [100 * d["high"] for d in months], alpha=0.25, color="#c9733d"
        )
        step = max(1, len(months) // 12)
        ax.set_xticks(x[::step], [d["name"] for d in months][::step], rotation=45, ha="right")
        ax.set_ylabel("inserted sentences, %")
        ax.set_title("Per month (95% interval)")
        figs["months"] = _png(fig)
    return figs


def read_first(rows: list[ArticleRow], n: int = 25) -> list[ArticleRow]:
    """The articles to read first: most inserted sentences, then the highest score."""
    return sorted((r for r in rows if r.inserted), key=lambda r: (-r.inserted, -r.max_score, r.id))[:n]


def _table(head: list[str], body: list[list]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    trs = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in body)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"


def render_html(
    rows: list[ArticleRow], outlets: list[dict], months: list[dict], figs: dict[str, str], source: str
) -> str:
    n_sent = sum(r.n for r in rows)
    n_ins = sum(r.inserted for r in rows)
    pct = lambda v: f"{100 * v:.2f}%"  # noqa: E731
    parts = [
        f"<h1>Mudraj archive report</h1><p>{html.escape(source)}: {len(rows):,} articles, {n_sent:,} "
        f"sentences, {n_ins:,} labelled inserted ({pct(n_ins / max(1, n_sent))}); "
        f"{sum(r.inserted > 0 for r in rows):,} articles with at least one.</p>"
    ]
    img = lambda k, alt: f'<img src="{figs[k]}" alt="{alt}">' if k in figs else ""  # noqa: E731
    parts.append("<h2>Per-article scores</h2>" + img("scores", "histogram of per-article scores"))
    if outlets:
        parts.append(
            "<h2>Per outlet</h2>"
            + img("outlets", "inserted share per outlet")
            + _table(
                ["outlet", "articles", "sentences", "inserted", "share", "95% interval"],
                [
                    [
                        d["name"],
                        d["articles"],
                        d["sentences"],
                        d["inserted"],
                        pct(d["share"]),
                        f"{pct(d['low'])} – {pct(d['high'])}",
                    ]
                    for d in outlets
                ],
            )
        )
        if "kinds" in figs:
            parts.append(
                "<h2>Kinds per outlet</h2>"
                + img("kinds", "kinds of insertion per outlet")
                + _table(
                    ["outlet", "kinds (count)"],
                    [[d["name"], ", ".join(f"{k} {v}" for k, v in d["kinds"].items())] for d in outlets if d["kinds"]],
                )
            )
    if months:
        parts.append(
            "<h2>Per month</h2>"
            + img("months", "inserted share per month")
            + _table(
                ["month", "articles", "sentences", "inserted", "share", "95% interval"],
                [
                    [
                        d["name"],
                        d["articles"],
                        d["sentences"],
                        d["inserted"],
                        pct(d["share"]),
                        f"{pct(d['low'])} – {pct(d['high'])}",
                    ]
                    for d in months
                ],
            )
        )
    items = []
    for r in read_first(rows):
        where = " · ".join(html.escape(x) for x in (r.outlet, r.month) if x)
        link = (
            f' <a href="{html.escape(r.url)}" rel="noreferrer noopener">source</a>'
            if r.url and r.url.startswith(("http://", "https://"))
            else ""
        )
        sents = "".join(
            f"<li><span class=score>{s:.2f}</span>{' <span class=kind>' + html.escape(k) + '</span>' if k else ''} "
            f"<span dir=rtl lang=ar>{html.escape(t)}</span></li>"
            for s, t, k in sorted(r.flagged, key=lambda x: -x[0])
        )
        items.append(
            f"<details><summary><b>{html.escape(r.id)}</b> {where} — {r.inserted} of {r.n} sentences, "
            f"highest {r.max_score:.2f}{link}</summary><ul>{sents}</ul></details>"
        )
    parts.append("<h2>Articles to read first</h2>" + "".join(items))
    style = (
        "body{font-family:sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}"
        "table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.2rem .5rem;"
        "font-size:.9rem}img{max-width:100%}.score{font-family:monospace;margin-inline-end:.4rem}"
        ".kind{background:#eee;border-radius:3px;padding:0 .3rem;font-size:.8rem}details{margin:.3rem 0}"
    )
    # No script, no external resource: the content security policy says so to the browser too.
    csp = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" '
        f'content="{csp}"><title>Mudraj archive report</title><style>{style}</style></head><body>'
        + "\n".join(parts)
        + "</body></html>\n"
    )


def write_csv(outlets: list[dict], months: list[dict]) -> str:
    from serving.batch.output import safe_cell

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(
        [
            "group",
            "name",
            "articles",
            "sentences",
            "inserted",
            "share",
            "low",
            "high",
            "articles_with_insertion",
            "kinds",
        ]
    )
    for d in outlets + months:
        w.writerow(
            [
                d["group"],
                safe_cell(d["name"]),
                d["articles"],
                d["sentences"],
                d["inserted"],
                round(d["share"], 6),
                round(d["low"], 6),
                round(d["high"], 6),
                d["articles_with_insertion"],
                json.dumps(d["kinds"], ensure_ascii=False),
            ]
        )
    return buf.getvalue()


def report(labels: Path, out: Path) -> dict:
    """Write out/index.html and out/groups.csv for predict's output at labels; return the counts."""
    from serving.batch.io import atomic_write_text

    rows = read_labels(labels)
    outlets, months = groups(rows, "outlet"), groups(rows, "month")
    figs = figures(rows, outlets, months)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "index.html", render_html(rows, outlets, months, figs, Path(labels).name))
    atomic_write_text(out / "groups.csv", write_csv(outlets, months))
    return {
        "articles": len(rows),
        "sentences": sum(r.n for r in rows),
        "inserted": sum(r.inserted for r in rows),
        "outlets": len(outlets),
        "months": len(months),
        "html": str(out / "index.html"),
        "csv": str(out / "groups.csv"),
    }
