"""Hard negatives: genuine reporting sentences that have the surface shape of an insertion kind.

Science, health and environment reports are full of genuine sentences that open like our
insertions: what researchers hope or believe, what is expected, why a finding matters, background,
evaluative words, "sources said", questions. A model that learns the openers instead of the
commentary false-alarms on exactly those. Two uses, one definition:
- training: negative subsampling never drops a reporting sentence of such a shape
  (training/model/train.py `featurize`);
- evaluation: the false-alarm rate on these sentences is reported as its own row.
The shapes are openers and markers of Arabic news prose, matched on the normalised text.
"""

from __future__ import annotations

import re

from serving.normalize import normalize

# Each shape: a pattern over the text after the `orthography` normalisation (alef forms unified,
# so "أ/إ/آ" are written "ا" here). \b is avoided: Arabic prefixes (و، ف، ب، ل) glue to words.
SHAPES: dict[str, str] = {
    "hope": r"(?:^|\s)[وف]?(?:يامل|تامل|ياملون|نامل|امل|الامل|امال|يتطلع|تتطلع)",
    "expectation": r"(?:^|\s)[وف]?(?:من المتوقع|يتوقع|تتوقع|توقع|يرجح|ترجح|من المرجح|من المنتظر|يتنبا)",
    "belief": r"(?:^|\s)[وف]?(?:يعتقد|تعتقد|يرى|ترى|يرون|يعتبر|تعتبر|يؤمن)",
    "significance": r"(?:اهمية|يكتسب|تكتسب|خطوة مهمة|بالغ الاهمية|محوري|تاريخي|غير مسبوق)",
    "background": r"(?:^|\s)[وف]?(?:ياتي ذلك|وياتي|تاتي|في اطار|في ظل|يذكر ان|تجدر الاشارة|وتعد|يعد|تعد|يشار)",
    "evaluative": r"(?:لافت|مؤسف|جريء|جريئة|مثير|كبير الاثر|ايجابي|سلبي|رائع|خطير|بلا شك|لا شك)",
    "vague_source": r"(?:مصادر|مراقبون|مراقبين|محللون|محللين|خبراء|متابعون|تقارير|اوساط|مختصون)",
    "question": r"[?؟]\s*$",
}
_COMPILED = {name: re.compile(p) for name, p in SHAPES.items()}


def shapes_of(text: str) -> list[str]:
    """The insertion shapes a sentence has (empty for most reporting sentences)."""
    t = normalize(text, ["whitespace", "orthography"])
    return [name for name, rx in _COMPILED.items() if rx.search(t)]


def is_hard_negative_shape(text: str) -> bool:
    return bool(shapes_of(text))
