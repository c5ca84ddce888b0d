"""The kind head (issue 24) and genuine negatives (issue 20) in training: a tiny article model learns
P(inserted) and the kind of each inserted sentence in one graph; the bundle returns a kind only for
sentences labelled inserted; genuine articles are drawn by a seeded share and never carry an insertion."""

import json
from pathlib import Path

import numpy as np
import pytest

from serving.batch.inputs import RawArticle
from serving.bundle import read_metadata
from serving.predictor import Predictor
from tests._paths import REPO, TINY_DATA
from training.corpus.articles import parse_article
from training.model.config import TrainConfig

torch = pytest.importorskip("torch")


def _rows_with_kinds(tmp_path):
    """data/tiny as corpus rows, each inserted sentence given a kind in reading order."""
    kinds = ["framing", "hope", "fake_attribution", "rhetorical_question"]
    rows = []
    for i, path in enumerate(sorted(TINY_DATA.glob("*.txt"))):
        text = path.read_text(encoding="utf-8")
        n = sum(s.label for s in parse_article(RawArticle(path.stem, str(path), text=text)).sentences)
        rows.append({"id": path.stem, "text": text, "kinds": [kinds[(i + k) % len(kinds)] for k in range(n)]})
    out = tmp_path / "train.jsonl"
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def kind_bundle(tmp_path_factory):
    from training.model.train import train
    from training.ship.export import export

    tmp = tmp_path_factory.mktemp("kinds")
    data = _rows_with_kinds(tmp)
    cfg = TrainConfig.load(
        REPO / "configs" / "tiny.yaml",
        [
            "model_type=article",
            "max_length=128",
            f"output_dir={tmp / 'run'}",
            "kind_loss_weight=0.5",
            f"train_data={data}",
        ],
    )
    run = train(cfg)
    return run, export(run, tmp / "bundle")


def test_the_kind_head_is_one_more_output_of_the_same_graph(kind_bundle):
    import onnxruntime as ort

    run, bundle = kind_bundle
    meta = read_metadata(bundle)
    assert len(meta["kinds"]) == 12 and "fake_attribution" in meta["kinds"]
    outputs = [o.name for o in ort.InferenceSession(str(bundle / "model.onnx")).get_outputs()]
    assert outputs == ["logits", "kind_logits"]
    assert "kind_accuracy" in json.loads((run / "run.json").read_text())["dev_metrics"]


def test_kinds_come_only_with_sentences_labelled_inserted(kind_bundle):
    _, bundle = kind_bundle
    pred = Predictor(bundle)
    text = (TINY_DATA / "oil-prices.txt").read_text(encoding="utf-8")
    sents = pred.predict_texts([text], threshold=0.5)[0] + pred.predict_texts([text], threshold=0.0)[0]
    assert any(s.label == "reporting" for s in sents) and any(s.label == "inserted" for s in sents)
    for s in sents:
        d = s.as_dict()
        if s.label == "reporting":
            assert "kind" not in d
        else:
            k = d["kind"]
            assert k["name"] in pred.kinds and k["name"] == k["top"][0]["name"] and len(k["top"]) == 3
            ps = [t["p"] for t in k["top"]]
            assert ps == sorted(ps, reverse=True) and 0 < sum(ps) <= 1.0001


def test_the_kind_head_matches_pytorch(kind_bundle):
    """The ONNX kind probabilities are the PyTorch model's, for the window that scores each sentence."""
    from serving.windows import pad_windows
    from training.model.article_model import load_model

    run, bundle = kind_bundle
    pred = Predictor(bundle, precision="fp32")
    text = (TINY_DATA / "water-plant.txt").read_text(encoding="utf-8")
    sents = [s.text for s in parse_article(RawArticle("w", "t", text=text)).sentences]
    got: list = []
    pred.article_margins([sents], kinds_out=got)
    enc = pred.windows.encode_article(sents)
    feed = {k: torch.from_numpy(v) for k, v in pad_windows(enc.windows, pred.encoder.pad_id).items()}
    model = load_model(run / "model", "article").eval()
    with torch.no_grad():
        probs = torch.softmax(model(**feed)["kind_logits"], -1).numpy()
    ref = np.zeros_like(got[0])
    for r, w in enumerate(enc.windows):  # each sentence's kind from the window that scores it
        for j, (unit, scored) in enumerate(zip(w.units, w.scored)):
            if scored:
                ref[enc.unit_sentence[unit]] = probs[r, j]
    assert len(enc.windows) > 1 and (ref.sum(1) > 0.99).all()
    np.testing.assert_allclose(got[0], ref, atol=1e-4)


def test_unannotated_or_reporting_sentences_teach_no_kind():
    from training.model.article_model import IGNORE, sentence_kinds

    a = parse_article(
        RawArticle("a", "t", text="قال الوزير إن العمل مستمر. [ويأمل الجميع أن ينجح.] وختم.", meta={"kinds": ["hope"]})
    )
    kinds = ["framing", "hope"]
    assert sentence_kinds(a, kinds) == [IGNORE, 1, IGNORE]
    a.meta["kinds"] = [None]  # a voice written without our kinds
    assert sentence_kinds(a, kinds) == [IGNORE, IGNORE, IGNORE]
    a.meta["kinds"] = []  # no annotation at all
    assert sentence_kinds(a, kinds) == [IGNORE, IGNORE, IGNORE]


def test_genuine_articles_are_drawn_by_a_seeded_share_and_refused_with_an_insertion():
    from training.model.train import draw_genuine

    clean = [
        parse_article(RawArticle(f"g{i}", "t", text=f"قال المتحدث {i} إن العمل مستمر. وأضاف أنه بدأ."))
        for i in range(20)
    ]
    a = draw_genuine(clean, 0.25, seed=3)
    assert len(a) == 5 and [x.id for x in a] == [x.id for x in draw_genuine(clean[::-1], 0.25, seed=3)]
    assert {x.id for x in draw_genuine(clean, 1.0, seed=3)} == {x.id for x in clean}
    dirty = clean + [parse_article(RawArticle("bad", "t", text="قال الوزير ذلك. [ويأمل الجميع أن ينجح.]"))]
    with pytest.raises(ValueError, match="bad"):
        draw_genuine(dirty, 1.0, seed=3)


def test_evaluate_reports_the_kind_head_with_its_confusion_figure(kind_bundle, tmp_path):
    from training.evaluation.evaluate import evaluate

    _, bundle = kind_bundle
    data = _rows_with_kinds(tmp_path)
    r = evaluate(bundle, [data], tmp_path / "rep")
    k = r["kind_head"]
    n_inserted = r["test"]["inserted"]
    assert k["sentences"] == n_inserted and 0 <= k["accuracy"] <= 1 and 0 <= k["macro_f1"] <= 1
    assert sum(m["n"] for m in k["per_kind"].values()) == n_inserted
    assert (tmp_path / "rep" / "kind_confusion.png").stat().st_size > 1000
    assert "## Kind head" in (tmp_path / "rep" / "report.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def fitted(kind_bundle, tmp_path_factory):
    """The kind_bundle's run without its jointly trained head, then `mudraj kinds` on it."""
    from training.model.kind_head import fit_kind_head

    run, _ = kind_bundle
    tmp = tmp_path_factory.mktemp("fitted")
    data = _rows_with_kinds(tmp)
    report = fit_kind_head(run, tmp / "run-kinds", [data], [data], progress=False)
    return run, tmp / "run-kinds", report


def test_a_fitted_kind_head_leaves_the_detector_bit_identical(fitted):
    """The head is fitted on frozen sentence vectors: the detector's logits do not move at all."""
    from serving.windows import pad_windows
    from training.model.article_model import load_model

    run, fitted_run, report = fitted
    before, after = load_model(run / "model", "article").eval(), load_model(fitted_run / "model", "article").eval()
    text = (TINY_DATA / "water-plant.txt").read_text(encoding="utf-8")
    sents = [s.text for s in parse_article(RawArticle("w", "t", text=text)).sentences]
    from serving.windows import ArticleEncoder
    from training.model.train import build_encoder

    encoder = build_encoder(run, TrainConfig.model_validate(json.loads((run / "run.json").read_text())["config"]))
    enc = ArticleEncoder(encoder).encode_article(sents)
    feed = {k: torch.from_numpy(v) for k, v in pad_windows(enc.windows, encoder.pad_id).items()}
    with torch.no_grad():
        a, b = before(**feed), after(**feed)
    assert torch.equal(a["logits"], b["logits"])
    assert not torch.equal(a["kind_logits"], b["kind_logits"])  # the head itself was replaced
    meta = json.loads((fitted_run / "run.json").read_text())
    assert meta["kind_head"]["chosen_C"] in [t["C"] for t in meta["kind_head"]["tried"]]
    assert report["train_sentences"] == sum(
        len(json.loads(l)["kinds"]) for l in (Path(meta["kind_head"]["train_data"][0])).read_text().splitlines()
    )


def test_the_fitted_head_learns_kinds_a_linear_probe_can_separate(fitted):
    """On its own training rows a balanced logistic regression beats the majority kind by far."""
    _, _, report = fitted
    best = max(t["dev_accuracy"] for t in report["tried"])
    assert best >= 0.5  # four kinds given in rotation; the majority share is about 0.3


def test_fitting_refuses_an_existing_output_and_a_pair_run(fitted, tiny_run, tmp_path):
    from training.model.kind_head import fit_kind_head

    run, fitted_run, _ = fitted
    with pytest.raises(FileExistsError, match="pick another"):
        fit_kind_head(run, fitted_run, [], [], progress=False)
    with pytest.raises(ValueError, match="pair model"):
        fit_kind_head(tiny_run, tmp_path / "x", [], [], progress=False)
