from hypothesis import given, settings, strategies as st

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
    assert texts(segment(t)) == ['وقال إن "الوقت حان للعمل."', "وأضاف أن الاجتماع انتهى.", 'وختم: "لن نتراجع".', "ثم غادر."]
    t2 = 'وقال إن "الأمر انتهى" . ثم غادر.'
    assert texts(segment(t2)) == ['وقال إن "الأمر انتهى" .', "ثم غادر."]


def test_paragraph_breaks_end_a_sentence_without_punctuation():
    t = "عنوان بلا نقطة\n\nأول فقرة هنا. ثانية هنا"
    assert texts(segment(t)) == ["عنوان بلا نقطة", "أول فقرة هنا.", "ثانية هنا"]


def test_ellipsis_inside_a_line_is_a_pause():
    assert texts(segment("شاهد.. لحظة وصول الوفد إلى المطار. ثم بدأ")) == ["شاهد.. لحظة وصول الوفد إلى المطار.", "ثم بدأ"]


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
