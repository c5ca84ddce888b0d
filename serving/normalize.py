"""Text normalisation applied to a sentence before the tokenizer sees it.

First, always and whatever the bundle, `sanitize` removes controls, invisible format characters
and emoji: they carry nothing the model should weigh, and a model that never saw them in training
reacts to them arbitrarily. Then the steps a model was trained with, named in its bundle, are applied
identically by the trainer and the predictor. They serve two purposes:
- close shortcuts: host outlets have formatting quirks (NBSP, ` ، `, unnormalised hamza)
  that our inserted sentences lack; a model must not learn to spot quirks;
- match a backbone's own preprocessing (AraBERT v0.2).
Offsets never depend on this: the segmenter cuts the original text (looking through what `sanitize`
removes), and normalisation only changes what is fed to the tokenizer.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Callable, Sequence

from serving.errors import InputError

# What counts as an Arabic letter, everywhere in Mudraj: the Arabic block's letters (with tatweel), the
# supplement, extended-A and the presentation forms. Not digits, not punctuation, not marks.
ARABIC_LETTERS = "\u0621-\u064a\u066e-\u06d3\u06fa-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdfb\ufe70-\ufefc"
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


# What the model never sees (`sanitize`), by Unicode general category, as the stdlib knows it (serving needs no
# third-party Unicode tables): controls (Cc), format characters (Cf: bidi embeddings, overrides and isolates,
# direction marks, zero-width spaces and joiners, soft hyphen, BOM, emoji tags), private use (Co), unassigned
# code points (Cn; emoji newer than the stdlib's tables land here too) and lone surrogates (Cs). ZWNJ goes
# with the rest: it matters in Persian, not in Arabic, where it is editing debris (and `whitespace` drops it).
# Kept: Cf characters that are visible signs (the Arabic number, year and footnote signs, end of ayah...).
_VISIBLE_FORMAT = frozenset([*range(0x0600, 0x0606), 0x06DD, 0x070F, 0x0890, 0x0891, 0x08E2, 0x110BD, 0x110CD])
# Emoji, which have no general category of their own: symbols (So, and the Sk skin-tone modifiers) in the
# emoji blocks -- Miscellaneous Symbols and Dingbats (not their quotation-mark ornaments ❛❜❝❞❟❠), the emoji
# of Miscellaneous Technical (⌚ ⌛ ⌨ ⏏ ⏩...), a few shapes (⬛ ⬜ ⭐ ⭕) and the emoji blocks 1F000-1FAFF
# (pictographs, emoticons, transport, regional-indicator flags, skin tones). Symbols news writes stay:
# % ٪ ° © ® ™, currency, ● • ■ ▶ and arrows, the Arabic symbols (۞ ۩ ؎ ﷽). Emoji components go too:
# variation selectors, the keycap mark with its digit (1️⃣), the object-replacement and replacement characters.
# (The `regex` module's \p{Extended_Pictographic} would do, but serving keeps to the stdlib; a test checks
# this class against it.)
_PICTOGRAPH = re.compile(
    "[\u231a\u231b\u2328\u23cf\u23e9-\u23f3\u23f8-\u23fa\u2600-\u275a\u2761-\u27bf\u2b1b\u2b1c"
    "\u2b50\u2b55\u3297\u3299\U0001f000-\U0001faff]"
)
_EMOJI_PART = re.compile("[\ufe00-\ufe0f\u20e3\ufffc\ufffd\U000e0100-\U000e01ef]")
_KEYCAP = re.compile("[#*0-9]\ufe0f?\u20e3")
_LINE_CONTROLS = re.compile("[\t\n\x0b\x0c\r\x1c-\x1f\x85\u2028\u2029]")  # separate words: one space
_SPACE_RUN = re.compile(" {2,}")


@lru_cache(maxsize=4096)
def _unseen(ch: str) -> bool:
    cat = unicodedata.category(ch)
    if cat == "Cc":
        return not ch.isspace()
    if cat == "Cf":
        return ord(ch) not in _VISIBLE_FORMAT
    if cat in ("Co", "Cn", "Cs"):
        return True
    return bool(_EMOJI_PART.match(ch)) or (cat in ("So", "Sk") and bool(_PICTOGRAPH.match(ch)))


def seen_positions(text: str) -> list[int] | None:
    """Positions of the characters of text that the model sees, in order; None when it sees them all.
    The segmenter cuts what the model sees, so that these characters move no sentence boundary."""
    unseen = {ch for ch in set(text) if _unseen(ch)}
    keycaps = [m.start() for m in _KEYCAP.finditer(text)] if "\u20e3" in text else []
    if not unseen and not keycaps:
        return None
    skip = set(keycaps)
    return [i for i, ch in enumerate(text) if ch not in unseen and i not in skip]


def sanitize(text: str) -> str:
    """What the model sees of a sentence: no controls, invisible format characters, emoji, private-use or
    unassigned code points; tab and line breaks become a space; no runs of spaces. Always applied, before
    the bundle's named steps, by the one Encoder of training and serving."""
    keep = seen_positions(text)
    if keep is not None:
        text = "".join(text[i] for i in keep)
    return _SPACE_RUN.sub(" ", _LINE_CONTROLS.sub(" ", text)).strip(" ")


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


_PERSIAN_LETTERS = str.maketrans({"\u06cc": "\u064a", "\u06a9": "\u0643"})  # ی -> ي, ک -> ك


def orthography(text: str) -> str:
    """Alef/hamza forms -> ا, final ى -> ي, the Persian-keyboard ی and ک -> ي and ك, no tatweel or
    diacritics, Western digits."""
    text = _TASHKEEL.sub("", text.replace(_TATWEEL, ""))
    text = _ALEF.sub("ا", text).replace("ى", "ي").translate(_PERSIAN_LETTERS)
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
        raise InputError(f"unknown normalisation step(s) {unknown}; known: {sorted(STEPS)}")
    return tuple(steps)


def normalize(text: str, steps: Sequence[str]) -> str:
    for step in steps:
        text = STEPS[step](text)
    return text
