"""Issue 23: the shipped bundle gives the same labels on an AVX2-only CPU as on this one.

Debian's qemu-user runs `mudraj predict` as a Haswell CPU (AVX2, no AVX-512, no VNNI), so the check
runs on any x86-64 machine (`make test` installs qemu-user as root, as it does Chromium). It is slow,
so it labels a handful of texts: the labelled example and the dev sentences (with one neighbour on
each side) whose probability lies nearest the bundle's threshold, where a CPU's rounding would first
change a label.
"""

import pytest

from serving.brackets import strip_brackets
from serving.defaults import DEFAULT_MODEL
from tests._paths import need_example
from training.evaluation.cpu_emulation import AVX2_ONLY, compare, predict_labels, probe, qemu, write_articles

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        qemu() is None,
        reason="qemu-x86_64 missing (Debian: apt-get install qemu-user; `make test` installs it when run as root)",
    ),
    pytest.mark.skipif(not (DEFAULT_MODEL / "metadata.json").is_file(), reason=f"{DEFAULT_MODEL} not released yet"),
]

BORDERLINE = 8  # snippets of three sentences
DEV_ARTICLES = 60  # the dev articles searched for them (natively)


def test_the_shipped_bundle_labels_borderline_sentences_the_same_on_an_avx2_only_cpu(built_corpus, tmp_path):
    import json

    rows = [json.loads(line) for line in (built_corpus / "dev.jsonl").read_text(encoding="utf-8").splitlines()]
    articles = [(r["id"], strip_brackets(r["text"])[0]) for r in rows[:DEV_ARTICLES]]
    example = need_example()
    chosen = [
        ("example", strip_brackets(example.read_text(encoding="utf-8"))[0]),
        *probe(DEFAULT_MODEL, articles, k=BORDERLINE),
    ]
    inputs = write_articles(chosen, tmp_path / "probe.jsonl")
    native = predict_labels(DEFAULT_MODEL, inputs)
    emulated = predict_labels(DEFAULT_MODEL, inputs, cpu=AVX2_ONLY)
    result = compare(native, emulated)
    assert result["sentences"] >= 20
    assert not result["flips"], (
        f"{len(result['flips'])} of {result['sentences']} labels differ under qemu -cpu {AVX2_ONLY}: {result['flips']}"
    )
