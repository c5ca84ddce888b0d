"""A training run is one YAML file in configs/ plus `--set key=value` overrides."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml


@dataclass
class TrainConfig:
    name: str = "run"  # model name written into the bundle
    backbone: str = "tiny-wordpiece"  # see training/backbones.py for the accepted specs
    train_data: list[str] = field(default_factory=lambda: ["data/tiny"])  # folders / .txt / .jsonl
    dev_data: list[str] = field(default_factory=list)  # empty: split dev_fraction of train articles off
    dev_fraction: float = 0.2
    output_dir: str = "runs/run"
    # Model input
    max_length: int = 128  # tokens for sentence + context
    context_width: int = 1  # neighbouring sentences on each side (0: the sentence alone)
    normalization: list[str] = field(default_factory=lambda: ["whitespace", "punctuation"])
    # Optimisation
    seed: int = 13
    epochs: float = 3.0
    max_steps: int = -1  # >0 overrides epochs
    learning_rate: float = 5e-5
    batch_size: int = 16
    eval_batch_size: int = 64
    gradient_accumulation: int = 1
    warmup_ratio: float = 0.06
    weight_decay: float = 0.01
    class_weight_inserted: float = 1.0  # >1 weighs the (rarer) inserted class up in the loss
    negative_fraction: float = 1.0  # share of reporting sentences kept for training (seeded; dev untouched)
    # Practical CPU training
    freeze_embeddings: bool = False  # freeze the word embedding matrix (most of e5's weights)
    group_by_length: bool = True  # batches of similar length: less padding
    bf16: bool = False  # GPU workstations
    threads: int = 0  # torch threads on CPU (0: leave torch's default)
    # Bookkeeping
    eval_steps: int = 50
    save_steps: int = 50
    logging_steps: int = 10
    early_stopping_patience: int = 0  # evaluations without F1 gain before stopping (0: off)
    save_total_limit: int = 2

    @classmethod
    def load(cls, path: Path | None, overrides: list[str] = ()) -> "TrainConfig":
        raw: dict = {}
        if path is not None:
            path = Path(path)
            if not path.is_file():
                raise FileNotFoundError(f"config {path} not found")
            try:
                raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            except yaml.YAMLError as err:
                mark = getattr(err, "problem_mark", None)
                line = f":{mark.line + 1}" if mark else ""
                raise ValueError(f"{path}{line}: invalid YAML ({getattr(err, 'problem', err)})") from None
            if not isinstance(raw, dict):
                raise ValueError(f"{path}: expected a mapping of settings")
        for item in overrides:
            key, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"--set {item!r}: expected key=value")
            raw[key.strip()] = yaml.safe_load(value)
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise ValueError(f"{path or '--set'}: unknown setting(s) {unknown}; known: {sorted(known)}")
        for key, value in raw.items():
            default = known[key].default if known[key].default is not dataclasses.MISSING else known[key].default_factory()
            if isinstance(default, list) and isinstance(value, str):
                raw[key] = [value]
            elif isinstance(default, bool) and not isinstance(value, bool):
                raise ValueError(f"{path or '--set'}: {key} must be true or false, got {value!r}")
            elif isinstance(default, (int, float)) and not isinstance(default, bool):
                if not isinstance(value, (int, float)) or isinstance(value, bool):
                    raise ValueError(f"{path or '--set'}: {key} must be a number, got {value!r}")
                raw[key] = type(default)(value) if isinstance(default, float) else value
        return cls(**raw)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
