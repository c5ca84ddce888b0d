"""The article model in PyTorch: a BERT encoder over windows of a whole article (serving/windows.py),
one vector per sentence, the mean of its own tokens' output vectors, and a linear head that labels
every sentence. The marker token before each sentence only delimits it: its output vector is not
used. (Read at the marker, e5's vectors were the same for every sentence of a window, cosine 1.0 to
the printed precision, before and after 250 training steps: the leading special token is an
attention sink whose output hardly depends on the context, and the model learned only the class prior.
e5 was itself trained to mean-pool.)

It is a transformers PreTrainedModel, so Trainer checkpoints it, `save_pretrained` writes it and
`from_pretrained` loads a backbone's BERT weights into it (the head starts new). Its ONNX graph takes
input_ids, attention_mask, token_type_ids [batch, tokens] and marker_positions [batch, markers] and
returns logits [batch, markers, 2], and, when the model has a kind head (config.kind_labels, issue 24),
kind_logits [batch, markers, kinds]: which kind of insertion a sentence would be, trained only on
inserted sentences whose kind is known, with weight config.kind_loss_weight in the loss.

`load_model` is the one way export, prune and the benchmarks load a run's model, whatever its type.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, BertConfig, BertModel, BertPreTrainedModel

from serving.errors import InputError

IGNORE = -100  # label of a marker that does not count (padding; in dev, a sentence scored by another window)


class BertForArticleTagging(BertPreTrainedModel):
    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.bert = BertModel(config, add_pooling_layer=False)
        self.dropout = torch.nn.Dropout(config.classifier_dropout or config.hidden_dropout_prob)
        self.classifier = torch.nn.Linear(config.hidden_size, config.num_labels)
        kinds = list(getattr(config, "kind_labels", None) or [])
        self.kind_classifier = torch.nn.Linear(config.hidden_size, len(kinds)) if kinds else None
        self.post_init()

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        marker_positions=None,
        labels=None,
        kind_labels=None,
        **kwargs,
    ):
        hidden = self.bert(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state  # [B, T, H]
        units = self.dropout(pool_units(hidden, attention_mask, marker_positions))  # [B, S, H]
        logits = self.classifier(units)  # [B, S, 2]
        out = {"logits": logits}
        if self.kind_classifier is not None:
            out["kind_logits"] = self.kind_classifier(units)  # [B, S, kinds]
        if labels is not None:
            out["loss"] = torch.nn.functional.cross_entropy(
                logits.reshape(-1, self.num_labels).float(), labels.reshape(-1), ignore_index=IGNORE
            )
        if kind_labels is not None and self.kind_classifier is not None:
            k = out["kind_logits"]
            known = (kind_labels != IGNORE).sum()
            kind_loss = torch.nn.functional.cross_entropy(
                k.reshape(-1, k.size(-1)).float(), kind_labels.reshape(-1), ignore_index=IGNORE, reduction="sum"
            )
            out["kind_loss"] = kind_loss / known.clamp(min=1)
            if "loss" in out:
                out["loss"] = out["loss"] + float(getattr(self.config, "kind_loss_weight", 1.0)) * out["kind_loss"]
        return out


def pool_units(hidden: torch.Tensor, attention_mask: torch.Tensor, marker_positions: torch.Tensor) -> torch.Tensor:
    """[B, S, H]: for each marker, the mean of the output vectors of the tokens after it, up to the
    next marker (or the window's end token); markers, the end token and padding are left out. A
    padding marker (position 0 again) or an empty unit gets a zero vector. All in tensor operations,
    so the ONNX graph computes the same."""
    positions = torch.arange(hidden.size(1), device=hidden.device).unsqueeze(0)  # [1, T]
    marks = torch.zeros_like(attention_mask).scatter(1, marker_positions, 1)  # 1 at every marker
    unit = marks.cumsum(1) - 1  # [B, T]: the unit each token belongs to
    end = attention_mask.sum(1, keepdim=True) - 1  # the end token's position
    own = attention_mask * (1 - marks) * (positions != end).to(attention_mask.dtype)  # [B, T]
    units = torch.arange(marker_positions.size(1), device=hidden.device).view(1, 1, -1)  # [1, 1, S]
    member = (unit.unsqueeze(-1) == units).to(hidden.dtype) * own.unsqueeze(-1).to(hidden.dtype)  # [B, T, S]
    sums = torch.einsum("bts,bth->bsh", member, hidden)
    return sums / member.sum(1).clamp(min=1.0).unsqueeze(-1)


def check_backbone(path: Path) -> None:
    import json

    kind = json.loads((Path(path) / "config.json").read_text(encoding="utf-8")).get("model_type")
    if kind != "bert":
        raise InputError(f"the article model is built on BERT encoders; {path} is a {kind!r} model")


def keep_layers(model, n: int) -> None:
    """Keep the first n encoder layers of a BERT-type model (the rest dropped before fine-tuning);
    the config says so, so the saved model loads and exports with n layers."""
    layers = model.base_model.encoder.layer
    if not 0 < n <= len(layers):
        raise InputError(f"encoder_layers={n}: the backbone has {len(layers)} layers")
    model.base_model.encoder.layer = layers[:n]
    model.config.num_hidden_layers = n


def load_model(model_dir: Path, model_type: str, **kwargs):
    """A run's fine-tuned model (run_dir/model) for either model type, from safetensors only."""
    kwargs.setdefault("use_safetensors", True)  # never unpickle weights from a user folder
    if model_type == "article":
        return BertForArticleTagging.from_pretrained(model_dir, **kwargs)
    if model_type == "pair":
        return AutoModelForSequenceClassification.from_pretrained(model_dir, **kwargs)
    raise ValueError(f"unknown model_type {model_type!r}")


def sentence_kinds(article, kinds: list[str]) -> list[int]:
    """The kind index of each sentence of an article: its inserted sentences take the corpus row's
    "kinds" (reading order); reporting sentences, kinds not annotated (null) or unknown: IGNORE."""
    given = list(article.meta.get("kinds") or [])
    inserted = [i for i, s in enumerate(article.sentences) if s.label == 1]
    out = [IGNORE] * len(article.sentences)
    if len(given) != len(inserted):
        return out  # a text without kind annotations (or a mismatch): nothing to learn kinds from
    for i, k in zip(inserted, given):
        out[i] = kinds.index(k) if k in kinds else IGNORE
    return out


def featurize_windows(articles, encoder, scored_only: bool = False, kinds: list[str] | None = None) -> dict[str, list]:
    """Trainer columns for the article model, one row per window. Every marker is labelled with its
    sentence's label; scored_only (dev) keeps only the window that scores each sentence at inference,
    so dev metrics count every sentence once, as `mudraj evaluate` does. With `kinds`, a kind_labels
    column too (sentence_kinds)."""
    from serving.windows import ArticleEncoder

    windows = ArticleEncoder(encoder)
    cols: dict[str, list] = {"input_ids": [], "marker_positions": [], "labels": [], "length": []}
    if kinds:
        cols["kind_labels"] = []
    for a in articles:
        enc = windows.encode_article([s.text for s in a.sentences])
        sk = sentence_kinds(a, kinds) if kinds else None
        for w in enc.windows:
            labels = [
                a.sentences[enc.unit_sentence[u]].label if (ok or not scored_only) else IGNORE
                for u, ok in zip(w.units, w.scored)
            ]
            cols["input_ids"].append(w.input_ids)
            cols["marker_positions"].append(w.markers)
            cols["labels"].append(labels)
            cols["length"].append(len(w.input_ids))
            if kinds:
                cols["kind_labels"].append(
                    [
                        sk[enc.unit_sentence[u]] if (ok or not scored_only) else IGNORE
                        for u, ok in zip(w.units, w.scored)
                    ]
                )
    return cols


class WindowCollator:
    """Pads a list of window rows into the model's tensors: the inputs exactly as serving lays them out
    (serving/windows.pad_windows, the one layout), plus labels (padding markers: IGNORE)."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        from types import SimpleNamespace

        from serving.windows import pad_windows

        feed = pad_windows(
            [SimpleNamespace(input_ids=r["input_ids"], markers=r["marker_positions"]) for r in rows], self.pad_id
        )
        out = {k: torch.from_numpy(v) for k, v in feed.items()}
        n = out["marker_positions"].shape[1]
        for key in ("labels", "kind_labels"):
            if key in rows[0]:
                t = torch.full((len(rows), n), IGNORE, dtype=torch.long)
                for i, r in enumerate(rows):
                    t[i, : len(r[key])] = torch.tensor(r[key], dtype=torch.long)
                out[key] = t
        return out
