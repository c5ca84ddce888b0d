"""A training run is one YAML file in configs/ plus `--set key=value` overrides.

The settings are a pydantic model: unknown keys are refused (a typo never falls back to a
default silently), every value is type-checked, and each field is documented where it is
declared. The run writes the resolved settings into run.json.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from serving.errors import ConfigError, MissingError

PositiveInt = Annotated[int, Field(ge=1)]


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, validate_assignment=True)

    name: str = Field("run", description="model name written into the bundle")
    backbone: str = Field("tiny-wordpiece", description="see training/model/backbones.py for the accepted specs")
    train_data: list[str] = Field(["data/tiny"], description="folders / .txt / .jsonl of labelled articles")
    dev_data: list[str] = Field([], description="empty: split dev_fraction of the train articles off")
    dev_fraction: float = Field(0.2, ge=0, lt=1)
    genuine_data: list[str] = Field(
        [],
        description="genuine articles (every sentence reporting) added to training "
        "as negatives: build/corpus/genuine-train.jsonl (issue 20)",
    )
    genuine_fraction: float = Field(
        1.0,
        gt=0,
        le=1,
        description="seeded share of the genuine_data articles drawn into training (the sampling ratio)",
    )
    kind_loss_weight: float = Field(
        0.0,
        ge=0,
        description="article model: weight of the kind head's loss (a "
        "distribution over the twelve kinds, trained on inserted sentences "
        "whose kind is known); 0: no kind head",
    )
    init_from: str = Field(
        "",
        description="a finished run folder (runs/NAME) whose fine-tuned weights start this "
        "run: a second stage on top of a first; its model type and "
        "tokenizer must match this config's (empty: start from the backbone)",
    )
    output_dir: str = "runs/run"
    # Model input
    model_type: Literal["pair", "article"] = Field(
        "pair",
        description="pair: each sentence with its neighbours; article: one pass over windows of the "
        "article (max_length up to 512, context_width unused)",
    )
    max_length: int = Field(128, ge=8, description="tokens for sentence + context")
    context_width: int = Field(1, ge=0, description="neighbouring sentences on each side (0: the sentence alone)")
    encoder_layers: int = Field(
        0, ge=0, description="keep only the first N encoder layers (0: all): faster, usually less accurate"
    )
    normalization: list[str] = Field(["whitespace", "punctuation"], description="steps of serving/normalize.py")
    # Optimisation
    seed: int = 13
    epochs: float = Field(3.0, gt=0)
    max_steps: int = Field(-1, description=">0 overrides epochs")
    learning_rate: float = Field(5e-5, gt=0)
    batch_size: PositiveInt = 16
    eval_batch_size: PositiveInt = 64
    gradient_accumulation: PositiveInt = 1
    warmup_ratio: float = Field(0.06, ge=0, lt=1)
    weight_decay: float = Field(0.01, ge=0)
    class_weight_inserted: float = Field(1.0, gt=0, description=">1 weighs the (rarer) inserted class up in the loss")
    negative_fraction: float = Field(
        1.0, gt=0, le=1, description="share of reporting sentences kept for training (seeded; dev untouched)"
    )
    # Practical CPU training
    freeze_embeddings: bool = Field(False, description="freeze the word embedding matrix (most of e5's weights)")
    group_by_length: bool = Field(True, description="batches of similar length: less padding")
    bf16: bool = Field(False, description="bfloat16 mixed precision (GPU workstations)")
    threads: int = Field(0, ge=0, description="torch threads on CPU (0: serving.defaults.default_threads())")
    # Bookkeeping
    eval_steps: PositiveInt = 50
    save_steps: PositiveInt = 50
    logging_steps: PositiveInt = 10
    early_stopping_patience: int = Field(0, ge=0, description="evaluations without F1 gain before stopping (0: off)")
    save_total_limit: PositiveInt = 2

    @field_validator("train_data", "dev_data", "normalization", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("normalization")
    @classmethod
    def _known_steps(cls, value: list[str]) -> list[str]:
        from serving.normalize import check_steps

        return list(check_steps(value))

    @classmethod
    def load(cls, path: Path | None, overrides: list[str] = ()) -> "TrainConfig":
        """Settings from a YAML file (or none) with `key=value` overrides (values parsed as YAML)."""
        raw: dict = {}
        where = "--set"
        if path is not None:
            path = Path(path)
            where = str(path)
            if not path.is_file():
                raise MissingError(f"config {path} not found")
            try:
                raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            except yaml.YAMLError as err:
                mark = getattr(err, "problem_mark", None)
                line = f":{mark.line + 1}" if mark else ""
                raise ConfigError(f"{path}{line}: invalid YAML ({getattr(err, 'problem', err)})") from None
            if not isinstance(raw, dict):
                raise ConfigError(f"{path}: expected a mapping of settings")
        for item in overrides:
            key, sep, value = item.partition("=")
            if not sep:
                raise ConfigError(f"--set {item!r}: expected key=value")
            raw[key.strip()] = yaml.safe_load(value)
        # Integers are fine where a float is expected (epochs: 2); strict mode keeps "2" and true out.
        for key, field in cls.model_fields.items():
            if field.annotation is float and isinstance(raw.get(key), int) and not isinstance(raw[key], bool):
                raw[key] = float(raw[key])
        try:
            return cls(**raw)
        except ValidationError as err:
            raise ConfigError(_explain(err, where)) from None

    def to_dict(self) -> dict:
        return self.model_dump()


def _explain(err: ValidationError, where: str) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"])
        if e["type"] == "extra_forbidden":
            known = ", ".join(TrainConfig.model_fields)
            lines.append(f"unknown setting {key!r} (known: {known})")
        else:
            lines.append(f"{key}: {e['msg']} (got {e.get('input')!r})")
    return f"{where}: " + "; ".join(lines)
