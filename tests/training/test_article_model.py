"""The article model (model_type "article"): windows of a whole article, one encoder pass, one score per
sentence. Trained for a few steps on a tiny BERT, exported, checked for parity, served by the same
predictor as the pair model."""

import json

import numpy as np
import pytest

from serving.bundle import read_metadata
from serving.predictor import Predictor
from serving.windows import ArticleEncoder, pad_windows
from tests._paths import REPO, TINY_DATA
from training.model.config import TrainConfig

torch = pytest.importorskip("torch")

LONG = [f"وقال المتحدث رقم {i} إن الاجتماع ناقش ملف المياه والطاقة في المنطقة الشرقية." for i in range(40)]


@pytest.fixture(scope="module")
def encoder():
    from training.model.backbones import resolve_backbone
    from training.model.train import build_encoder

    cfg = TrainConfig.load(REPO / "configs" / "tiny.yaml", ["max_length=128"])
    return ArticleEncoder(build_encoder(resolve_backbone(cfg.backbone), cfg))


@pytest.fixture(scope="module")
def article_run(tmp_path_factory):
    from training.model.train import train

    out = tmp_path_factory.mktemp("runs") / "tiny-article"
    cfg = TrainConfig.load(
        REPO / "configs" / "tiny.yaml", ["model_type=article", "max_length=128", f"output_dir={out}"]
    )
    return train(cfg)


@pytest.fixture(scope="module")
def article_bundle(article_run, tmp_path_factory):
    from training.ship.export import export

    return export(article_run, tmp_path_factory.mktemp("bundles") / "tiny-article")


def test_windows_cover_every_sentence_once_with_overlap_and_the_most_context(encoder):
    enc = encoder.encode_article(LONG)
    assert enc.n_sentences == len(LONG) and len(enc.windows) > 3
    scored = [enc.unit_sentence[u] for w in enc.windows for u, ok in zip(w.units, w.scored) if ok]
    assert sorted(scored) == list(range(len(LONG)))  # each sentence scored by exactly one window
    for a, b in zip(enc.windows, enc.windows[1:]):
        assert len(a.input_ids) <= encoder.max_length
        assert set(a.units) & set(b.units)  # neighbours overlap by at least one sentence
        assert b.units[0] > a.units[0]  # and move on
    for w in enc.windows:
        assert [w.input_ids[p] for p in w.markers] == [encoder.marker] * len(w.markers)

    def context(w, u):  # (tokens before unit u, tokens after it) in window w, end token excluded
        j, content = w.units.index(u), len(w.input_ids) - len(encoder.end)
        unit_end = w.markers[j + 1] if j + 1 < len(w.markers) else content
        return w.markers[j], content - unit_end

    for u in range(len(enc.unit_sentence)):
        holders = [w for w in enc.windows if u in w.units]
        chosen = [w for w in holders if w.scored[w.units.index(u)]]
        assert len(chosen) == 1
        best = max(min(context(w, u)) for w in holders)
        assert min(context(chosen[0], u)) == best
        # Every sentence but the article's first and last is scored with context on both sides.
        if 0 < u < len(enc.unit_sentence) - 1:
            assert best > 0


def test_a_long_sentence_is_cut_into_pieces_never_truncated(encoder):
    long_sentence = " ".join(["وأضاف أن المشروع يشمل محطات جديدة"] * 40)
    enc = encoder.encode_article(["قال الوزير إن العمل مستمر.", long_sentence, "وختم بالشكر."])
    pieces = [u for u, s in enumerate(enc.unit_sentence) if s == 1]
    assert len(pieces) > 2
    total = len(encoder.encoder.tokenize([long_sentence])[0])
    seen = {
        u: w.input_ids[
            w.markers[j] + 1 : (w.markers[j + 1] if j + 1 < len(w.markers) else len(w.input_ids) - len(encoder.end))
        ]
        for w in enc.windows
        for j, u in enumerate(w.units)
    }
    assert sum(len(seen[u]) for u in pieces) == total  # every token of the sentence is in some piece
    assert encoder.encode_article([]).windows == []


def test_pad_windows_marks_padding_markers_at_position_zero(encoder):
    enc = encoder.encode_article(LONG[:3] + LONG[:1])
    feed = pad_windows(enc.windows + encoder.encode_article(LONG[:1]).windows, encoder.pad_id)
    assert feed["input_ids"].shape[0] == feed["marker_positions"].shape[0] == len(enc.windows) + 1
    assert feed["marker_positions"][-1].tolist() == [0] * feed["marker_positions"].shape[1]
    assert feed["attention_mask"][-1].sum() < feed["attention_mask"][0].sum()


def test_article_model_trains_exports_with_parity_and_is_typed_in_the_bundle(article_run, article_bundle):
    run = json.loads((article_run / "run.json").read_text())
    assert run["config"]["model_type"] == "article" and run["steps"] == 8
    meta = read_metadata(article_bundle)
    assert meta["model_type"] == "article"
    assert meta["parity"]["fp32_max_abs_logit_diff"] <= meta["parity"]["atol"]
    assert meta["parity"]["int8_label_agreement"] >= 1 - meta["parity"]["max_int8_label_change"]
    assert meta["parity"]["sentences"] > 10
    import onnxruntime as ort

    names = [i.name for i in ort.InferenceSession(str(article_bundle / "model.onnx")).get_inputs()]
    assert names == ["input_ids", "attention_mask", "token_type_ids", "marker_positions"]


def test_predictor_offsets_and_scores_match_the_pytorch_model_on_a_long_article(article_run, article_bundle):
    from training.model.article_model import load_model

    text = " ".join(LONG[:30])
    pred = Predictor(article_bundle, precision="fp32")
    sents = pred.predict_texts([text])[0]
    assert len(sents) == 30 and all(text[s.start : s.end] == s.text for s in sents)
    assert pred.windows is not None and len(pred.windows.encode_article([s.text for s in sents]).windows) > 1
    # Each sentence's score is the PyTorch model's on the window that scores it.
    model = load_model(article_run / "model", "article").eval()
    enc = pred.windows.encode_article([s.text for s in sents])
    expected = np.full(len(sents), np.nan)
    with torch.no_grad():
        for w in enc.windows:
            out = model(**{k: torch.from_numpy(v) for k, v in pad_windows([w], pred.encoder.pad_id).items()})["logits"][
                0
            ]
            for j, (u, ok) in enumerate(zip(w.units, w.scored)):
                if ok:
                    expected[enc.unit_sentence[u]] = float(out[j, 1] - out[j, 0])
    got = pred.article_margins([[s.text for s in sents]])[0][0]
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_a_sentences_score_depends_only_on_its_own_article(article_bundle):
    texts = [p.read_text(encoding="utf-8") for p in sorted(TINY_DATA.glob("*.txt"))[:4]]
    for precision in ("int8", "fp32"):
        pred = Predictor(article_bundle, precision=precision, batch_size=2)
        alone = [pred.predict_texts([t])[0] for t in texts]
        together = pred.predict_texts(texts[::-1])[::-1]
        assert [[s.score for s in a] for a in alone] == [[s.score for s in a] for a in together]


def test_the_cli_trains_exports_and_predicts_an_article_model(article_bundle, tmp_path):
    from typer.testing import CliRunner

    from training.cli import app

    article = sorted(TINY_DATA.glob("*.txt"))[0]
    res = CliRunner().invoke(app, ["predict", str(article), "--model", str(article_bundle), "--format", "jsonl"])
    assert res.exit_code == 0, res.output
    row = json.loads(res.output.strip().splitlines()[-1])
    # The command's labels are the predictor's on the bracket-free text, sentence by sentence, with
    # offsets into that text.
    from serving.brackets import offsets_text
    from serving.predictor import Predictor

    text = offsets_text(article.read_text(encoding="utf-8"))
    want = [s.as_dict() for s in Predictor(article_bundle).predict_texts([text])[0]]
    assert row["id"] == article.stem and row["sentences"] == want and len(want) >= 3
    assert all(text[s["start"] : s["end"]] == s["text"] for s in row["sentences"])
    assert set(row) >= {"id", "sentences"}


@pytest.mark.slow  # trains or converts a model
def test_encoder_layers_keeps_the_first_layers_and_the_run_exports_with_them(tmp_path):
    from training.model.train import train
    from training.ship.export import export

    run = train(
        TrainConfig.load(
            REPO / "configs" / "tiny.yaml",
            [
                "model_type=article",
                "max_length=128",
                "encoder_layers=1",
                "max_steps=2",
                f"output_dir={tmp_path / 'run'}",
            ],
        )
    )
    assert json.loads((run / "model" / "config.json").read_text())["num_hidden_layers"] == 1
    bundle = export(run, tmp_path / "bundle")
    assert read_metadata(bundle)["parity"]["fp32_max_abs_logit_diff"] <= 1e-3
    with pytest.raises(ValueError, match="encoder_layers=5: the backbone has 2 layers"):
        train(TrainConfig.load(REPO / "configs" / "tiny.yaml", ["encoder_layers=5", f"output_dir={tmp_path / 'r2'}"]))


def test_each_sentence_vector_is_the_mean_of_its_own_tokens(encoder):
    """Not the marker's vector (the same for every sentence of a window with e5), and never the end
    token or padding: checked against a plain loop over the windows of a real article."""
    from training.model.article_model import pool_units

    texts = [p.read_text(encoding="utf-8") for p in sorted(TINY_DATA.glob("*.txt"))[:3]]
    windows = [
        w for t in texts for w in encoder.encode_article(t.replace("[", "").replace("]", "").split(". ")).windows
    ]
    assert len(windows) > len(texts)  # long enough to need several windows (max_length 128)
    feed = {k: torch.from_numpy(v) for k, v in pad_windows(windows, encoder.pad_id).items()}
    hidden = torch.randn(*feed["input_ids"].shape, 8, dtype=torch.float64)
    pooled = pool_units(hidden, feed["attention_mask"], feed["marker_positions"])
    for r, w in enumerate(windows):
        bounds = list(w.markers) + [len(w.input_ids) - len(encoder.end)]
        for j in range(len(w.markers)):
            own = hidden[r, bounds[j] + 1 : bounds[j + 1]]
            expected = own.mean(0) if len(own) else torch.zeros(8, dtype=torch.float64)
            assert torch.allclose(pooled[r, j], expected), (r, j)
        assert torch.equal(
            pooled[r, len(w.markers) :], torch.zeros_like(pooled[r, len(w.markers) :])
        )  # padding markers
