"""The leave-one-source-out command: its test articles are one source's share of the ordinary test
split, and its table puts each held-out source next to the models trained with every source."""

import json

import pytest
from typer.testing import CliRunner

from training.cli import app
from training.evaluation.transfer import plot, source_split, table


def test_source_split_keeps_one_sources_articles_only(tmp_path):
    rows = [
        {"id": f"a{i}", "text": "[قال الوزير إن العمل مستمر.]", "source": src}
        for i, src in enumerate(["armpro", "baly2018", "armpro", "saudinewsnet"])
    ]
    test = tmp_path / "test.jsonl"
    test.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    out = source_split(test, "armpro", tmp_path / "armpro.jsonl")
    assert [json.loads(line)["id"] for line in out.read_text(encoding="utf-8").splitlines()] == ["a0", "a2"]
    with pytest.raises(ValueError, match="no article from source 'akec'"):
        source_split(test, "akec", tmp_path / "none.jsonl")


def test_table_compares_each_held_out_source_on_the_same_cells():
    row = {
        "source": "armpro",
        "train_articles": 1622,
        "steps": 250,
        "test": {
            "sentences": 426,
            "inserted": 91,
            "f1": 0.5,
            "precision": 0.6,
            "recall": 0.43,
            "false_alarm_rate": 0.02,
        },
    }
    full = {"per_source": {"armpro": {"f1": 0.7, "precision": 0.8, "recall": 0.62, "false_alarm_rate": 0.01}}}
    lines = table([row], {"all sources": full}).splitlines()
    assert lines[2].startswith("| armpro | 426 | 91 | trained without it (1622 articles, 250 steps) | 0.500 | 0.600")
    assert lines[3] == "| | | | all sources | 0.700 | 0.800 | 0.620 | 0.010 |"


def test_unknown_source_and_bad_against_are_refused():
    res = CliRunner().invoke(app, ["transfer", "--source", "bbc"])
    assert res.exit_code == 2 and "unknown source" in res.output
    res = CliRunner().invoke(app, ["transfer", "--against", "nothing-here"])
    assert res.exit_code == 2 and "NAME=path/to/report.json" in res.output


def test_older_reports_get_precision_and_f1_from_their_counts_and_the_plot_is_drawn(tmp_path):
    # 91 inserted of 426: recall 54/91, false alarms 6/335 -> precision 54/60, F1 2PR/(P+R)
    old = {"per_source": {"armpro": {"sentences": 426, "inserted": 91, "recall": 54 / 91, "false_alarm_rate": 6 / 335}}}
    row = {
        "source": "armpro",
        "train_articles": 1622,
        "steps": 900,
        "test": {
            "sentences": 426,
            "inserted": 91,
            "f1": 0.5,
            "precision": 0.6,
            "recall": 0.43,
            "false_alarm_rate": 0.02,
        },
    }
    p, r = 54 / 60, 54 / 91
    assert table([row], {"old": old}).splitlines()[3] == (
        f"| | | | old | {2 * p * r / (p + r):.3f} | {p:.3f} | {r:.3f} | {6 / 335:.3f} |"
    )
    png = plot([row], {"old": old, "no cell": {"per_source": {}}}, tmp_path / "transfer.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_a_held_out_source_gets_its_genuine_articles_and_the_table_their_flags(tmp_path):
    from training.evaluation.transfer import genuine_of

    for name, sources in (("genuine-dev.jsonl", ["armpro", "baly2018"]), ("genuine-test.jsonl", ["armpro"])):
        (tmp_path / name).write_text(
            "".join(
                json.dumps({"id": f"{name}-{i}", "text": "قال الوزير إن العمل مستمر.", "source": s}) + "\n"
                for i, s in enumerate(sources)
            ),
            encoding="utf-8",
        )
    out = genuine_of(tmp_path, "armpro", tmp_path / "g.jsonl")
    assert len(out.read_text(encoding="utf-8").splitlines()) == 2  # both halves: the source is unseen whole
    assert genuine_of(tmp_path, "saudinewsnet", tmp_path / "none.jsonl") is None
    row = {
        "source": "armpro",
        "train_articles": 10,
        "steps": 5,
        "genuine": {"sentences_flagged": 0.0123, "articles_flagged": 0.1, "articles": 40},
        "test": {"sentences": 4, "inserted": 1, "f1": 0.5, "precision": 0.6, "recall": 0.43, "false_alarm_rate": 0.02},
    }
    assert "genuine text: 1.23% of sentences, 10.0% of 40 articles flagged" in table([row], {})
