"""Run settings: every shipped config loads; typos and wrong types are refused by name."""

import pytest

from tests._paths import REPO
from training.model.config import TrainConfig

CONFIGS = sorted((REPO / "configs").glob("*.yaml"))


def test_there_are_configs():
    assert {p.name for p in CONFIGS} >= {"tiny.yaml", "e5-small.yaml", "arabertv02.yaml"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_config_file_loads(path):
    cfg = TrainConfig.load(path)
    assert cfg.name and cfg.backbone and cfg.train_data
    assert isinstance(cfg.epochs, float) and isinstance(cfg.learning_rate, float)
    assert TrainConfig(**cfg.to_dict()) == cfg  # what run.json records loads back


@pytest.mark.parametrize(
    "override, message",
    [
        ("learning_rat=1", "unknown setting 'learning_rat'"),
        ("epochs=many", "epochs: Input should be a valid number"),
        ("bf16=1", "bf16: Input should be a valid boolean"),
        ("batch_size=0", "batch_size: Input should be greater than or equal to 1"),
        ("negative_fraction=1.5", "negative_fraction: Input should be less than or equal to 1"),
        ("normalization=[whitespace, nope]", "unknown normalisation step(s) ['nope']"),
        ("max_length='96'", "max_length: Input should be a valid integer"),
        ("oops", "expected key=value"),
    ],
)
def test_bad_settings_are_refused_by_name(override, message):
    with pytest.raises(ValueError) as err:
        TrainConfig.load(REPO / "configs" / "tiny.yaml", [override])
    assert message in str(err.value)
    assert "oops" in override or "tiny.yaml" in str(err.value)  # names the file it was loading


def test_overrides_and_one_or_many_paths(tmp_path):
    cfg = TrainConfig.load(REPO / "configs" / "tiny.yaml", ["train_data=x.jsonl", "epochs=2", "bf16=true"])
    assert cfg.train_data == ["x.jsonl"] and cfg.epochs == 2.0 and cfg.bf16 is True
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.yaml:\d+: invalid YAML"):
        TrainConfig.load(bad)
    with pytest.raises(FileNotFoundError):
        TrainConfig.load(tmp_path / "missing.yaml")
