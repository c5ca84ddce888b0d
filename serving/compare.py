"""Compare mode: a published text against its source (say, the agency's original dispatch).

Both texts are cut by the one segmenter and normalised as the model input is; every published
sentence is matched to at most one source sentence and every source sentence to at most one
published sentence, best matches first, so paragraphs may be reordered. Ties (a sentence that
occurs twice) are resolved in reading order. A published sentence is

    kept     identical to its source sentence once normalised (quote marks at either end aside),
    edited   similar to one (rapidfuzz ratio >= `floor`): `changes` lists the character-level
             differences, with offsets in each text,
    added    like no source sentence: it was not in the source;

and a source sentence that nothing matches is `dropped`. A published "sentence" that is a source
sentence with a new clause glued to it without a full stop is both: the source part kept (or
edited), the new clause added. Offsets always refer to the texts as
submitted. Scores from the model (when a predictor is given) are attached to every published
sentence, so a reader sees the evidence and the model's view side by side.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Sequence

from rapidfuzz import fuzz, process
from rapidfuzz.distance import Indel

from serving.normalize import normalize, sanitize
from serving.segment import CLOSERS, OPENERS, TERMINATORS, Span, segment

FLOOR = 70.0  # rapidfuzz ratio (0-100) from which two sentences count as one edited sentence
MIN_GLUED = 15  # characters of a new clause glued to a source sentence that make it an added sentence
EDGE = " " + CLOSERS + OPENERS
STEPS = ("whitespace", "punctuation", "orthography")  # when no model gives its own
LEADING_MARKS = "،,؛;:-–—"  # an added span never starts with one of these
MAX_JOINED = 3  # sentences one sentence of the other text may join (a merge) or be cut into (a split)
JOIN_GAIN = 5.0  # how much more similar a joined run must be than the best single sentence


@dataclass
class Change:
    op: str  # "replace", "insert" (text only in published) or "delete" (text only in source)
    published: tuple[int, int]  # [start, end) in the published text (empty for a delete)
    source: tuple[int, int]  # [start, end) in the source text (empty for an insert)
    published_text: str
    source_text: str


@dataclass
class Aligned:
    status: str  # kept | edited | added | dropped
    published: Span | None
    source: Span | None
    similarity: float  # 0-100 (100: identical once normalised); 0 for added and dropped
    changes: list[Change] = field(default_factory=list)
    label: str | None = None  # the model's, published sentences only
    score: float | None = None
    kind: dict | None = None  # the kind head's answer (bundles with one), sentences labelled inserted only

    def as_dict(self) -> dict:
        d = asdict(self)
        for side in ("published", "source"):
            span = getattr(self, side)
            d[side] = None if span is None else {"start": span.start, "end": span.end, "text": span.text}
        d["similarity"] = round(self.similarity, 2)
        d["changes"] = [{**asdict(c), "published": list(c.published), "source": list(c.source)} for c in self.changes]
        if self.label is None:
            del d["label"], d["score"]
        if self.kind is None:
            del d["kind"]
        return d


def _key(text: str, steps: Sequence[str]) -> str:
    """What two sentences are compared on: the model's normalisation, without the quote marks and
    spaces at either end (a quote between two sentences may be segmented with either of them)."""
    return normalize(sanitize(text), steps).strip(EDGE)


def _changes(pub: Span, src: Span) -> list[Change]:
    """Character-level differences between two matched sentences, with offsets in each text."""
    out = []
    for op in Indel.opcodes(src.text, pub.text):
        if op.tag == "equal":
            continue
        out.append(
            Change(
                op.tag,
                (pub.start + op.dest_start, pub.start + op.dest_end),
                (src.start + op.src_start, src.start + op.src_end),
                pub.text[op.dest_start : op.dest_end],
                src.text[op.src_start : op.src_end],
            )
        )
    # Indel has no replace: a delete next to an insert at the same place is one replacement.
    merged: list[Change] = []
    for c in out:
        last = merged[-1] if merged else None
        if (
            last
            and last.op in ("delete", "insert")
            and c.op != last.op
            and c.op in ("delete", "insert")
            and last.source[1] == c.source[0]
            and last.published[1] == c.published[0]
        ):
            d, i = (last, c) if last.op == "delete" else (c, last)
            merged[-1] = Change(
                "replace", (i.published[0], i.published[1]), (d.source[0], d.source[1]), i.published_text, d.source_text
            )
        else:
            merged.append(c)
    return merged


def _glued(pub: Span, src: Span, steps: Sequence[str]) -> list[Aligned] | None:
    """A published "sentence" that is a source sentence with a whole new clause glued to its start or
    end (no full stop between them, so the segmenter saw one sentence): the source part, kept, and
    the new part, added. None when the difference is anything else (then it is an edit)."""
    ops = list(Indel.opcodes(src.text, pub.text))
    if [op.tag for op in ops] not in (["equal", "insert"], ["insert", "equal"]):
        # The source sentence's full stop may have gone where the clause was glued on.
        core = src.text.rstrip(TERMINATORS + " ")
        ops = list(Indel.opcodes(core, pub.text)) if core != src.text else []
        if [op.tag for op in ops] != ["equal", "insert"]:
            return None
    extra = next(op for op in ops if op.tag == "insert")
    lo, hi = extra.dest_start, extra.dest_end
    if lo > 0:  # a comma or other mark where the clause was glued on stays with the kept part
        while lo < hi and (pub.text[lo] in LEADING_MARKS or pub.text[lo].isspace()):
            lo += 1
    piece = pub.text[lo:hi]
    if len(piece.strip()) < MIN_GLUED or len(piece.split()) < 3:
        return None
    lead, trail = len(piece) - len(piece.lstrip()), len(piece) - len(piece.rstrip())
    added = Span(pub.start + lo + lead, pub.start + hi - trail, piece.strip())
    if lo == 0:
        rest = pub.text[hi:]
        kept = Span(pub.start + hi + len(rest) - len(rest.lstrip()), pub.end, rest.strip())
    else:
        rest = pub.text[:lo]
        kept = Span(pub.start, pub.start + len(rest.rstrip()), rest.strip())
    a, b = _key(kept.text, steps), _key(src.text, steps)
    first = (
        Aligned("kept", kept, src, 100.0)
        if a == b
        else Aligned("edited", kept, src, min(fuzz.ratio(a, b), 99.99), _changes(kept, src))
    )
    return [first, Aligned("added", added, None, 0.0)] if lo > 0 else [Aligned("added", added, None, 0.0), first]


def _joins(
    source: str,
    published: str,
    src: list[Span],
    pub: list[Span],
    src_keys: list[str],
    pub_keys: list[str],
    match: dict[int, tuple[int, float]],
    taken: set[int],
    floor: float,
    steps: Sequence[str],
) -> tuple[dict[int, Aligned], dict[int, Aligned]]:
    """Merges and splits: a published sentence that joins consecutive source sentences (a full stop
    turned into a comma) is an edit of all of them; consecutive published sentences cut from one source
    sentence are each an edit of it. A join counts when the joined run is at least `floor` similar and
    clearly more similar (JOIN_GAIN) than any single sentence. `match` and `taken` are updated."""

    def joined(text: str, spans: list[Span]) -> Span:
        return Span(spans[0].start, spans[-1].end, text[spans[0].start : spans[-1].end])

    merged: dict[int, Aligned] = {}
    for i, p in enumerate(pub):
        mine = match.get(i, (None, 0.0))
        best = None
        for j in range(len(src)):
            for n in range(2, MAX_JOINED + 1):
                run = list(range(j, j + n))
                if run[-1] >= len(src) or any(r in taken and r != mine[0] for r in run):
                    continue
                span = joined(source, [src[r] for r in run])
                sim = fuzz.ratio(pub_keys[i], _key(span.text, steps))
                if sim >= floor and sim >= mine[1] + JOIN_GAIN and (best is None or sim > best[0]):
                    best = (sim, run, span)
        if best:
            if i in match:
                taken.discard(match.pop(i)[0])
            taken.update(best[1])
            sim, _, span = best
            merged[i] = Aligned("edited", p, span, min(sim, 99.99), _changes(p, span))
    split: dict[int, Aligned] = {}
    owner = {j: i for i, (j, _) in match.items()}
    for j, q in enumerate(src):
        best = None
        for i in range(len(pub)):
            for n in range(2, MAX_JOINED + 1):
                run = list(range(i, i + n))
                if run[-1] >= len(pub) or any(
                    r in merged or r in split or (r in match and match[r][0] != j) for r in run
                ):
                    continue
                if j in owner and owner[j] not in run:
                    continue
                single = max((fuzz.ratio(pub_keys[r], src_keys[j]) for r in run), default=0.0)
                span = joined(published, [pub[r] for r in run])
                sim = fuzz.ratio(_key(span.text, steps), src_keys[j])
                if sim >= floor and sim >= single + JOIN_GAIN and (best is None or sim > best[0]):
                    best = (sim, run, span)
        if best:
            sim, run, span = best
            changes = _changes(span, q)
            for r in run:
                match.pop(r, None)
                mine = [
                    c
                    for c in changes
                    if pub[r].start <= c.published[0] < pub[r].end or (c.published[0] == c.published[1] == pub[r].end)
                ]
                split[r] = Aligned("edited", pub[r], q, min(sim, 99.99), mine)
            taken.add(j)
    return merged, split


def align(source: str, published: str, floor: float = FLOOR, steps: Sequence[str] = STEPS) -> list[Aligned]:
    """The published sentences in reading order, each with its status, then the dropped source sentences."""
    src, pub = segment(source), segment(published)
    src_keys, pub_keys = [_key(s.text, steps) for s in src], [_key(s.text, steps) for s in pub]
    pairs: list[tuple[float, float, int, int]] = []
    if src and pub:
        sims = process.cdist(pub_keys, src_keys, scorer=fuzz.ratio, score_cutoff=floor)
        for i, j in zip(*sims.nonzero()):
            # Best similarity first; then the pair closest in relative position; then reading order.
            shift = abs(i / len(pub) - j / len(src))
            pairs.append((-float(sims[i, j]), shift, int(i), int(j)))
    pairs.sort()
    match: dict[int, tuple[int, float]] = {}
    taken: set[int] = set()
    for neg, _, i, j in pairs:
        if i not in match and j not in taken:
            match[i] = (j, -neg)
            taken.add(j)
    merged, split = _joins(source, published, src, pub, src_keys, pub_keys, match, taken, floor, steps)
    # A source sentence with a whole new clause glued on can be too unlike it for the floor; unmatched
    # pairs get a second look for exactly that shape.
    glued: dict[int, list[Aligned]] = {}
    for i, p in enumerate(pub):
        if i in match or i in merged or i in split:
            continue
        for j, q in enumerate(src):
            parts = None if j in taken else _glued(p, q, steps)
            if parts:
                glued[i] = parts
                taken.add(j)
                break
    out = []
    for i, p in enumerate(pub):
        if i in merged:
            out.append(merged[i])
            continue
        if i in split:
            out.append(split[i])
            continue
        if i in glued:
            out += glued[i]
            continue
        if i not in match:
            out.append(Aligned("added", p, None, 0.0))
            continue
        j, sim = match[i]
        if pub_keys[i] == src_keys[j]:
            out.append(Aligned("kept", p, src[j], 100.0))
            continue
        parts = _glued(p, src[j], steps)
        if parts:
            out += parts
        else:
            out.append(Aligned("edited", p, src[j], min(sim, 99.99), _changes(p, src[j])))
    out += [Aligned("dropped", None, s, 0.0) for j, s in enumerate(src) if j not in taken]
    return out


def compare(
    source: str,
    published: str,
    predictor=None,
    threshold: float | None = None,
    floor: float = FLOOR,
    deadline: float | None = None,
) -> list[Aligned]:
    """align(), with the model's score and label on every published sentence when a predictor is given
    (its normalisation is used for matching, so matching sees what the model sees)."""
    steps = tuple(predictor.encoder.normalization) if predictor is not None else STEPS
    rows = align(source, published, floor, steps or STEPS)
    if predictor is not None:
        from serving.predictor import decide

        published_rows = [r for r in rows if r.published is not None]
        if published_rows:
            thr = predictor.threshold if threshold is None else threshold
            kinds: list = []
            margins, _ = predictor.article_margins(
                [[r.published.text for r in published_rows]], deadline=deadline, kinds_out=kinds
            )[0]
            for i, (r, p) in enumerate(zip(published_rows, predictor.probabilities(margins))):
                r.label, r.score = decide(p, thr)
                if kinds and r.label == "inserted":
                    r.kind = predictor.kind_of(kinds[0][i])
    return rows


def record(
    rows: Sequence[Aligned],
    model: dict,
    threshold: float,
    source: str,
    published: str,
    source_sent: str | None = None,
    published_sent: str | None = None,
) -> dict:
    """The one record of a comparison: what POST /compare answers and `mudraj compare --format jsonl`
    writes. source/published: the texts the offsets refer to; *_sent: the texts as sent, to say when
    those differ (a byte-order mark or brackets removed)."""
    published_rows = []
    for r in rows:
        if r.published is None:
            continue
        d = r.as_dict()
        published_rows.append({**d.pop("published"), **{k: v for k, v in d.items() if k != "text"}})
    return {
        "model": model,
        "threshold": threshold,
        "published": published_rows,
        "dropped": [
            {"start": r.source.start, "end": r.source.end, "text": r.source.text} for r in rows if r.published is None
        ],
        "summary": summary(rows),
        "source_text": source if source_sent is not None and source != source_sent else None,
        "published_text": published if published_sent is not None and published != published_sent else None,
    }


def summary(rows: Sequence[Aligned]) -> dict[str, int]:
    counts = {k: 0 for k in ("kept", "edited", "added", "dropped")}
    for r in rows:
        counts[r.status] += 1
    return counts
