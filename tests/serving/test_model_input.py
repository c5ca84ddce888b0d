"""Input the model should not see: controls, bidi marks, zero-width characters and emoji anywhere in an
article move no score and change no sentence (issue 12, point 6).

Run on the shipped bundle and on the tiny test bundle; the articles are written here.
"""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from serving.predictor import Predictor
from tests._paths import REPO

SHIPPED = REPO / "models" / "mudraj-e5-small"

ARTICLES = [
    "افتتح وزير النقل اليوم محطة جديدة للقطارات في مدينة الدمام. وقال الوزير إن المحطة ستخدم آلاف الركاب "
    "يوميا. ويرى كثيرون أن هذه الخطوة تأخرت كثيرا ولم تعد تكفي حاجة المدينة. وأضاف أن العمل في المشروع "
    "استغرق ثلاث سنوات.",
    "أعلنت الهيئة العامة للإحصاء أن معدل التضخم بلغ 2.1% في الربع الثالث.\n\nوأوضحت الهيئة في بيان أن أسعار "
    "الغذاء ارتفعت 4 في المئة، بينما تراجعت أسعار النقل. ومن المؤكد أن المواطن هو من يدفع الثمن في النهاية!\n\n"
    "وكان معدل التضخم قد سجل 1.8% في الربع السابق.",
    'قال المدرب في مؤتمر صحفي: "الفريق جاهز للمباراة." وأضاف أن اللاعبين تدربوا جيدا طوال الأسبوع. '
    "هل يستطيع الفريق أن يعود بالفوز؟ وتقام المباراة مساء الجمعة على ملعب المدينة.",
]

# Characters the model never sees: C0/C1 controls (NUL...), bidi embeddings, overrides and isolates, zero-width
# and other format characters, variation selectors, emoji with skin tones, ZWJ sequences, flags and keycaps,
# private use and noncharacters.
JUNK = [
    "\x00",
    "\x01",
    "\x08",
    "\x1a",
    "\x1b",
    "\x7f",
    "\x80",
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
    "🔥",
    "👍",
    "👍🏽",
    "👋🏿",
    "👨\u200d👩\u200d👧\u200d👦",
    "👩🏾\u200d💻",
    "🇸🇦",
    "🇪🇬",
    "❤️",
    "☺︎",
    "✅",
    "1️⃣",
    "#️⃣",
    "\ue000",
    "\U000f0001",
    "\uffff",
]


@pytest.fixture(scope="module", params=["shipped", "tiny"])
def predictor(request):
    if request.param == "shipped":
        if not (SHIPPED / "metadata.json").is_file():
            pytest.skip(f"{SHIPPED} not released yet (no metadata.json)")
        return Predictor(SHIPPED, precision="int8", threads=2)
    return Predictor(request.getfixturevalue("tiny_bundle"), threads=2)


@pytest.fixture(scope="module")
def clean(predictor):
    return predictor.predict_texts(ARTICLES)


@st.composite
def noisy_article(draw):
    """One of ARTICLES with runs of JUNK inserted at random places, inside words and between sentences."""
    k = draw(st.integers(0, len(ARTICLES) - 1))
    text = ARTICLES[k]
    cuts = sorted(draw(st.lists(st.integers(0, len(text)), min_size=1, max_size=10)))
    out, last = "", 0
    for cut in cuts:
        out += text[last:cut] + "".join(draw(st.lists(st.sampled_from(JUNK), min_size=1, max_size=3)))
        last = cut
    return k, out + text[last:]


@pytest.mark.slow  # trains or converts a model
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(noisy_article())
def test_unseen_characters_move_no_score(predictor, clean, article):
    k, text = article
    got = predictor.predict_texts([text])[0]
    want = clean[k]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert text[g.start : g.end] == g.text  # offsets refer to the text as submitted, junk included
        assert g.score == w.score and g.label == w.label, (w.text, w.score, g.text, g.score)  # the same model input
