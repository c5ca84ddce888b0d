"""Host selection, the insertion checker and the builder, on a tiny corpus we write here."""

import json
import zipfile

import pytest

from training.corpus import build as B
from training.corpus import insertions as C
from training.corpus.hosts import assess, iter_corpus, read_selection, write_selection
from training.corpus.selection import candidates

PARA = [
    "قال وزير النقل إن مشروع القطار سيكتمل العام المقبل بعد تأخر استمر عامين.",
    "وأضاف في تصريح للصحفيين أن نسبة الإنجاز بلغت 80 في المئة حتى الآن.",
    "وأوضح أن المرحلة الأولى تشمل خمس محطات في شمال المدينة.",
]
BODY = "\n\n".join(
    [
        " ".join(PARA),
        " ".join(PARA[1:] + PARA[:1]),
        "وذكر بيان للوزارة أن التكلفة بلغت ملياري ريال. وقال مسؤول إن العمل مستمر.",
    ]
)


def make_corpus(root, n_per_outlet=3, outlets=("outa", "outb", "outc")):
    arts = []
    for o in outlets:
        for i in range(n_per_outlet):
            arts.append(
                {
                    "source": o,
                    "url": f"http://{o}.example/{i}",
                    "date_extracted": "2015-08-01",
                    "title": f"عنوان الخبر رقم {i}",
                    "author": "",
                    "content": BODY + f"\n\nوقال المتحدث باسم {o} إن الرقم {i} صحيح.",
                }
            )
    arts.append(dict(arts[0], url="http://dup.example/0"))  # same content: deduplicated
    arts.append(
        {
            "source": "outa",
            "url": "http://outa.example/list",
            "date_extracted": "",
            "title": "قائمة",
            "author": "",
            "content": "أ\nب\nج",
        }
    )  # a fragment: rejected
    root.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(root / "2015-08-01.zip", "w") as z:
        z.writestr("2015-08-01.json", json.dumps(arts, ensure_ascii=False))
    return root


@pytest.fixture
def setup(tmp_path, monkeypatch):
    corpus = make_corpus(tmp_path / "corpora" / "saudinewsnet")
    data = tmp_path / "data"
    data.mkdir()
    (data / "splits.json").write_text(json.dumps({"test": ["outc"], "dev": ["outb"]}))
    cands = sorted((c for c, _ in candidates(iter_corpus(corpus)).values()), key=lambda c: (c.outlet, c.id))
    write_selection(cands, data / "hosts.jsonl")
    return corpus, data, cands


def write_insertions(data, rows):
    (data / "insertions").mkdir(parents=True, exist_ok=True)
    (data / "insertions" / "a.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )


GOOD = [
    "ويأتي هذا المشروع ضمن خطة أوسع لتطوير شبكة النقل العام في المدن الكبرى.",
    "ومن المتوقع أن يخفف القطار الجديد من الازدحام المروري الخانق في ساعات الذروة.",
    "ويرى مراقبون أن نجاح المشروع سيشجع على إطلاق مشاريع مماثلة في مناطق أخرى.",
]


def test_candidates_are_deduplicated_and_filtered(setup):
    corpus, data, cands = setup
    assert len({c.sha256 for c in cands}) == len(cands) == 9
    assert all(c.id.split("-")[0] in ("outa", "outb", "outc") for c in cands)
    assert read_selection(data / "hosts.jsonl") == cands
    frag = [h for h in iter_corpus(corpus) if h.url.endswith("list")][0]
    assert assess(frag) is None


def test_checker_accepts_good_and_names_each_problem(setup):
    corpus, data, cands = setup
    h = cands[0].id
    rows = [
        {"host": h, "para": 1, "slot": 1, "kind": "framing", "text": GOOD[0]},
        {"host": h, "para": 2, "slot": 3, "kind": "outlook", "text": GOOD[1]},
        {"host": h, "para": 4, "slot": 0, "new_para": True, "kind": "fake_attribution", "text": GOOD[2]},
    ]
    write_insertions(data, rows)
    from training.corpus.hosts import load_hosts

    hosts = load_hosts({c.id for c in cands}, corpus)
    problems, rep = C.check(C.read_insertions(C.insertion_files(data)), hosts, cands)
    assert problems == []
    assert rep["hosts_with_insertions"] == 1 and rep["clean_hosts"] == 8
    assert rep["positions"] == {"inside_paragraph": 1, "paragraph_end": 1, "new_paragraph": 1}
    bad = rows + [
        {"host": "nope-123", "para": 1, "slot": 0, "kind": "hope", "text": GOOD[0]},
        {
            "host": h,
            "para": 1,
            "slot": 1,
            "kind": "hope",
            "text": "جملة أخرى مختلفة تماما عن غيرها من الجمل في هذا الملف هنا.",
        },
        {
            "host": h,
            "para": 0,
            "slot": 0,
            "kind": "hope",
            "text": "عنوان آخر لا يجوز وضعه في سطر العنوان الرئيسي للخبر أبدا.",
        },
        {
            "host": h,
            "para": 1,
            "slot": 9,
            "kind": "hope",
            "text": "موضع غير موجود في الفقرة الأولى من هذا الخبر المختار هنا.",
        },
        {
            "host": h,
            "para": 3,
            "slot": 0,
            "kind": "guess",
            "text": "نوع غير معروف في قائمة الأنواع المعتمدة لدى المشروع هنا.",
        },
        {"host": h, "para": 3, "slot": 1, "kind": "hope", "text": "قصيرة جدا."},
        {
            "host": h,
            "para": 2,
            "slot": 0,
            "kind": "hope",
            "text": "جملة [بين قوسين] لا تصلح لأنها تكسر صيغة الملفات الموسومة.",
        },
        {
            "host": h,
            "para": 2,
            "slot": 1,
            "kind": "hope",
            "text": "جملة أولى هنا في النص. وجملة ثانية بعدها في النص نفسه.",
        },
        {"host": cands[1].id, "para": 1, "slot": 0, "kind": "hope", "text": GOOD[1]},
        {
            "host": cands[1].id,
            "para": 1,
            "slot": 1,
            "kind": "hope",
            "text": "ومن المتوقع أن يخفف القطار الجديد من الازدحام المروري الخانق في ساعات المساء.",
        },
        {
            "host": cands[1].id,
            "para": 1,
            "slot": 2,
            "kind": "hope",
            "text": "وأضاف في تصريح للصحفيين أن نسبة الإنجاز بلغت 80 في المئة حتى الآن.",
        },
    ]
    write_insertions(data, bad)
    problems, _ = C.check(C.read_insertions(C.insertion_files(data)), hosts, cands)
    text = "\n".join(problems)
    for needle in [
        "a.jsonl:4: unknown host id",
        "a.jsonl:5: a second insertion at the same position",
        "a.jsonl:6: paragraph 0 invalid",
        "a.jsonl:7: slot 9 invalid",
        "a.jsonl:8: unknown kind 'guess'",
        "a.jsonl:9: 2 words",
        "a.jsonl:10: text contains a bracket",
        "a.jsonl:11: text must be exactly one sentence",
        "a.jsonl:12: duplicate of",
        "a.jsonl:13: near-duplicate of",
        "a.jsonl:14: repeats 8+ consecutive words",
    ]:
        assert needle in text, needle


def test_build_is_reproducible_labels_insertions_and_splits_by_outlet(setup, tmp_path):
    corpus, data, cands = setup
    texts = GOOD + [
        "وتعاني المدن الكبرى منذ سنوات من ضغط متزايد على الطرق بسبب النمو السكاني السريع.",
        "ويأمل السكان أن تفتح المحطات الجديدة أبوابها في الموعد المعلن دون تأجيل جديد.",
        "وتشير تقارير متداولة إلى اهتمام شركات أجنبية بالمشاركة في تشغيل الخطوط المقبلة.",
    ]
    rows = [
        {"host": c.id, "para": 1 + i % 3, "slot": i % 2, "kind": C.KINDS[i % 7], "text": texts[i]}
        for i, c in enumerate(cands[:6])
    ]
    write_insertions(data, rows)
    a = B.build(data, corpus.parent, tmp_path / "b1")
    B.build(data, corpus.parent, tmp_path / "b2")
    for f in ("train.jsonl", "dev.jsonl", "test.jsonl", "train.records.jsonl", "counts.json"):
        assert (tmp_path / "b1" / f).read_bytes() == (tmp_path / "b2" / f).read_bytes()
    assert (
        a["test"]["outlets"] == {"outc": 3}
        and a["dev"]["outlets"] == {"outb": 3}
        and a["train"]["outlets"] == {"outa": 3}
    )
    assert sum(s["inserted"] for s in a.values()) == 6
    recs = [
        json.loads(l)
        for split in ("train", "dev", "test")
        for l in (tmp_path / "b1" / f"{split}.records.jsonl").read_text().splitlines()
    ]
    ins = [r for r in recs if r["label"] == "inserted"]
    assert sorted(r["text"] for r in ins) == sorted(r["text"] for r in rows)
    assert {r["kind"] for r in ins} == {r["kind"] for r in rows}


def test_build_detects_a_changed_corpus(setup, tmp_path):
    corpus, data, cands = setup
    write_insertions(data, [{"host": cands[0].id, "para": 1, "slot": 0, "kind": "hope", "text": GOOD[0]}])
    sel = [json.loads(l) for l in (data / "hosts.jsonl").read_text().splitlines()]
    sel[0]["sha256"] = "0" * 64
    (data / "hosts.jsonl").write_text("".join(json.dumps(s) + "\n" for s in sel))
    with pytest.raises(ValueError, match="differ from the recorded content hash"):
        B.build(data, corpus.parent, tmp_path / "b")


def test_malformed_insertion_file_names_file_and_line(tmp_path):
    f = tmp_path / "insertions" / "bad.jsonl"
    f.parent.mkdir()
    f.write_text(
        '{"host": "a", "para": 1, "slot": 0, "kind": "hope", "text": "نص."}\n{"host": "a", "para": "x"\n',
        encoding="utf-8",
    )
    from serving.brackets import FormatError

    with pytest.raises(FormatError, match=r"bad.jsonl:2: invalid JSON"):
        C.read_insertions([f])
    f.write_text('{"host": "a", "para": "1", "slot": 0, "kind": "hope", "text": "نص."}\n', encoding="utf-8")
    with pytest.raises(FormatError, match=r"bad.jsonl:1: para and slot must be integers"):
        C.read_insertions([f])
    good = '{"host": "a", "para": 1, "slot": 0, "kind": "hope", "text": "نص."}\n'.encode()
    f.write_bytes(good + good[:30] + b"\xff\xfe" + good[30:])
    with pytest.raises(FormatError, match=r"bad.jsonl:2: invalid UTF-8"):
        C.read_insertions([f])
    f.write_text(good.decode() + "[1, 2]\n", encoding="utf-8")
    with pytest.raises(FormatError, match=r"bad.jsonl:2: expected a JSON object"):
        C.read_insertions([f])


def test_malformed_host_selection_names_file_and_line(tmp_path):
    from serving.brackets import FormatError
    from training.corpus.hosts import read_selection

    f = tmp_path / "hosts.jsonl"
    f.write_bytes(b'{"id": \xff}\n')
    with pytest.raises(FormatError, match=r"hosts.jsonl:1: invalid UTF-8"):
        read_selection(f)
    f.write_text('{"id": "x", "no_such_field": 1}\n', encoding="utf-8")
    with pytest.raises(FormatError, match=r"hosts.jsonl:1: bad host record"):
        read_selection(f)


def test_leave_one_source_out_build(setup, tmp_path):
    corpus, data, cands = setup
    # Pretend outlet outa's hosts came from another source (the build reads the source from hosts.jsonl).
    rows = [json.loads(l) for l in (data / "hosts.jsonl").read_text().splitlines()]
    for r in rows:
        if r["outlet"] == "outa":
            r["source"] = "armpro"
    (data / "hosts.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    write_insertions(
        data, [{"host": c.id, "para": 1, "slot": 0, "kind": "hope", "text": GOOD[i]} for i, c in enumerate(cands[:3])]
    )
    counts = B.build(data, corpus.parent, tmp_path / "loso", hold_out_source="armpro")
    # armpro (outa, a train outlet in splits.json) is the whole test split; saudinewsnet keeps train/dev,
    # and its own test outlet (outc) is left out rather than trained on.
    assert counts["test"]["outlets"] == {"outa": 3}
    assert counts["dev"]["outlets"] == {"outb": 3} and counts["train"]["articles"] == 0
    with pytest.raises(ValueError, match="no host comes from it"):
        B.build(data, corpus.parent, tmp_path / "x", hold_out_source="nosuch")
