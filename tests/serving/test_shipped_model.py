"""The shipped bundle, models/mudraj-e5-small: small, intact, and the same as before pruning."""

import json

import numpy as np
import pytest

from serving.brackets import strip_brackets
from serving.bundle import read_metadata
from serving.predictor import Predictor, flags, sigmoid
from tests._paths import REPO, need_example

BUNDLE = REPO / "models" / "mudraj-e5-small"
pytestmark = pytest.mark.skipif(not (BUNDLE / "metadata.json").is_file(), reason=f"{BUNDLE} not released yet")


@pytest.fixture(scope="module")
def predictor():
    return Predictor(BUNDLE, precision="int8", threads=2)


def test_bundle_is_small_complete_and_verified():
    meta = read_metadata(BUNDLE, verify=True)  # sha256 of every file
    size = sum(p.stat().st_size for p in BUNDLE.iterdir())
    assert size <= 40 * 2**20, f"{size / 2**20:.1f} MiB"
    assert set(meta["files"]) >= {"model.int8.onnx", "tokenizer.json", "reference_dev_scores.json"}
    assert (BUNDLE / "README.md").read_text(encoding="utf-8").startswith("# mudraj-e5-small")
    assert meta["pruning"]["vocab_after"] < meta["pruning"]["vocab_before"]
    assert 0 < meta["threshold"] < 1 and meta["temperature"] > 0


def _int8_dot_product_without_saturation() -> bool:
    """True on CPUs whose int8 dot products accumulate exactly (AVX-512 VNNI, AVX-VNNI, AMX): the kind the
    reference scores were recorded on. Elsewhere (AVX2 only) onnxruntime's u8s8 kernels saturate, and
    dynamic int8 amplifies small float differences, so the same bundle scores a few sentences differently."""
    try:
        flags = next(l for l in open("/proc/cpuinfo", encoding="utf-8") if l.startswith("flags")).split()
    except (OSError, StopIteration):
        return False
    return bool({"avx512_vnni", "avx_vnni", "amx_int8"} & set(flags))


def test_pruned_model_scores_dev_like_the_full_vocabulary_model(predictor, built_corpus):
    """Rebuild the dev split from the corpus and compare with the full model's recorded scores."""
    from training.corpus.articles import load_articles

    tmp_path = built_corpus
    ref = json.loads((BUNDLE / "reference_dev_scores.json").read_text())
    # The dev articles the bundle was released on (the corpus may have grown since: new hosts are compared
    # at the next release, not here); each must come out of today's builder exactly as it was.
    released = {i.rsplit(":", 1)[0] for i in ref["ids"]}
    arts = [a for a in load_articles([tmp_path / "dev.jsonl"]) if a.id in released]
    ids = [f"{a.id}:{i}" for a in arts for i in range(len(a.sentences))]
    assert ids == ref["ids"]
    margins = predictor.article_margins([[s.text for s in a.sentences] for a in arts])
    got = sigmoid(np.concatenate([m for m, _ in margins]))  # temperature 1, as recorded
    want = np.array(ref["scores"])
    diff = np.abs(got - want)
    if _int8_dot_product_without_saturation():
        # Same int8 arithmetic as at release: the release check itself (pruning moved no score by more).
        assert diff.max() <= ref["tolerance"]
    else:
        # Another CPU kind: pruning plus the CPU's own int8 variation (docs/benchmarks.md, "Scores across
        # CPUs"; measured on an AVX2-only AMD EPYC: median 0.0013, 13 of 1,288 labels flipped).
        meta = read_metadata(BUNDLE, verify=False)
        logit = lambda p: np.log(np.clip(p, 1e-9, 1 - 1e-9) / np.clip(1 - p, 1e-9, 1))  # noqa: E731
        labels = [flags(sigmoid(logit(x) / meta["temperature"]), meta["threshold"]) for x in (got, want)]
        assert np.median(diff) <= 0.005
        assert (labels[0] == labels[1]).mean() >= 0.985


def test_example_article(predictor):
    example = need_example()
    clean, spans = strip_brackets(example.read_text(encoding="utf-8"))
    sents = predictor.predict_texts([clean])[0]
    inserted = {(s.start, s.end) for s in sents if s.label == "inserted"}
    truth = set(spans)
    recall = len(inserted & truth) / len(truth)
    false_alarms = len(inserted - truth)
    assert recall >= 0.6 and false_alarms <= 1, (recall, false_alarms)
    # The shipped bundle says what it sees (issue 24): a kind, with its top 3, on every flagged sentence only.
    kinds = set(predictor.kinds)
    assert len(kinds) == 12
    for s in sents:
        if s.label == "reporting":
            assert s.kind is None, s
            continue
        top = s.kind["top"]
        assert s.kind["name"] == top[0]["name"] and s.kind["name"] in kinds, s.kind
        assert [t["p"] for t in top] == sorted((t["p"] for t in top), reverse=True) and len(top) == 3
