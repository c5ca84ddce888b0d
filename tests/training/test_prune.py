"""Vocabulary pruning keeps predictions on the reference text unchanged."""

import json

import numpy as np
import pytest

from serving.predictor import Predictor
from tests._paths import REPO, TINY_DATA
from training.model.config import TrainConfig
from training.model.train import train
from training.ship.export import export
from training.ship.prune import prune


@pytest.mark.slow  # trains or converts a model
def test_pruned_bundle_predicts_the_same_on_reference_text(tmp_path):
    run = train(
        TrainConfig.load(
            REPO / "configs" / "tiny.yaml", ["backbone=tiny-unigram", "max_steps=4", f"output_dir={tmp_path / 'run'}"]
        )
    )
    reference = sorted(TINY_DATA.glob("*.txt"))[:3]
    stats = prune(run, tmp_path / "pruned", corpus=None, extra=reference)
    assert stats["vocab_after"] < stats["vocab_before"]
    full = Predictor(export(run, tmp_path / "full"), precision="fp32")
    small = Predictor(export(tmp_path / "pruned", tmp_path / "small"), precision="fp32")
    assert small.encoder.tokenizer.get_vocab_size() == stats["vocab_after"]
    texts = [p.read_text(encoding="utf-8").replace("[", "").replace("]", "") for p in reference]
    a = [s.score for art in full.predict_texts(texts) for s in art]
    b = [s.score for art in small.predict_texts(texts) for s in art]
    assert len(a) == len(b) > 10
    assert np.max(np.abs(np.array(a) - np.array(b))) < 1e-5
    meta = json.loads((tmp_path / "pruned" / "run.json").read_text())
    assert meta["pruning"]["vocab_after"] == stats["vocab_after"]
