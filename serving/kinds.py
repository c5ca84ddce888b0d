"""The kinds of insertion a bundle's kind head tells apart (issue 24), as people read them: an Arabic
name and a one-line Arabic description for the page, an English line for the docs and the API schema.
The bundle's metadata lists the kinds its head predicts (metadata "kinds", in output order); this
table only names them, so a bundle with other kinds still works (its names are shown as they are)."""

from __future__ import annotations

KIND_TEXT: dict[str, dict[str, str]] = {
    "framing": {
        "ar": "تأطير",
        "desc_ar": "جملة تضع الخبر في إطار عام دون أن تضيف معلومة",
        "en": "generic framing that places the news in a context and adds no information",
    },
    "significance": {
        "ar": "تضخيم الأهمية",
        "desc_ar": "جملة تؤكد أهمية الحدث من غير مصدر",
        "en": "a claim that the event matters, with no source",
    },
    "outlook": {
        "ar": "استشراف",
        "desc_ar": "توقع عام لما سيأتي لا ينسبه الخبر إلى أحد",
        "en": "a general outlook on what comes next, attributed to no one",
    },
    "background": {
        "ar": "خلفية عامة",
        "desc_ar": "معلومة خلفية عامة لم يكتبها كاتب الخبر",
        "en": "generic background the reporter did not write",
    },
    "hope": {
        "ar": "أمنية",
        "desc_ar": "تعبير عن أمل أو رجاء لا يرد على لسان مصدر",
        "en": "a hope or wish voiced by no source",
    },
    "vague_report": {
        "ar": "تقارير مبهمة",
        "desc_ar": "إحالة إلى تقارير أو مصادر لا يسميها الخبر",
        "en": "a reference to reports or sources the article does not name",
    },
    "fake_attribution": {
        "ar": "نسبة مختلقة",
        "desc_ar": "قول ينسب إلى مراقبين أو مسؤولين ويحاكي الصياغة الصحفية؛ راجع المصدر الأصلي",
        "en": "a statement attributed to observers or officials in reporting style: check the original source",
    },
    "rhetorical_question": {
        "ar": "سؤال بلاغي",
        "desc_ar": "سؤال موجه إلى القارئ لا يجيب عنه الخبر",
        "en": "a question to the reader that the article does not answer",
    },
    "evaluative": {
        "ar": "حكم تقييمي",
        "desc_ar": "حكم أو انفعال لم يعبر عنه كاتب الخبر",
        "en": "a judgement or emotion the reporter did not express",
    },
    "connective_aside": {
        "ar": "جملة ربط",
        "desc_ar": "جملة انتقالية تربط الفقرات ولا تضيف شيئا",
        "en": "a transition that links paragraphs and adds nothing",
    },
    "fabricated_quote": {
        "ar": "اقتباس مختلق",
        "desc_ar": "اقتباس بين علامتي تنصيص ينسب إلى متحدث مبهم",
        "en": "a direct quote given to a vague or invented speaker",
    },
    "hedged_prediction": {
        "ar": "توقع متحفظ",
        "desc_ar": "تنبؤ بتفاصيل توحي بالدقة مع تحفظ",
        "en": "a hedged forecast with specific-sounding detail",
    },
}


def describe(kinds: list[str]) -> list[dict[str, str]]:
    """The bundle's kinds, in its order, each with its names (a kind not in the table keeps its own name)."""
    return [{"name": k, **KIND_TEXT.get(k, {"ar": k, "desc_ar": "", "en": ""})} for k in kinds]
