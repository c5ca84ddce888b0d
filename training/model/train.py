"""Fine-tune a sentence classifier (reporting / inserted) with transformers' Trainer.

CPU (this machine):
    mudraj train --config configs/e5-small.yaml
One GPU, bf16:
    mudraj train --config configs/arabertv02.yaml
Several GPUs (data parallel, through accelerate):
    accelerate launch --multi_gpu --num_processes 4 -m training.cli train --config configs/arabertv02.yaml
Resume after an interruption (same output_dir):
    mudraj train --config configs/e5-small.yaml --resume
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np

from serving.batch.io import atomic_dir, atomic_write_json, atomic_write_jsonl
from serving.bundle import LABELS
from serving.defaults import default_threads
from serving.errors import ExistsError, InputError, MissingError
from serving.features import Encoder, load_tokenizer
from training.corpus.articles import Article, data_hash, load_articles, split_articles
from training.corpus.insertions import KINDS
from training.evaluation.metrics import prf
from training.model.backbones import backbone_normalization, resolve_backbone
from training.model.config import TrainConfig


def build_encoder(backbone_dir: Path, cfg: TrainConfig) -> Encoder:
    steps = list(cfg.normalization) + [s for s in backbone_normalization(cfg.backbone) if s not in cfg.normalization]
    return Encoder(load_tokenizer(backbone_dir / "tokenizer.json"), cfg.max_length, cfg.context_width, steps)


def featurize(
    articles: list[Article], encoder: Encoder, negative_fraction: float = 1.0, seed: int = 0
) -> dict[str, list]:
    """Model inputs for every sentence; with negative_fraction < 1 a seeded share of the reporting
    sentences is dropped (their text still serves as context for their neighbours). Reporting
    sentences shaped like an insertion (training/corpus/shapes.py: the hard negatives) are never dropped."""
    from training.corpus.shapes import is_hard_negative_shape

    rng = np.random.default_rng(seed)
    cols: dict[str, list] = {"input_ids": [], "token_type_ids": [], "labels": [], "length": []}
    for a in articles:
        labels = [s.label for s in a.sentences]
        keep = []
        for lab, sent in zip(labels, a.sentences):
            if lab == 1:
                keep.append(True)
                continue
            drawn = rng.random() < negative_fraction  # one draw per reporting sentence, whatever its shape
            keep.append(drawn or is_hard_negative_shape(sent.text))
        for f in encoder.encode_article([s.text for s in a.sentences]):
            if not keep[f.sentence]:
                continue
            cols["input_ids"].append(f.input_ids)
            cols["token_type_ids"].append(f.token_type_ids)
            cols["labels"].append(labels[f.sentence])
            cols["length"].append(len(f.input_ids))
    return cols


def draw_genuine(articles: list[Article], fraction: float, seed: int) -> list[Article]:
    """A seeded share of the genuine articles (the same on every run and on --resume); refuses any
    with an inserted sentence: genuine_data holds human text only."""
    import random

    bad = [a.id for a in articles if any(s.label for s in a.sentences)]
    if bad:
        raise InputError(f"genuine_data holds {len(bad)} articles with inserted sentences, e.g. {bad[:3]}")
    ordered = sorted(articles, key=lambda a: a.id)
    random.Random(seed).shuffle(ordered)
    return ordered[: round(fraction * len(ordered))]


def weighted_loss(weight_inserted: float, kind_weight: float = 0.0):
    """Cross-entropy with the inserted class weighted by `weight_inserted`, in the form Trainer's
    `compute_loss_func` takes: summed over the batch, divided by the number of examples (which
    Trainer passes when gradients are accumulated over several batches)."""
    import torch

    weights = torch.tensor([1.0, float(weight_inserted)])

    def loss_fn(outputs, labels, num_items_in_batch=None):
        logits = outputs["logits"]  # [batch, 2], or [batch, markers, 2] for the article model
        labels = labels.reshape(-1)
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.size(-1)).float(),
            labels,
            weight=weights.to(logits.device),
            reduction="sum",
            ignore_index=-100,
        )
        loss = loss / (num_items_in_batch if num_items_in_batch else (labels != -100).sum().clamp(min=1))
        if "kind_loss" in outputs:  # the article model's kind head, weighted by its config
            loss = loss + kind_weight * outputs["kind_loss"]
        return loss

    return loss_fn


def _compute_metrics(eval_pred) -> dict[str, float]:
    logits, labels = eval_pred.predictions, eval_pred.label_ids
    kind_logits = kind_labels = None
    if isinstance(logits, tuple):  # the article model with a kind head: (logits, kind_logits)
        logits, kind_logits = logits[0], logits[1]
    if isinstance(labels, tuple):
        labels, kind_labels = labels[0], labels[1]
    logits, labels = np.asarray(logits), np.asarray(labels)
    keep = labels != -100  # article model: padding markers, and sentences scored by another window
    out = prf(labels[keep], logits.argmax(-1)[keep])
    if kind_logits is not None and kind_labels is not None:
        known = np.asarray(kind_labels) != -100
        if known.any():
            out["kind_accuracy"] = float(
                (np.asarray(kind_logits).argmax(-1)[known] == np.asarray(kind_labels)[known]).mean()
            )
    return out


def _inserted(ds) -> int:
    """Inserted labels in a dataset: one per row (pair model) or one per scored marker (article model)."""
    return int(sum(x == 1 for row in ds["labels"] for x in (row if isinstance(row, list) else [row])))


def _last_checkpoint(ckpt_dir: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(ckpt_dir)) if ckpt_dir.is_dir() else None


def machine_info() -> dict:
    """What the run was trained on, for run.json and the model card."""
    import os
    import platform

    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "gpus": torch.cuda.device_count(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }


def _init_weights(cfg: TrainConfig, backbone_dir: Path) -> Path:
    """Where the starting weights come from: the backbone, or with init_from a finished run's model
    (same model type and tokenizer, checked here so a mismatch fails before hours of featurising)."""
    if not cfg.init_from:
        return backbone_dir
    run = Path(cfg.init_from)
    meta = run / "run.json"
    if not (run / "model" / "model.safetensors").is_file() or not meta.is_file():
        raise MissingError(f"init_from: {run} is not a finished run (needs run.json and model/model.safetensors)")
    earlier = json.loads(meta.read_text(encoding="utf-8"))["config"]
    if earlier.get("model_type") != cfg.model_type:
        raise InputError(
            f"init_from: {run} is a {earlier.get('model_type')} model; this config trains a {cfg.model_type} model"
        )
    if (run / "tokenizer.json").read_bytes() != (backbone_dir / "tokenizer.json").read_bytes():
        raise InputError(f"init_from: {run} was trained with another tokenizer than backbone {cfg.backbone!r}")
    return run / "model"


def train(cfg: TrainConfig, resume: bool = False, config_file: Path | None = None) -> Path:
    """Train; returns the run directory (model/, tokenizer.json, run.json, dev.jsonl)."""
    import torch
    from datasets import Dataset
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        EarlyStoppingCallback,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    run_dir = Path(cfg.output_dir)
    ckpt_dir = run_dir / "checkpoints"
    if run_dir.exists() and not resume and (run_dir / "run.json").exists():
        raise ExistsError(f"{run_dir} already holds a finished run; pick another output_dir or pass --resume")
    torch.set_num_threads(cfg.threads or default_threads())
    set_seed(cfg.seed)

    train_articles = load_articles(cfg.train_data)
    if cfg.dev_data:
        dev_articles = load_articles(cfg.dev_data)
    else:
        train_articles, dev_articles = split_articles(train_articles, cfg.dev_fraction, cfg.seed)
    if cfg.genuine_data:
        train_articles += draw_genuine(load_articles(cfg.genuine_data), cfg.genuine_fraction, cfg.seed)
    overlap = {a.id for a in train_articles} & {a.id for a in dev_articles}
    if overlap:
        raise InputError(f"{len(overlap)} article ids are in both train and dev data, e.g. {sorted(overlap)[:3]}")
    if not dev_articles:
        raise InputError("no dev articles: give dev_data or a dev_fraction > 0")

    backbone_dir = resolve_backbone(cfg.backbone)
    encoder = build_encoder(backbone_dir, cfg)
    weights_dir = _init_weights(cfg, backbone_dir)
    labels = {
        "num_labels": len(LABELS),
        "id2label": dict(enumerate(LABELS)),
        "label2id": {l: i for i, l in enumerate(LABELS)},
        "use_safetensors": True,
    }  # never unpickle weights from a user folder
    if cfg.model_type == "article":
        from training.model.article_model import (
            BertForArticleTagging,
            WindowCollator,
            check_backbone,
            featurize_windows,
        )

        check_backbone(weights_dir)
        kinds = list(KINDS) if cfg.kind_loss_weight > 0 else None
        train_ds = Dataset.from_dict(featurize_windows(train_articles, encoder, kinds=kinds))
        dev_ds = Dataset.from_dict(featurize_windows(dev_articles, encoder, scored_only=True, kinds=kinds))
        from transformers import AutoConfig

        model_config = AutoConfig.from_pretrained(
            weights_dir, **{k: v for k, v in labels.items() if k != "use_safetensors"}
        )
        # The kind head: its classes and loss weight live in the model's config (saved with it); a run
        # started from another one without kind_loss_weight drops that run's head.
        model_config.kind_labels, model_config.kind_loss_weight = kinds or [], cfg.kind_loss_weight
        model = BertForArticleTagging.from_pretrained(weights_dir, config=model_config, use_safetensors=True)
        collator = WindowCollator(encoder.pad_id)
    else:
        train_ds = Dataset.from_dict(featurize(train_articles, encoder, cfg.negative_fraction, cfg.seed))
        dev_ds = Dataset.from_dict(featurize(dev_articles, encoder))
        if cfg.kind_loss_weight > 0:
            raise InputError("kind_loss_weight: the kind head is built for the article model (model_type: article)")
        model = AutoModelForSequenceClassification.from_pretrained(weights_dir, **labels)
        collator = DataCollatorWithPadding(AutoTokenizer.from_pretrained(backbone_dir))
    if cfg.encoder_layers:
        from training.model.article_model import keep_layers

        keep_layers(model, cfg.encoder_layers)
    if cfg.freeze_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)

    args = TrainingArguments(
        output_dir=str(ckpt_dir),
        seed=cfg.seed,
        data_seed=cfg.seed,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.eval_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation,
        learning_rate=cfg.learning_rate,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        warmup_steps=cfg.warmup_ratio,
        weight_decay=cfg.weight_decay,
        bf16=cfg.bf16,
        eval_strategy="steps",
        eval_steps=cfg.eval_steps,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        load_best_model_at_end=True,
        metric_for_best_model="f1",
        greater_is_better=True,
        logging_steps=cfg.logging_steps,
        report_to=[],
        train_sampling_strategy="group_by_length" if cfg.group_by_length else "random",
        length_column_name="length",
        dataloader_num_workers=0,
        disable_tqdm=False,
        label_names=["labels", "kind_labels"] if "kind_labels" in train_ds.column_names else ["labels"],
    )
    callbacks = [EarlyStoppingCallback(cfg.early_stopping_patience)] if cfg.early_stopping_patience else []
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=dev_ds,
        data_collator=collator,
        compute_metrics=_compute_metrics,
        compute_loss_func=weighted_loss(cfg.class_weight_inserted, cfg.kind_loss_weight)
        if cfg.class_weight_inserted != 1.0
        else None,
        callbacks=callbacks,
    )
    checkpoint = _last_checkpoint(ckpt_dir) if resume else None
    if resume and checkpoint is None:
        print(f"--resume: no checkpoint in {ckpt_dir}, starting from the beginning")
    first_step = int(checkpoint.rsplit("-", 1)[1]) if checkpoint else 0  # checkpoint-N: N steps already done
    t0 = time.time()
    result = trainer.train(resume_from_checkpoint=checkpoint)
    elapsed = time.time() - t0
    metrics = trainer.evaluate()

    with atomic_dir(run_dir / "model") as tmp:
        trainer.model.save_pretrained(tmp)
    shutil.copyfile(backbone_dir / "tokenizer.json", run_dir / "tokenizer.json")
    atomic_write_jsonl(
        run_dir / "dev.jsonl",
        (
            {"id": a.id, "sentences": [{"text": s.text, "label": LABELS[s.label]} for s in a.sentences], **a.meta}
            for a in dev_articles
        ),
    )
    steps_here = max(1, result.global_step - first_step)  # a resumed run timed only the steps it ran
    run = {
        "config": cfg.to_dict(),
        "config_file": str(config_file) if config_file else None,
        "machine": machine_info(),
        "backbone_dir": str(backbone_dir),
        "normalization": list(encoder.normalization),
        "train_data_sha256": data_hash(train_articles),
        "dev_data_sha256": data_hash(dev_articles),
        "train": {"articles": len(train_articles), "examples": len(train_ds), "inserted": _inserted(train_ds)},
        "dev": {"articles": len(dev_articles), "examples": len(dev_ds), "inserted": _inserted(dev_ds)},
        "steps": result.global_step,
        "resumed_at_step": first_step or None,
        "train_seconds": round(elapsed, 2),  # this invocation's (a resumed run's earlier part is not included)
        "seconds_per_step": round(elapsed / steps_here, 4),
        "dev_metrics": {k.removeprefix("eval_"): v for k, v in metrics.items()},
        "best_checkpoint": trainer.state.best_model_checkpoint,
    }
    atomic_write_json(run_dir / "run.json", run)
    return run_dir
