"""`mudraj report` (issue 24): an archive's labels read back into shares per outlet and month with
intervals, kinds per outlet, the articles to read first; clear errors on truncated or mixed inputs."""

import json

import numpy as np
import pytest

from serving.brackets import FormatError
from training.evaluation.archive_labels import read_labels
from training.evaluation.archive_report import report, share_interval


def _rec(i, outlet, date, inserted, n=10, kind="hope"):
    sents = [
        {
            "start": 0,
            "end": 1,
            "text": f"جملة {k}.",
            "label": "inserted" if k < inserted else "reporting",
            "score": 0.9 if k < inserted else 0.1,
            **({"kind": {"name": kind, "p": 0.8, "top": []}} if k < inserted else {}),
        }
        for k in range(n)
    ]
    return {"id": f"a{i}", "outlet": outlet, "date": date, "sentences": sents}


def _write(path, recs):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs), encoding="utf-8")
    return path


def test_shares_per_outlet_and_month_with_intervals_and_the_articles_to_read_first(tmp_path):
    recs = [
        _rec(i, "x.com" if i % 2 else "y.com", f"2015-0{1 + i % 3}-10", inserted=(3 if i % 2 else 0)) for i in range(30)
    ]
    recs[4] = _rec(4, "y.com", "2015-02-10", inserted=6, kind="fake_attribution")
    r = report(_write(tmp_path / "labels.jsonl", recs), tmp_path / "rep")
    assert r["articles"] == 30 and r["outlets"] == 2 and r["months"] == 3
    page = (tmp_path / "rep" / "index.html").read_text(encoding="utf-8")
    rows = (tmp_path / "rep" / "groups.csv").read_text(encoding="utf-8").splitlines()
    x = next(line for line in rows if line.startswith("outlet,x.com"))
    assert x.split(",")[2:6] == ["15", "150", "45", "0.3"]  # 15 articles, 3 of 10 inserted in each
    y = next(line for line in rows if line.startswith("outlet,y.com")).split(",")
    assert float(y[6]) < float(y[5]) < float(y[7])  # one article of 6 inserted, the rest 0: a real interval
    assert page.index("<b>a4</b>") < page.index("<b>a1</b>")  # 6 inserted sentences first
    assert "fake_attribution" in page and "http://" not in page and "https://" not in page  # no request elsewhere
    assert page.count("data:image/png;base64,") == 4  # scores, outlets, kinds, months


def test_interval_treats_articles_as_the_sampled_units():
    # Every article alike: the articles add no spread, and the interval is the sentences' own (Wilson,
    # 100 of 500), never a zero-width claim of certainty.
    same = share_interval(np.full(50, 2.0), np.full(50, 10.0))
    assert same == pytest.approx((0.2, 0.1672, 0.2374), abs=5e-4)
    # Two articles that agree by chance (2 of 6 each): the sentences' interval, not 33%-33%.
    two = share_interval(np.array([2.0, 2.0]), np.array([6.0, 6.0]))
    assert two[1] < 0.15 and two[2] > 0.6
    # Insertions lumped in a fifth of the articles: the articles' spread dominates, far wider than Wilson's.
    lumpy = share_interval(np.r_[np.full(10, 10.0), np.zeros(40)], np.full(50, 10.0))
    assert lumpy[0] == pytest.approx(0.2) and lumpy[1] < 0.1 and lumpy[2] > 0.3


def test_truncated_mixed_and_foreign_inputs_are_refused_clearly(tmp_path):
    good = _write(tmp_path / "a.jsonl", [_rec(1, "x", "2015-01-01", 1)])
    cut = tmp_path / "cut.jsonl"
    cut.write_bytes(good.read_bytes()[:-40])
    with pytest.raises(FormatError, match="truncated"):
        read_labels(cut)
    parts = tmp_path / "ray"
    parts.mkdir()
    _write(parts / "part-00000.jsonl", [_rec(1, "x", "2015-01-01", 1)])
    with pytest.raises(FormatError, match="_SUCCESS.json"):
        read_labels(parts)
    (parts / "_SUCCESS.json").write_text("{}")
    assert len(read_labels(parts)) == 1
    (parts / "part-00001.parquet").write_bytes(b"PAR1")
    with pytest.raises(FormatError, match="mixed part formats"):
        read_labels(parts)
    (parts / "part-00001.parquet").unlink()
    _write(parts / "part-00001.jsonl", [_rec(1, "x", "2015-01-01", 1)])
    with pytest.raises(FormatError, match="more than once"):
        read_labels(parts)
    with pytest.raises(FormatError, match="not a `mudraj predict` record"):
        read_labels(_write(tmp_path / "other.jsonl", [{"id": 1, "text": "نص"}]))


def test_predict_carries_outlet_and_date_to_its_output_and_report_reads_them(tiny_bundle, tmp_path):
    from typer.testing import CliRunner

    from tests._paths import TINY_DATA
    from training.cli import app

    arts = [
        {"id": p.stem, "text": p.read_text(encoding="utf-8"), "outlet": "tiny.sa", "date": "2015-08-0%d" % (i + 1)}
        for i, p in enumerate(sorted(TINY_DATA.glob("*.txt")))
    ]
    src = _write(tmp_path / "in.jsonl", arts)
    runner = CliRunner()
    res = runner.invoke(app, ["predict", "-m", str(tiny_bundle), str(src), "-o", str(tmp_path / "out.jsonl")])
    assert res.exit_code == 0, res.output
    recs = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert all(r["outlet"] == "tiny.sa" and r["date"].startswith("2015-08") for r in recs)
    res = runner.invoke(app, ["report", str(tmp_path / "out.jsonl"), "-o", str(tmp_path / "rep")])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["outlets"] == 1
