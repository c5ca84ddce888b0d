"""The evaluation report, on the tiny bundle and the project's own articles."""
import json
import shutil

import numpy as np
import pytest

from _paths import TINY_DATA
from training.evaluate import choose_threshold, evaluate, expected_calibration_error, fit_temperature, sigmoid


def test_threshold_meets_the_false_alarm_target():
    rng = np.random.default_rng(0)
    labels = np.r_[np.zeros(1000, int), np.ones(200, int)]
    probs = np.r_[rng.beta(2, 5, 1000), rng.beta(5, 2, 200)]
    thr = choose_threshold(probs, labels, 0.02)
    assert (probs[labels == 0] >= thr).mean() <= 0.02
    assert (probs[labels == 0] >= np.nextafter(thr, 0) - 0.01).mean() > 0.02  # and not needlessly high
    f1_thr = choose_threshold(probs, labels, None)
    assert 0 < f1_thr < 1


def test_temperature_scaling_recovers_a_known_temperature():
    rng = np.random.default_rng(1)
    true_margin = rng.normal(0, 2, 20000)
    labels = (rng.random(20000) < sigmoid(true_margin)).astype(int)
    t = fit_temperature(true_margin * 3.0, labels)  # an over-confident model: margins 3x too large
    assert t == pytest.approx(3.0, rel=0.1)
    assert expected_calibration_error(labels, sigmoid(true_margin * 3 / t)) < expected_calibration_error(
        labels, sigmoid(true_margin * 3))


def test_report_files_baselines_and_stored_threshold(tiny_bundle, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    r = evaluate(bundle, [TINY_DATA], tmp_path / "report", dev=[TINY_DATA], train=[TINY_DATA], target_far=0.1)
    for f in ("report.md", "report.json", "pr_curve.png", "reliability.png", "confusion.png", "score_hist.png"):
        assert (tmp_path / "report" / f).stat().st_size > 0
    assert set(r["baselines"]) == {"char TF-IDF + LR", "attribution-cue rule"}
    t = r["test"]
    assert t["sentences"] == 55 and t["inserted"] == 12 and t["articles"] == 8 and t["clean_articles"] == 2
    assert t["confusion"]["tp"] + t["confusion"]["fn"] == 12
    # Dev == test here, so the stored threshold keeps test false alarms at the 10% target.
    assert t["false_alarm_rate"] <= 0.1
    meta = json.loads((bundle / "metadata.json").read_text())
    assert meta["threshold"] == pytest.approx(r["model"]["threshold"]) and meta["temperature"] == pytest.approx(
        r["model"]["temperature"])
    md = (tmp_path / "report" / "report.md").read_text()
    assert "attribution-cue rule" in md and "## Worst errors" in md


def test_redacted_report_reproduces_no_reporting_sentence(tiny_bundle, tmp_path):
    from training.data import load_articles

    r = evaluate(tiny_bundle, [TINY_DATA], tmp_path / "rep", target_far=0.1, write_bundle=False, redact="reporting")
    md = (tmp_path / "rep" / "report.md").read_text(encoding="utf-8") + (tmp_path / "rep" / "report.json").read_text(
        encoding="utf-8")
    reporting = [s.text for a in load_articles([TINY_DATA]) for s in a.sentences if not s.label]
    assert r["worst_errors"] and not any(t in md for t in reporting)
    assert all("text not reproduced" in e["text"] for e in r["worst_errors"] if e["gold"] == "reporting")
    r = evaluate(tiny_bundle, [TINY_DATA], tmp_path / "all", target_far=0.1, write_bundle=False, redact="all")
    assert all("text not reproduced" in e["text"] for e in r["worst_errors"])
