from hypothesis import given, settings
from hypothesis import strategies as st

from serving.brackets import strip_brackets
from serving.segment import segment


def texts(spans):
    return [s.text for s in spans]


def test_splits_at_arabic_and_latin_terminators():
    t = "قال الوزير إن الخطة جاهزة. هل تنجح؟ نأمل ذلك! انتهى الاجتماع"
    assert texts(segment(t)) == ["قال الوزير إن الخطة جاهزة.", "هل تنجح؟", "نأمل ذلك!", "انتهى الاجتماع"]


def test_offsets_point_into_the_original_text():
    t = "  أولا جملة.\n\nثانيا جملة أخرى.  "
    for s in segment(t):
        assert t[s.start : s.end] == s.text
    assert texts(segment(t)) == ["أولا جملة.", "ثانيا جملة أخرى."]


def test_decimals_and_abbreviations_do_not_split():
    t = "قال د. محمد العلي إن النمو بلغ 3.5 في المئة هذا العام. وأضاف أن الأسعار مستقرة."
    assert texts(segment(t)) == ["قال د. محمد العلي إن النمو بلغ 3.5 في المئة هذا العام.", "وأضاف أن الأسعار مستقرة."]


def test_quote_after_the_stop_stays_with_its_sentence():
    t = 'وقال إن "الوقت حان للعمل." وأضاف أن الاجتماع انتهى. وختم: "لن نتراجع". ثم غادر.'
    assert texts(segment(t)) == [
        'وقال إن "الوقت حان للعمل."',
        "وأضاف أن الاجتماع انتهى.",
        'وختم: "لن نتراجع".',
        "ثم غادر.",
    ]
    t2 = 'وقال إن "الأمر انتهى" . ثم غادر.'
    assert texts(segment(t2)) == ['وقال إن "الأمر انتهى" .', "ثم غادر."]


def test_paragraph_breaks_end_a_sentence_without_punctuation():
    t = "عنوان بلا نقطة\n\nأول فقرة هنا. ثانية هنا"
    assert texts(segment(t)) == ["عنوان بلا نقطة", "أول فقرة هنا.", "ثانية هنا"]


def test_ellipsis_inside_a_line_is_a_pause():
    assert texts(segment("شاهد.. لحظة وصول الوفد إلى المطار. ثم بدأ")) == [
        "شاهد.. لحظة وصول الوفد إلى المطار.",
        "ثم بدأ",
    ]


def test_missing_space_after_stop_still_splits():
    assert texts(segment("انتهى الاجتماع.وقال الوزير إنه راض.")) == ["انتهى الاجتماع.", "وقال الوزير إنه راض."]


def test_never_splits_inside_a_protected_span():
    clean, spans = strip_brackets("جملة أولى. [جملة مدرجة. فيها نقطتان.] جملة أخيرة.")
    got = segment(clean, spans)
    assert texts(got) == ["جملة أولى.", "جملة مدرجة. فيها نقطتان.", "جملة أخيرة."]
    assert (got[1].start, got[1].end) == spans[0]


WORDS = ["قال", "الوزير", "إن", "المشروع", "سيكتمل", "العام", "المقبل", "وأضاف", "في", "بيان", "3.5", "د.", "الرياض"]
ENDS = [".", "؟", "!", '."', ".”"]


@st.composite
def labelled_article(draw):
    """Random paragraphs of random sentences, some wrapped in brackets."""
    paragraphs, expected = [], []
    for _ in range(draw(st.integers(1, 4))):
        sents = []
        for _ in range(draw(st.integers(1, 5))):
            words = draw(st.lists(st.sampled_from(WORDS), min_size=2, max_size=12))
            body = " ".join(["وقال"] + words) + draw(st.sampled_from(ENDS))
            inserted = draw(st.booleans())
            sents.append(f"[{body}]" if inserted else body)
            expected.append((body, inserted))
        paragraphs.append(" ".join(sents))
    return "\n\n".join(paragraphs), expected


@settings(max_examples=200, deadline=None)
@given(labelled_article())
def test_random_bracket_placement_lines_up(article):
    text, expected = article
    clean, spans = strip_brackets(text)
    forced = segment(clean, spans)
    # Every bracketed sentence comes back whole, at its own offsets, and nothing else is lost.
    assert [s.text for s in forced] == [body for body, _ in expected]
    inserted = [(s.start, s.end) for s, (_, ins) in zip(forced, expected) if ins]
    assert inserted == spans
    # Without being told where the brackets were, the segmenter cuts at the same places.
    assert [(s.start, s.end) for s in segment(clean)] == [(s.start, s.end) for s in forced]


def test_direction_mark_after_the_stop_still_splits():
    assert texts(segment("انتهى الموسم.\u200e وبدأ موسم جديد.")) == ["انتهى الموسم.\u200e", "وبدأ موسم جديد."]


# Characters the model never sees (serving.normalize.sanitize): the segmenter looks through them.
JUNK = [
    "\x00",
    "\x01",
    "\x1a",
    "\x7f",
    "\x9b",
    "\u202a",
    "\u202b",
    "\u202c",
    "\u202d",
    "\u202e",
    "\u2066",
    "\u2067",
    "\u2068",
    "\u2069",
    "\u061c",
    "\u200b",
    "\u200c",
    "\u200d",
    "\u200e",
    "\u200f",
    "\u2060",
    "\ufeff",
    "\u00ad",
    "\ufe0e",
    "\ufe0f",
    "😀",
    "👍🏽",
    "👨‍👩‍👧‍👦",
    "🇸🇦",
    "❤️",
    "1️⃣",
    "#️⃣",
    "\ue000",
    "\uffff",
]


def test_bidi_isolates_around_a_stop_do_not_hide_the_boundary():
    t = "جملة أولى.\u2069 جملة ثانية."
    assert texts(segment(t)) == ["جملة أولى.\u2069", "جملة ثانية."]
    t = "\u2067جملة أولى.\u2069 \u2067جملة ثانية.\u2069"
    assert texts(segment(t)) == ["\u2067جملة أولى.\u2069", "\u2067جملة ثانية.\u2069"]
    # An embedding that opens the next sentence goes with it, even without a space between.
    t = "\u202bجملة أولى.\u202c\u202bجملة ثانية.\u202c\n\n\u202eجملة ثالثة.\u202c"
    assert texts(segment(t)) == ["\u202bجملة أولى.\u202c", "\u202bجملة ثانية.\u202c", "\u202eجملة ثالثة.\u202c"]


def test_controls_and_emoji_after_a_stop_do_not_hide_the_boundary():
    assert texts(segment("انتهى الاجتماع.\x00 وغادر الوفد.")) == ["انتهى الاجتماع.\x00", "وغادر الوفد."]
    assert texts(segment("انتهى الاجتماع.👍🏽 وغادر الوفد.")) == ["انتهى الاجتماع.👍🏽", "وغادر الوفد."]


def test_controls_before_an_abbreviation_stop_are_seen_through():
    assert texts(segment("وقال د\u200f. محمد العلي إن الخطة جاهزة.")) == ["وقال د\u200f. محمد العلي إن الخطة جاهزة."]


def test_a_line_of_nothing_but_emoji_is_no_sentence():
    assert texts(segment("انتهى الاجتماع.\n\n🔥🔥\n\nوغادر الوفد.")) == ["انتهى الاجتماع.", "وغادر الوفد."]


@settings(max_examples=200, deadline=None)
@given(labelled_article(), st.data())
def test_unseen_characters_anywhere_change_no_boundary(article, data):
    text = article[0].replace("[", "").replace("]", "")
    cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), min_size=1, max_size=12)))
    junk = [data.draw(st.lists(st.sampled_from(JUNK), min_size=1, max_size=3)) for _ in cuts]
    noisy, last = "", 0
    for cut, j in zip(cuts, junk):
        noisy += text[last:cut] + "".join(j)
        last = cut
    noisy += text[last:]
    clean, got = segment(text), segment(noisy)
    assert all(noisy[s.start : s.end] == s.text for s in got)
    # The same sentences, each carrying the junk that was inserted inside it or at its edges.
    unjunk = lambda s: "".join(c for c in s if c not in "".join(JUNK)).strip()  # noqa: E731
    assert [unjunk(s.text) for s in got] == texts(clean)
