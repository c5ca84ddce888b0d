"""The shortcut audit finds a formatting quirk that separates the classes, and sees it vanish once
the normalisation that closes it is applied; with no quirk it stays at chance."""

import json
import random

import pytest

from training.corpus.audit import audit

pytest.importorskip("sklearn")

WORDS = "قال وزير النقل إن مشروع القطار سيكتمل العام المقبل بعد تأخر استمر عامين في المدينة".split()


def write_records(folder, quirk: bool, n: int = 300, seed: int = 0):
    """Sentences of random words; with `quirk`, every reporting sentence carries an NBSP and a space
    before its full stop (what host outlets do), inserted sentences never do."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "dev"):
        rows = []
        for i in range(n):
            label = "inserted" if i % 3 == 0 else "reporting"
            words = rng.sample(WORDS, 8)
            text = " ".join(words) + "."
            if quirk and label == "reporting":
                text = " ".join(words[:4]) + "\u00a0" + " ".join(words[4:]) + " ."
            rows.append({"text": text, "label": label})
        (folder / f"{split}.records.jsonl").write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
        )
    return folder


def test_audit_flags_a_quirk_and_normalisation_removes_it(tmp_path):
    r = audit(write_records(tmp_path / "quirky", quirk=True))
    assert r["quirks: raw"]["dev_roc_auc"] > 0.95
    assert set(r["quirks: raw"]["top_features"]) & {"nbsp", "space_before_punct"}
    assert r["quirks: whitespace+punctuation"]["dev_roc_auc"] <= 0.6


def test_audit_stays_at_chance_without_a_quirk(tmp_path):
    r = audit(write_records(tmp_path / "clean", quirk=False))
    assert all(abs(v["dev_roc_auc"] - 0.5) <= 0.1 for k, v in r.items() if k.startswith("quirks"))


def test_audit_reports_each_source_on_its_own(tmp_path):
    both = tmp_path / "both"
    both.mkdir()
    for split in ("train", "dev"):
        rows = []
        for src, quirk, seed in (("baly2018", True, 1), ("armpro", False, 2)):
            one = write_records(tmp_path / f"{src}-only", quirk=quirk, seed=seed)
            for line in (one / f"{split}.records.jsonl").read_text(encoding="utf-8").splitlines():
                rows.append(json.dumps({**json.loads(line), "source": src}, ensure_ascii=False))
        (both / f"{split}.records.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    r = audit(both, settings={"raw": []})
    # Each source's row is that source on its own: the quirky one is found, the clean one is at chance.
    # Scored out of fold over train+dev (article-grouped folds), every sentence counted once.
    assert r["quirks, baly2018 only: raw"]["cv_roc_auc"] > 0.95
    assert abs(r["quirks, armpro only: raw"]["cv_roc_auc"] - 0.5) <= 0.1
    assert r["quirks, armpro only: raw"]["sentences"] == 600 and r["quirks, armpro only: raw"]["inserted"] == 200
