"""train -> export -> predict, end to end on the tiny config."""

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from serving.brackets import strip_brackets
from tests._paths import REPO, TINY_DATA, need_example
from training.cli import app

runner = CliRunner()


def test_run_records_config_data_hash_and_an_article_level_split(tiny_run):
    run = json.loads((tiny_run / "run.json").read_text())
    assert run["steps"] == 8 and run["config"]["backbone"] == "tiny-wordpiece"
    assert len(run["train_data_sha256"]) == 64 and run["train_data_sha256"] != run["dev_data_sha256"]
    dev_ids = {json.loads(l)["id"] for l in (tiny_run / "dev.jsonl").read_text().splitlines()}
    assert run["train"]["articles"] + run["dev"]["articles"] == len(list(TINY_DATA.glob("*.txt")))
    assert len(dev_ids) == run["dev"]["articles"] and (tiny_run / "model" / "config.json").is_file()
    assert any((tiny_run / "checkpoints").glob("checkpoint-*"))


def test_export_writes_a_self_describing_bundle_with_parity(tiny_bundle):
    meta = json.loads((tiny_bundle / "metadata.json").read_text())
    assert meta["labels"] == ["reporting", "inserted"] and meta["context_width"] == 1 and meta["max_length"] == 64
    assert set(meta["files"]) == {"model.onnx", "model.int8.onnx", "tokenizer.json"}
    assert meta["parity"]["fp32_max_abs_logit_diff"] <= meta["parity"]["atol"]
    assert meta["parity"]["int8_label_agreement"] >= 1 - meta["parity"]["max_int8_label_change"]
    assert meta["normalization"] == ["whitespace", "punctuation"] and len(meta["train_data_sha256"]) == 64


def test_export_refuses_when_int8_changes_too_many_labels(tiny_run, tmp_path):
    from training.ship.export import ParityError, export

    with pytest.raises(ParityError, match="int8 changes"):
        export(tiny_run, tmp_path / "b", max_int8_label_change=-0.01)
    assert not (tmp_path / "b").exists()  # nothing half-written


def test_predict_on_the_example_covers_the_text_and_lines_up_with_brackets(tiny_bundle, tmp_path):
    example = need_example()
    out = tmp_path / "pred.jsonl"
    res = runner.invoke(app, ["predict", "--model", str(tiny_bundle), str(example), "--out", str(out)])
    assert res.exit_code == 0, res.output
    records = [json.loads(l) for l in out.read_text().splitlines()]
    assert len(records) == 1 and records[0]["id"] == example.stem
    clean, spans = strip_brackets(example.read_text(encoding="utf-8"))
    sents = records[0]["sentences"]
    for s in sents:
        assert clean[s["start"] : s["end"]] == s["text"]
        assert s["label"] in ("reporting", "inserted") and 0.0 <= s["score"] <= 1.0
    # Sentences tile the text: only whitespace between and around them.
    pos = 0
    for s in sents:
        assert clean[pos : s["start"]].strip() == ""
        pos = s["end"]
    assert clean[pos:].strip() == ""
    starts, ends = {s["start"] for s in sents}, {s["end"] for s in sents}
    assert all(a in starts and b in ends for a, b in spans)


def test_predict_reads_jsonl_and_folders(tiny_bundle, tmp_path):
    f = tmp_path / "in.jsonl"
    f.write_text(json.dumps({"id": "n1", "text": "افتتح الوزير المحطة. وقال إنها جاهزة."}, ensure_ascii=False) + "\n")
    res = runner.invoke(app, ["predict", "--model", str(tiny_bundle), str(f), str(TINY_DATA)])
    assert res.exit_code == 0, res.output
    recs = [json.loads(l) for l in res.stdout.splitlines()]
    assert recs[0]["id"] == "n1" and [s["text"] for s in recs[0]["sentences"]] == [
        "افتتح الوزير المحطة.",
        "وقال إنها جاهزة.",
    ]
    assert len(recs) == 1 + len(list(TINY_DATA.glob("*.txt")))


def test_threshold_decides_the_label(tiny_bundle, tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("افتتح الوزير المحطة. وقال إنها جاهزة.", encoding="utf-8")
    low = runner.invoke(app, ["predict", "-m", str(tiny_bundle), str(f), "--threshold", "0"])
    high = runner.invoke(app, ["predict", "-m", str(tiny_bundle), str(f), "--threshold", "1"])
    assert {s["label"] for s in json.loads(low.stdout)["sentences"]} == {"inserted"}
    assert {s["label"] for s in json.loads(high.stdout)["sentences"]} == {"reporting"}


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\xd9\x82\xd8\xa7\xd9\x84.\n\xff\xfe", "bad.txt:2: invalid UTF-8"),
        ("سطر.\n[أ [ب]]".encode(), "bad.txt:2: nested"),
        (b"", "bad.txt: empty file"),
    ],
)
def test_predict_bad_input_is_one_clear_line(tiny_bundle, tmp_path, content, message):
    f = tmp_path / "bad.txt"
    f.write_bytes(content)
    out = tmp_path / "o.jsonl"
    res = runner.invoke(app, ["predict", "-m", str(tiny_bundle), str(f), "--out", str(out)])
    assert res.exit_code == 2 and message in res.output and "Traceback" not in res.output
    assert not out.exists()


def test_missing_and_corrupt_bundles_fail_clearly(tiny_bundle, tmp_path):
    import shutil

    f = tmp_path / "a.txt"
    f.write_text("جملة.", encoding="utf-8")
    res = runner.invoke(app, ["predict", "-m", str(tmp_path / "nope"), str(f)])
    assert res.exit_code == 2 and "no such folder" in res.output
    broken = tmp_path / "broken"
    shutil.copytree(tiny_bundle, broken)
    data = bytearray((broken / "model.int8.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (broken / "model.int8.onnx").write_bytes(bytes(data))
    res = runner.invoke(app, ["predict", "-m", str(broken), str(f)])
    assert res.exit_code == 2 and "model.int8.onnx is corrupt" in res.output


def test_bad_config_names_the_setting(tmp_path):
    res = runner.invoke(app, ["train", "--config", str(REPO / "configs" / "tiny.yaml"), "--set", "learning_rat=1"])
    assert res.exit_code == 2 and "unknown setting 'learning_rat'" in res.output
    res = runner.invoke(app, ["train", "--config", str(REPO / "configs" / "tiny.yaml"), "--set", "epochs=many"])
    assert res.exit_code == 2 and "epochs: Input should be a valid number" in res.output


def test_serving_never_imports_torch(tiny_bundle):
    code = (
        "import sys; from serving.predictor import Predictor; "
        f"p = Predictor({str(tiny_bundle)!r}); p.predict_texts(['جملة. وأخرى.']); "
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.slow  # trains or converts a model
def test_resume_ends_where_an_uninterrupted_run_ends(tmp_path):
    from training.model.config import TrainConfig
    from training.model.train import train

    base = ["max_steps=8", "save_steps=4", "eval_steps=4", "save_total_limit=4"]
    full = train(TrainConfig.load(REPO / "configs" / "tiny.yaml", base + [f"output_dir={tmp_path / 'full'}"]))
    # A run killed after its step-4 checkpoint: a fresh folder holding only that checkpoint.
    import shutil

    resumed_dir = tmp_path / "resumed"
    shutil.copytree(full / "checkpoints" / "checkpoint-4", resumed_dir / "checkpoints" / "checkpoint-4")
    resumed = train(TrainConfig.load(REPO / "configs" / "tiny.yaml", base + [f"output_dir={resumed_dir}"]), resume=True)
    timing = json.loads((resumed / "run.json").read_text())
    assert timing["resumed_at_step"] == 4 and timing["steps"] == 8  # s/step over the 4 steps this run made
    assert abs(timing["seconds_per_step"] * 4 - timing["train_seconds"]) < 0.01
    from safetensors.numpy import load_file

    # The step-8 weights of both runs are the same: the resumed run restored optimizer, scheduler and RNG.
    a = load_file(full / "checkpoints" / "checkpoint-8" / "model.safetensors")
    b = load_file(resumed / "checkpoints" / "checkpoint-8" / "model.safetensors")
    c = load_file(full / "checkpoints" / "checkpoint-4" / "model.safetensors")
    assert a.keys() == b.keys()
    assert max(float(abs(a[k] - b[k]).max()) for k in a) < 1e-6
    assert max(float(abs(a[k] - c[k]).max()) for k in a) > 1e-4  # and training did move them


@pytest.mark.slow  # trains or converts a model
def test_unigram_backbone_without_context_trains_and_exports(tmp_path):
    from training.model.config import TrainConfig
    from training.model.train import train
    from training.ship.export import export

    run = train(
        TrainConfig.load(
            REPO / "configs" / "tiny.yaml",
            ["backbone=tiny-unigram", "context_width=0", "max_steps=4", f"output_dir={tmp_path / 'u'}"],
        )
    )
    meta = json.loads((export(run, tmp_path / "ub") / "metadata.json").read_text())
    assert meta["context_width"] == 0 and meta["parity"]["fp32_max_abs_logit_diff"] <= 1e-3


def test_an_articles_scores_do_not_depend_on_the_other_articles_of_the_call(tiny_bundle):
    from serving.predictor import Predictor

    p = Predictor(tiny_bundle, batch_size=4)
    texts = [f.read_text(encoding="utf-8").replace("[", "").replace("]", "") for f in sorted(TINY_DATA.glob("*.txt"))]
    together = p.predict_texts(texts)
    alone = [p.predict_texts([t])[0] for t in texts]
    assert [[s.score for s in a] for a in together] == [[s.score for s in a] for a in alone]


def test_ten_megabyte_article_is_refused_clearly(tiny_bundle, tmp_path):
    big = tmp_path / "big.txt"
    big.write_text("قال المتحدث إن العمل مستمر. " * 400_000, encoding="utf-8")  # ~10 MB
    assert big.stat().st_size > 10_000_000
    out = tmp_path / "o.jsonl"
    res = runner.invoke(app, ["predict", "-m", str(tiny_bundle), str(big), "--out", str(out)])
    assert res.exit_code == 2 and "big.txt" in res.output and "at most" in res.output
    assert not out.exists()
