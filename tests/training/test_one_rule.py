"""One copy of each rule (issue 21): the decision rule shared by predictor, metrics and calibration; one
F1; the training collator on serving's window layout; one error policy for the command line."""

import numpy as np
import pytest
from typer.testing import CliRunner

from serving.predictor import decide, flags
from training.evaluation.metrics import breakdown, choose_threshold, metrics, prf


def test_a_sentence_exactly_at_the_threshold_is_labelled_alike_everywhere():
    """0.6999996 is shown as 0.7: at threshold 0.7 the predictor says inserted, so metrics must count it
    flagged and calibration must count it above its own threshold."""
    thr = 0.7
    probs = np.array([0.6999996, 0.7000004, 0.69999, 0.9, 0.1])
    labels = np.array([1, 0, 1, 1, 0])
    served = np.array([decide(p, thr)[0] == "inserted" for p in probs])
    assert served.tolist() == [True, True, False, True, False]
    assert flags(probs, thr).tolist() == served.tolist()
    m = metrics(labels, probs, thr)
    assert (m["confusion"]["tp"], m["confusion"]["fp"]) == (2, 1)
    assert breakdown(labels, probs, thr, ["g"] * 5)["g"]["recall"] == pytest.approx(2 / 3)
    # Calibration: the threshold it picks flags, by the same rule, what it counted as flagged.
    for target in (None, 0.0, 0.5):
        t = choose_threshold(probs, labels, target)
        chosen = flags(probs, t)
        assert chosen.tolist() == [decide(p, t)[0] == "inserted" for p in probs]
        if target is not None:
            assert chosen[labels == 0].mean() <= target


def test_precision_recall_and_f1_come_from_one_function():
    labels = np.array([1, 1, 0, 0, 1, 0])
    pred = np.array([1, 0, 1, 0, 1, 0])
    r = prf(labels, pred)
    assert (r["precision"], r["recall"], r["false_alarm_rate"]) == (
        pytest.approx(2 / 3),
        pytest.approx(2 / 3),
        pytest.approx(1 / 3),
    )
    assert r["f1"] == pytest.approx(2 / 3)
    m = metrics(labels, pred.astype(float), 0.5)
    assert {k: m[k] for k in r} == r


def test_the_training_collator_lays_windows_out_as_serving_does():
    torch = pytest.importorskip("torch")
    from serving.features import Encoder, load_tokenizer
    from serving.windows import ArticleEncoder, pad_windows
    from training.model.article_model import WindowCollator
    from training.model.backbones import resolve_backbone

    folder = resolve_backbone("tiny-unigram")
    enc = Encoder(load_tokenizer(folder / "tokenizer.json"), 64, 0, ["whitespace"])
    article = ArticleEncoder(enc).encode_article(
        ["قال الوزير إن العمل مستمر في المشروع الكبير."] * 9 + ["وأضاف أن النتائج ستظهر قريبا بعد أشهر."] * 4
    )
    assert len(article.windows) > 1
    rows = [
        {"input_ids": w.input_ids, "marker_positions": w.markers, "labels": [0] * len(w.markers)}
        for w in article.windows
    ]
    got = WindowCollator(enc.pad_id)(rows)
    want = pad_windows(article.windows, enc.pad_id)
    for key, value in want.items():
        assert torch.equal(got[key], torch.from_numpy(value)), key
    for i, w in enumerate(article.windows):  # labels of padding markers are ignored by the loss
        assert (got["labels"][i, len(w.markers) :] == -100).all() and (got["labels"][i, : len(w.markers)] == 0).all()


def _segment_raising(error):
    def alignment(articles):
        raise error

    return alignment


def test_a_bug_inside_a_command_shows_its_traceback(monkeypatch, tmp_path):
    """Only UserError becomes the one-line 'error:' exit 2; a ValueError from our code (or a library) is a
    bug and must surface as itself."""
    import training.corpus.articles as A
    from serving.errors import InputError
    from training.cli import app

    (tmp_path / "a.txt").write_text("قال الوزير إن العمل مستمر. [ويأمل الجميع أن ينجح.]", encoding="utf-8")
    monkeypatch.setattr(A, "alignment", _segment_raising(ValueError("too many values to unpack (expected 1)")))
    r = CliRunner().invoke(app, ["segment", str(tmp_path / "a.txt")])
    assert isinstance(r.exception, ValueError) and r.exit_code == 1
    assert "error:" not in r.output
    monkeypatch.setattr(A, "alignment", _segment_raising(InputError("a.txt:1: a bad bracket")))
    r = CliRunner().invoke(app, ["segment", str(tmp_path / "a.txt")])
    assert r.exit_code == 2 and "error: a.txt:1: a bad bracket" in r.output
    monkeypatch.setenv("MUDRAJ_DEBUG", "1")
    r = CliRunner().invoke(app, ["segment", str(tmp_path / "a.txt")])
    assert isinstance(r.exception, InputError)


def test_calibration_state_is_read_from_the_bundle(tiny_bundle, tmp_path):
    """transfer resumes by the stored state: an exported bundle is not calibrated until calibrate stores it."""
    import shutil

    from tests._paths import TINY_DATA
    from training.ship.calibrate import calibrate, is_calibrated

    bundle = tmp_path / "b"
    shutil.copytree(tiny_bundle, bundle)
    assert not is_calibrated(bundle)
    calibrate(bundle, [TINY_DATA])
    assert is_calibrated(bundle)
