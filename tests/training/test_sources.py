"""Host sources: baly2018 and ArMPro readers on small corpora written here, the cleaning rules,
and the evaluation-only outlets that never become hosts."""

import gzip
import json

import pytest

from serving.segment import segment
from training.corpus import sources as S
from training.corpus.hosts import assess

SENTS = [
    "قال وزير النقل إن مشروع القطار سيكتمل العام المقبل بعد تأخر استمر عامين .",
    "وأضاف في تصريح للصحفيين أن نسبة الإنجاز بلغت 80 في المئة حتى الآن .",
    "وأوضح أن المرحلة الأولى تشمل خمس محطات في شمال المدينة , وأن الثانية تبدأ لاحقا .",
    "وذكر بيان للوزارة أن التكلفة بلغت 1 . 4 مليار ريال حتى نهاية العام الماضي .",
    "وقال مسؤول في الشركة المنفذة إن العمل يجري على مدار الساعة في الموقع .",
    "وأشار إلى أن الاختبارات التشغيلية ستبدأ في الربع الأخير من العام المقبل .",
    "وبحسب الخطة فإن القطار سينقل نحو مئة ألف راكب يوميا عند اكتمال المشروع .",
]


def write_baly(root, rows):
    root.mkdir(parents=True)
    with gzip.open(root / "articles.jsonl.gz", "wt", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def test_baly_cleaning_and_layout(tmp_path):
    menu = "الرئيسية | أخبار | رياضة | اتصل بنا"
    rows = [
        {
            "id": "R-1-00",
            "claim_id": "R-1",
            "domain": "example-news.net",
            "url": "https://example-news.net/a",
            "text": "\n".join([menu] + SENTS + ["جميع الحقوق محفوظة © 2016 لموقع المثال الإخباري ."]),
        },
        # A hole where the anchor text named the paper: rejected.
        {
            "id": "R-2-00",
            "claim_id": "R-2",
            "domain": "example-news.net",
            "url": "https://example-news.net/b",
            "text": "\n".join(SENTS[:4] + ["ونقلت الوكالة عن مصدر أمني قوله لصحيفة . إن التحقيق مستمر ."] + SENTS[4:]),
        },
        # Evaluation-only outlets never become hosts.
        {
            "id": "R-3-00",
            "claim_id": "R-3",
            "domain": "arabic.cnn.com",
            "url": "https://arabic.cnn.com/x",
            "text": "\n".join(SENTS),
        },
    ]
    write_baly(tmp_path / "baly2018", rows)
    hosts = list(S.iter_baly2018(tmp_path / "baly2018"))
    assert [h.id for h in hosts] == ["baly-R-1-00"]
    h = hosts[0]
    assert h.source == "baly2018" and h.outlet == "example-news.net"
    text = "\n\n".join(h.paragraphs)
    assert "|" not in text and "©" not in text  # menu and copyright lines dropped
    assert " ." not in text and " ," not in text and "1.4 مليار" in text  # spacing repaired
    assert h.paragraphs[0] == S.repair_spacing(SENTS[0])  # the first sentence stands as the title
    sizes = [len(segment(p)) for p in h.paragraphs[1:]]
    assert sum(sizes) == len(SENTS) - 1 and all(2 <= n <= 4 for n in sizes[:-1])  # grouped in twos to fours
    assert [h.paragraphs for h in S.iter_baly2018(tmp_path / "baly2018")] == [h.paragraphs]  # seeded
    assert assess(h) is not None


def test_armpro_pages_and_short_hosts(tmp_path):
    (tmp_path / "armpro").mkdir()
    pages = [
        {
            "page_id": "P1",
            "domain": "example.org",
            "url": "https://example.org/1",
            "title": "عنوان الخبر",
            "date": "2021-05-03T10:00:00Z",
            "paragraphs": [{"id": "P1_001", "text": " ".join(s.replace(" .", ".") for s in SENTS[:3])}],
        },
        {
            "page_id": "P2",
            "domain": "www.bbc.com",
            "url": "https://www.bbc.com/arabic/2",
            "title": "عنوان",
            "date": "2021",
            "paragraphs": [{"id": "P2_001", "text": "فقرة."}],
        },
    ]
    (tmp_path / "armpro" / "pages.jsonl").write_text(
        "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in pages), encoding="utf-8"
    )
    hosts = list(S.iter_armpro(tmp_path / "armpro"))
    assert [h.id for h in hosts] == ["armpro-P1"] and hosts[0].date == "2021-05-03"
    assert assess(hosts[0]) is not None  # one paragraph of three sentences is enough for this source


@pytest.mark.parametrize(
    "where, out",
    [
        ("bbc.com", True),
        ("www.bbc.co.uk", True),
        ("https://arabic.cnn.com/middle-east/x", True),
        ("jawharafm.net", True),
        ("cnn.com", False),
        ("aljazeera.net", False),
        ("notbbc.com", False),
    ],
)
def test_evaluation_only_outlets(where, out):
    assert S.excluded(where) is out


def test_anchor_holes_and_boilerplate():
    assert S.has_anchor_hole("ونقلت لصحيفة . عن مصدر")
    assert S.has_anchor_hole("وعرضت قناة تقريرا عن الحادث")
    assert not S.has_anchor_hole("وذكرت الصحيفة أن الاجتماع انتهى.")  # a paper named earlier
    assert S.is_boilerplate("شارك على فيسبوك تويتر واتساب البريد الإلكتروني .")
    assert not S.is_boilerplate(S.repair_spacing(SENTS[1]))


def test_load_hosts_routes_ids_to_their_source(tmp_path):
    write_baly(
        tmp_path / "baly2018",
        [{"id": "R-1-00", "claim_id": "R-1", "domain": "d.net", "url": "u", "text": "\n".join(SENTS)}],
    )
    assert S.source_of("baly-R-1-00") == "baly2018" and S.source_of("armpro-P1") == "armpro"
    assert S.source_of("okaz-0123456789") == "saudinewsnet"
    got = S.load_hosts({"baly-R-1-00"}, tmp_path)  # reads only baly2018: no other source is needed
    assert set(got) == {"baly-R-1-00"}
    with pytest.raises(ValueError, match="not found"):
        S.load_hosts({"baly-R-9-00"}, tmp_path)
