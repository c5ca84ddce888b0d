"""`mudraj diff`: two reports of the same articles compared cell by cell, each change against its noise."""

import json

from typer.testing import CliRunner

from training.cli import app
from training.evaluation.diff import diff


def report(f1, far, armpro_recall, hard_far):
    return {
        "test": {
            "sentences": 1000,
            "inserted": 200,
            "articles": 50,
            "clean_articles": 10,
            "f1": f1,
            "precision": 0.8,
            "recall": 0.7,
            "false_alarm_rate": far,
        },
        "per_source": {"armpro": {"sentences": 100, "inserted": 20, "recall": armpro_recall, "false_alarm_rate": 0.02}},
        "hard_negatives": {"sentences": 80, "false_alarm_rate": hard_far, "per_shape": {}},
    }


def test_cells_are_better_worse_or_within_noise():
    rows = {(r["cell"], r["metric"]): r for r in diff(report(0.80, 0.02, 0.60, 0.05), report(0.85, 0.03, 0.55, 0.04))}
    assert rows[("overall", "f1")]["verdict"] == "better" and rows[("overall", "f1")]["gain"] == 0.85 - 0.80
    # A false-alarm rate going up is worse when it moves by more than one standard error (800 sentences: 0.005).
    assert rows[("overall", "false_alarm_rate")]["verdict"] == "worse"
    # Recall on 20 inserted sentences: a drop of 0.05 is well inside one standard error (0.11).
    assert rows[("source: armpro", "recall")]["verdict"] == "within noise"
    assert rows[("hard negatives", "false_alarm_rate")]["verdict"] == "better"
    assert rows[("overall", "precision")]["verdict"] == "same"


def test_the_command_exits_1_when_a_cell_is_worse_and_refuses_other_articles(tmp_path):
    old, new, other = tmp_path / "old.json", tmp_path / "new.json", tmp_path / "other.json"
    old.write_text(json.dumps(report(0.80, 0.02, 0.6, 0.05)))
    new.write_text(json.dumps(report(0.90, 0.02, 0.6, 0.05)))
    other.write_text(json.dumps({**report(0.8, 0.02, 0.6, 0.05), "test": {"sentences": 3, "inserted": 1}}))
    runner = CliRunner()
    res = runner.invoke(app, ["diff", str(old), str(new), "-o", str(tmp_path / "d.md")])
    assert res.exit_code == 0 and "worse" not in (tmp_path / "d.md").read_text().split("\n", 1)[1]
    assert runner.invoke(app, ["diff", str(new), str(old)]).exit_code == 1
    res = runner.invoke(app, ["diff", str(old), str(other)])
    assert res.exit_code == 2 and "not the same articles" in res.output


def test_a_rate_of_zero_may_move_by_one_event_within_noise():
    old = report(0.8, 0.02, 0.6, 0.0)
    new = report(0.8, 0.02, 0.6, 1 / 80)  # one false alarm among 80 hard negatives, none before
    (row,) = [r for r in diff(old, new) if r["cell"] == "hard negatives"]
    assert row["verdict"] == "within noise" and row["noise"] > 0
    new = report(0.8, 0.02, 0.6, 4 / 80)
    assert [r for r in diff(old, new) if r["cell"] == "hard negatives"][0]["verdict"] == "worse"
