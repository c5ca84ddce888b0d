"""Text normalisation applied to a sentence before the tokenizer sees it.

The steps a model was trained with are named in its bundle and applied identically by the
trainer and the predictor. They serve two purposes:
- close shortcuts: host outlets have formatting quirks (NBSP, ` ، `, unnormalised hamza)
  that our inserted sentences lack; a model must not learn to spot quirks;
- match a backbone's own preprocessing (AraBERT v0.2).
Offsets never depend on this: the segmenter cuts the original text, and normalisation only
changes what is fed to the tokenizer.
"""
from __future__ import annotations

import re
from typing import Callable, Sequence

# What counts as an Arabic letter, everywhere in Mudraj: the Arabic block's letters (with tatweel), the
# supplement, extended-A and the presentation forms. Not digits, not punctuation, not marks.
ARABIC_LETTERS = "\u0621-\u064A\u066E-\u06D3\u06FA-\u06FF\u0750-\u077F\u08A0-\u08FF\uFB50-\uFDFB\uFE70-\uFEFC"
ARABIC_LETTER = re.compile(f"[{ARABIC_LETTERS}]")

_SPACES = re.compile(r"[\u00a0\u2000-\u200b\u202f\u205f\u3000\t\r\n ]+")
_INVISIBLE = re.compile(r"[\u200c\u200d\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff\u00ad]")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([،؛,;:.!?؟)\]»”])")
_SPACE_AFTER_OPEN = re.compile(r"([(\[«“])\s+")
_NO_SPACE_AFTER_PUNCT = re.compile(r"([،؛,;!?؟])(?=[^\s\d،؛,;:.!?؟)\]»”\"'])")
_LATIN_COMMA = re.compile(f"(?<=[{ARABIC_LETTERS}\u0660-\u0669]),|,(?=\\s*[{ARABIC_LETTERS}])")
_STOP_BEFORE_LETTER = re.compile(f"\\.(?=[{ARABIC_LETTERS}])")
_TASHKEEL = re.compile(r"[\u064b-\u0652\u0670]")
_TATWEEL = "\u0640"
_ALEF = re.compile(r"[أإآٱ]")
_HINDI_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")
_REPEATS = re.compile(r"(\D)\1{2,}")
_ARABERT_PUNCT = re.compile(r"([^\w\s]|_)")


def whitespace(text: str) -> str:
    """NBSP, exotic spaces and invisible direction marks -> one plain space."""
    return _SPACES.sub(" ", _INVISIBLE.sub("", text)).strip()


def punctuation(text: str) -> str:
    """No space before a comma or stop, one after: ` ، ` and `،وقال` both become `، `.
    A Latin comma in Arabic text is the Arabic comma."""
    text = _LATIN_COMMA.sub("،", text)
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    text = _SPACE_AFTER_OPEN.sub(r"\1", text)
    text = _STOP_BEFORE_LETTER.sub(". ", text)  # not before digits: 3.5 stays
    return _NO_SPACE_AFTER_PUNCT.sub(r"\1 ", text)


def orthography(text: str) -> str:
    """Alef/hamza forms -> ا, final ى -> ي, no tatweel or diacritics, Western digits."""
    text = _TASHKEEL.sub("", text.replace(_TATWEEL, ""))
    text = _ALEF.sub("ا", text).replace("ى", "ي")
    return text.translate(_HINDI_DIGITS)


def arabertv02(text: str) -> str:
    """AraBERT v0.2's own preprocessing (no Farasa): no diacritics or tatweel, no elongated
    letters, Western digits, spaces around punctuation."""
    text = _TASHKEEL.sub("", text.replace(_TATWEEL, "")).translate(_HINDI_DIGITS)
    text = _REPEATS.sub(r"\1\1", text)
    text = _ARABERT_PUNCT.sub(r" \1 ", text)
    return re.sub(r"\s+", " ", text).strip()


STEPS: dict[str, Callable[[str], str]] = {
    "whitespace": whitespace,
    "punctuation": punctuation,
    "orthography": orthography,
    "arabertv02": arabertv02,
}


def check_steps(steps: Sequence[str]) -> tuple[str, ...]:
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        raise ValueError(f"unknown normalisation step(s) {unknown}; known: {sorted(STEPS)}")
    return tuple(steps)


def normalize(text: str, steps: Sequence[str]) -> str:
    for step in steps:
        text = STEPS[step](text)
    return text
