"""The trainer's options do what their names say: negative subsampling, the class-weighted loss,
frozen embeddings. Each test fails when its option is ignored or broken."""

import numpy as np
import pytest

from tests._paths import REPO, TINY_DATA
from training.corpus.articles import load_articles
from training.model.config import TrainConfig

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def encoder():
    from training.model.backbones import resolve_backbone
    from training.model.train import build_encoder

    cfg = TrainConfig.load(REPO / "configs" / "tiny.yaml")
    return build_encoder(resolve_backbone(cfg.backbone), cfg)


def test_negative_fraction_keeps_every_inserted_sentence_and_a_seeded_share_of_the_rest(encoder):
    from training.model.train import featurize

    articles = load_articles([TINY_DATA])
    full = featurize(articles, encoder)
    n_ins, n_rep = sum(full["labels"]), len(full["labels"]) - sum(full["labels"])
    assert n_ins > 0 and n_rep > 20
    half = featurize(articles, encoder, negative_fraction=0.5, seed=3)
    assert sum(half["labels"]) == n_ins  # no inserted sentence is ever dropped
    # Hard negatives (reporting sentences shaped like an insertion) are always kept; the rest are sampled.
    from training.corpus.shapes import is_hard_negative_shape

    hard = [s for a in articles for s in a.sentences if s.label == 0 and is_hard_negative_shape(s.text)]
    assert 0 < len(hard) < n_rep
    sampled = len(half["labels"]) - n_ins - len(hard)
    n_other = n_rep - len(hard)
    # Binomial(n_other, 0.5): far inside 5 standard deviations, and never all or nothing.
    assert abs(sampled - n_other / 2) <= 5 * (n_other * 0.25) ** 0.5 and 0 < sampled < n_other
    hard_inputs = {
        tuple(f.input_ids)
        for a in articles
        for f in encoder.encode_article([s.text for s in a.sentences])
        if a.sentences[f.sentence].label == 0 and is_hard_negative_shape(a.sentences[f.sentence].text)
    }
    for seed in (3, 4, 5):
        assert hard_inputs <= {tuple(x) for x in featurize(articles, encoder, 0.5, seed)["input_ids"]}
    assert featurize(articles, encoder, negative_fraction=0.5, seed=3) == half  # seeded
    assert featurize(articles, encoder, negative_fraction=0.5, seed=4)["input_ids"] != half["input_ids"]
    # A dropped sentence still serves as context: the kept features are those of the full set,
    # unchanged (same tokens, neighbours included), only fewer.
    full_inputs = {tuple(x) for x in full["input_ids"]}
    assert all(tuple(x) in full_inputs for x in half["input_ids"])


def test_weighted_loss_weighs_the_inserted_class():
    from training.model.train import weighted_loss

    logits = torch.tensor([[2.0, -1.0], [0.5, 0.2], [-1.0, 1.5], [0.1, 0.3]])
    labels = torch.tensor([0, 1, 1, 0])
    ce = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    w = torch.where(labels == 1, 4.0, 1.0)
    expected = float((w * ce).sum() / 4)
    assert float(weighted_loss(4.0)({"logits": logits}, labels)) == pytest.approx(expected, rel=1e-6)
    assert float(weighted_loss(1.0)({"logits": logits}, labels)) == pytest.approx(float(ce.mean()), rel=1e-6)
    # Gradient accumulation: Trainer passes the number of examples across the accumulated batches.
    assert float(weighted_loss(4.0)({"logits": logits}, labels, num_items_in_batch=8)) == pytest.approx(expected / 2)


def _train(tmp_path, name, *overrides):
    from training.model.train import train

    cfg = TrainConfig.load(
        REPO / "configs" / "tiny.yaml",
        ["max_steps=3", "eval_steps=3", "save_steps=3", f"output_dir={tmp_path / name}", *overrides],
    )
    return train(cfg)


def _weights(run_dir):
    from safetensors.numpy import load_file

    return load_file(run_dir / "model" / "model.safetensors")


@pytest.mark.slow  # trains or converts a model
def test_class_weight_and_frozen_embeddings_change_training_as_documented(tmp_path):
    from safetensors.numpy import load_file

    from training.model.backbones import resolve_backbone

    base = _weights(_train(tmp_path, "base"))
    weighted = _weights(_train(tmp_path, "weighted", "class_weight_inserted=8"))
    frozen = _weights(_train(tmp_path, "frozen", "freeze_embeddings=true"))
    key = next(k for k in base if k.endswith("word_embeddings.weight"))
    head = next(k for k in base if k.startswith("classifier") and k.endswith("weight"))
    original = load_file(resolve_backbone("tiny-wordpiece") / "model.safetensors")
    original_key = next(k for k in original if k.endswith("word_embeddings.weight"))

    # The weighted loss reaches the optimiser: same seed and data, different weights.
    assert float(np.abs(base[head] - weighted[head]).max()) > 1e-5
    # Frozen: the word embeddings are the backbone's, bit for bit, while the rest trained.
    assert np.array_equal(frozen[key], original[original_key])
    assert float(np.abs(base[key] - original[original_key]).max()) > 1e-6  # not frozen: they move
    q = "encoder.layer.0.attention.self.query.weight"
    frozen_q = next(v for k, v in frozen.items() if k.endswith(q))
    assert float(np.abs(frozen_q - original[next(k for k in original if k.endswith(q))]).max()) > 1e-6


@pytest.mark.slow  # trains or converts a model
def test_init_from_starts_a_run_from_a_finished_runs_weights(tiny_run, tmp_path):
    """A second stage: with a learning rate of ~0 the new run's weights are the first run's, not the
    backbone's; a run of another model type is refused before any training."""
    import torch
    from safetensors.torch import load_file

    from training.model.train import train

    cfg = TrainConfig.load(
        REPO / "configs" / "tiny.yaml",
        [
            f"output_dir={tmp_path / 'stage2'}",
            f"init_from={tiny_run}",
            "max_steps=1",
            "learning_rate=1.0e-12",
            "warmup_ratio=0.0",
        ],
    )
    run = train(cfg)
    first, second = load_file(tiny_run / "model" / "model.safetensors"), load_file(run / "model" / "model.safetensors")
    assert first.keys() == second.keys()
    assert all(torch.allclose(first[k], second[k], atol=1e-6) for k in first)
    bad = TrainConfig.load(
        REPO / "configs" / "tiny.yaml",
        [f"output_dir={tmp_path / 'bad'}", f"init_from={tiny_run}", "model_type=article"],
    )
    with pytest.raises(ValueError, match="is a pair model"):
        train(bad)
    with pytest.raises(FileNotFoundError, match="not a finished run"):
        train(
            TrainConfig.load(REPO / "configs" / "tiny.yaml", [f"output_dir={tmp_path / 'x'}", f"init_from={tmp_path}"])
        )
