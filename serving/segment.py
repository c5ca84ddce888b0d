"""The one sentence segmenter: Arabic news prose -> sentence spans with character offsets.

Used by training (to cut labelled articles into sentences) and by serving (to cut what a
user submits), so that the sentences we learn from are the sentences we classify.

It cuts what the model sees (serving.normalize.sanitize): controls, bidi embeddings and isolates,
zero-width characters and emoji are looked through, so "جملة.\u2069 جملة" splits like "جملة. جملة".
Offsets still refer to the text as given, these characters included.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from typing import Sequence

from serving.normalize import ARABIC_LETTER, sanitize, seen_positions

TERMINATORS = ".!?؟۔"  # ۔ (U+06D4): the Urdu full stop, which also ends sentences in Arabic-script text
# Characters that may follow a terminator and still belong to the sentence that ends.
CLOSERS = "\"'”’»)]}›"
OPENERS = "\"'“‘«([{‹"
# Unseen controls that open a bidi embedding, override or isolate: they go with the text that follows them.
BIDI_OPENERS = "\u202a\u202b\u202d\u202e\u2066\u2067\u2068"

# Single letters that end in a period in Arabic news without ending a sentence:
# د. (doctor), م. (engineer / AD year), أ. (professor), ص. (page), ج.م.ع (acronyms).
ABBREVIATIONS = frozenset(
    {"د", "م", "أ", "ا", "ص", "ج", "ع", "ت", "ق", "ش", "س", "ه", "هـ", "ب", "ح", "ك", "ن", "ط", "ر", "ل"}
    | {"Dr", "Mr", "Mrs", "Ms", "Prof", "St", "Jr", "Sr", "No", "vs", "etc", "Inc", "Ltd", "Co"}
)


@dataclass(frozen=True)
class Span:
    """A sentence: text[start:end] of the text it was cut from."""

    start: int
    end: int
    text: str


def _word_before(text: str, i: int) -> str:
    """The run of non-space characters that ends just before position i."""
    j = i
    while j > 0 and not text[j - 1].isspace():
        j -= 1
    return text[j:i]


def _is_abbreviation(text: str, dot: int) -> bool:
    word = _word_before(text, dot).lstrip(OPENERS)
    if not word:
        return False
    # Acronyms written with dots: ج.م.ع or U.S. -- the piece before this dot is one letter.
    last = word.split(".")[-1]
    return last in ABBREVIATIONS or (len(last) == 1 and last.isalpha())


def _paragraph_break(text: str, i: int, lo: int, hi: int) -> bool:
    """Whether the line break at i belongs to a blank line: the next or the previous line break is only
    spaces away (or the text ends there)."""
    j = i + 1
    while j < hi and text[j] in " \t\u00a0\r":
        j += 1
    if j >= hi or text[j] == "\n":
        return True
    k = i - 1
    while k >= lo and text[k] in " \t\u00a0\r":
        k -= 1
    return k < lo or text[k] == "\n"


def _boundaries(text: str, lo: int, hi: int) -> list[int]:
    """Sentence end positions (exclusive) inside text[lo:hi], by punctuation and line breaks."""
    ends: list[int] = []
    i = lo
    while i < hi:
        ch = text[i]
        if ch == "\n":
            # A blank line ends a paragraph, and so a sentence; a single line break inside a paragraph
            # (hard-wrapped wire copy, e-mail, PDF pastes) is read as a space.
            if _paragraph_break(text, i, lo, hi):
                ends.append(i)
            i += 1
            continue
        if ch not in TERMINATORS:
            i += 1
            continue
        # Decimals and dotted numbers: 3.5, 2.000 -- no break between two digits.
        if ch == "." and 0 < i < hi - 1 and text[i - 1].isdigit() and text[i + 1].isdigit():
            i += 1
            continue
        if ch == "." and _is_abbreviation(text, i) and not (i + 1 >= hi or text[i + 1] == "\n"):
            i += 1
            continue
        # Swallow what still belongs to this sentence end: more terminators ("...", "!؟"),
        # closing quotes and brackets, and a stray stop after a quote (`..." .`).
        j = i + 1
        while j < hi:
            if text[j] in TERMINATORS or text[j] in CLOSERS:
                j += 1
                continue
            k = j
            while k < hi and text[k] in " \t\u00a0":
                k += 1
            if k < hi and k > j and text[k] in TERMINATORS and text[k] != "\n":
                j = k + 1
                continue
            break
        # An ellipsis ("..", "...") is a pause in Arabic prose, unless the line ends there.
        ellipsis = ch == "." and i + 1 < hi and text[i + 1] == "."
        if ellipsis and j < hi and text[j] != "\n" and not text[j:].lstrip(" \t\u00a0").startswith("\n"):
            i = j
            continue
        if j >= hi or text[j].isspace():
            ends.append(j)
        elif ARABIC_LETTER.match(text[j]) and len(_word_before(text, i)) > 1:
            # A missing space after the stop ("الخميس.وقال") is an outlet typo, not a word.
            ends.append(j)
        i = j
    return ends


def _emit(
    text: str,
    lo: int,
    hi: int,
    out: list[Span],
    merge: bool = True,
    locked: set[int] | None = None,
    unseen: bool = False,
) -> None:
    """Strip whitespace from text[lo:hi] and append it as a sentence if anything is left.
    unseen: text has characters the model does not see; a piece made only of them is no sentence."""
    while lo < hi and text[lo].isspace():
        lo += 1
    while hi > lo and text[hi - 1].isspace():
        hi -= 1
    if lo >= hi:
        return
    piece = text[lo:hi]
    if unseen and merge and not sanitize(piece):
        return
    # A piece made only of punctuation belongs to the sentence before it.
    gap = text[out[-1].end : lo] if out else ""
    if (
        merge
        and out
        and not any(c.isalnum() for c in piece)
        and not gap.strip()
        and "\n" not in gap
        and (len(out) - 1) not in (locked or ())
    ):
        prev = out.pop()
        out.append(Span(prev.start, hi, text[prev.start : hi]))
        return
    out.append(Span(lo, hi, piece))


def _to_view(seen: list[int], lo: int, hi: int) -> tuple[int, int]:
    """text[lo:hi] as a range of the view (the characters the model sees)."""
    return bisect_left(seen, lo), bisect_left(seen, hi)


def _to_text(text: str, seen: list[int], end: int, lo: int, hi: int) -> int:
    """A sentence end in the view -> in text. Unseen characters after the last seen one (a closing isolate
    after the stop, an emoji) stay with the sentence that ends; those that open an embedding or isolate
    go with the next sentence."""
    pos = seen[end] if end < len(seen) and seen[end] < hi else hi
    floor = max(lo, seen[end - 1] + 1 if end > 0 else 0)
    while pos > floor and text[pos - 1] in BIDI_OPENERS:
        pos -= 1
    return pos


def segment(text: str, protected: Sequence[tuple[int, int]] = ()) -> list[Span]:
    """Split text into sentences.

    `protected` spans (sorted, non-overlapping; e.g. the bracketed insertions of a labelled
    article) are each kept whole as one sentence: the segmenter breaks at their edges and
    never inside them.
    """
    spans: list[Span] = []
    locked: set[int] = set()  # indices of protected sentences: nothing merges into them
    seen = seen_positions(text)
    # Boundaries are found in what the model sees (`view`) and mapped back to offsets in text.
    view = text if seen is None else "".join(text[i] for i in seen)
    cursor = 0
    for p_start, p_end in list(protected) + [(len(text), len(text))]:
        if p_start < cursor or p_end < p_start or p_end > len(text):
            raise ValueError(f"protected span ({p_start}, {p_end}) overlaps or is out of order")
        start = cursor
        for end in _boundaries(view, *((cursor, p_start) if seen is None else _to_view(seen, cursor, p_start))):
            if seen is not None:
                end = _to_text(text, seen, end, cursor, p_start)
            _emit(text, start, end, spans, locked=locked, unseen=seen is not None)
            start = end
        _emit(text, start, p_start, spans, locked=locked, unseen=seen is not None)
        if p_end > p_start:
            _emit(text, p_start, p_end, spans, merge=False)
            locked.add(len(spans) - 1)
        cursor = p_end
    return spans
