"""How long `mudraj report` takes on an archive of 100,000 articles (issue 24: under a minute here).

    python bench/archive_report.py [--articles 100000] [--format jsonl|parquet]

Builds a synthetic archive in the exact record shape `mudraj predict` writes (id, outlet, date, url and
sentences with start, end, text, label, score and, for inserted sentences, a kind), seeded: 40 outlets,
36 months, 5-30 sentences an article, about 6% inserted. Then times reading it and writing the report
(HTML and CSV), and writes bench/results/archive_report.json with the CPU named.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

KINDS = [
    "framing",
    "significance",
    "outlook",
    "background",
    "hope",
    "vague_report",
    "fake_attribution",
    "rhetorical_question",
    "evaluative",
    "connective_aside",
    "fabricated_quote",
    "hedged_prediction",
]
WORDS = "قال الوزير إن المشروع سيبدأ العام المقبل في المدينة بعد موافقة المجلس على الميزانية الجديدة".split()


def synthetic(n: int, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    outlets = [f"outlet{i:02d}.example" for i in range(40)]
    rate = {o: rng.uniform(0.01, 0.12) for o in outlets}
    out = []
    for i in range(n):
        o = rng.choice(outlets)
        month = rng.randrange(36)
        sents, pos = [], 0
        for _ in range(rng.randint(5, 30)):
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 20))) + "."
            inserted = rng.random() < rate[o]
            score = round(rng.uniform(0.6, 1.0) if inserted else rng.uniform(0.0, 0.4), 6)
            s = {
                "start": pos,
                "end": pos + len(text),
                "text": text,
                "label": "inserted" if inserted else "reporting",
                "score": score,
            }
            if inserted:
                k = rng.sample(KINDS, 3)
                s["kind"] = {
                    "name": k[0],
                    "p": 0.7,
                    "top": [{"name": k[0], "p": 0.7}, {"name": k[1], "p": 0.2}, {"name": k[2], "p": 0.05}],
                }
            sents.append(s)
            pos += len(text) + 1
        out.append(
            {
                "id": f"a{i:06d}",
                "outlet": o,
                "date": f"{2019 + month // 12}-{month % 12 + 1:02d}-15",
                "url": f"https://{o}/{i}",
                "sentences": sents,
            }
        )
    return out


def main() -> None:
    from model_types import cpu_name

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--articles", type=int, default=100_000)
    ap.add_argument("--format", choices=("jsonl", "parquet"), default="jsonl")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "archive_report.json")
    a = ap.parse_args()
    from training.evaluation.archive_report import report

    recs = synthetic(a.articles)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"labels.{a.format}"
        if a.format == "jsonl":
            path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs), encoding="utf-8")
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.Table.from_pylist(recs), path)
        size = path.stat().st_size
        t0 = time.perf_counter()
        counts = report(path, Path(tmp) / "report")
        took = time.perf_counter() - t0
        html = (Path(tmp) / "report" / "index.html").stat().st_size
    result = {
        "cpu": cpu_name(),
        "articles": a.articles,
        "format": a.format,
        "input_mb": round(size / 2**20, 1),
        "seconds": round(took, 2),
        "html_kb": round(html / 1024),
        "counts": {k: v for k, v in counts.items() if k not in ("html", "csv")},
    }
    print(json.dumps(result, indent=2))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
