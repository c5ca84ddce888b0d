import pytest

from serving.features import Encoder, load_tokenizer
from training.model.backbones import resolve_backbone


@pytest.fixture(scope="module", params=["tiny-wordpiece", "tiny-unigram"])
def tokenizer(request):
    return load_tokenizer(resolve_backbone(request.param) / "tokenizer.json")


SENTS = ["افتتح الوزير محطة جديدة لتحلية المياه.", "وقال إن المحطة ستخدم المدينة.", "وأضاف أن العمل استغرق ثلاث سنوات."]


def test_pair_layout_matches_the_tokenizers_own_post_processor(tokenizer):
    enc = Encoder(tokenizer, 128, 1)
    feats = enc.encode_article(SENTS)
    assert [f.sentence for f in feats] == [0, 1, 2]
    mid = feats[1]
    sent = tokenizer.encode(SENTS[1], add_special_tokens=False)
    left = tokenizer.encode(SENTS[0], add_special_tokens=False)
    right = tokenizer.encode(SENTS[2], add_special_tokens=False)
    ref = tokenizer.post_process(sent, left, add_special_tokens=True)
    # Same specials and token types as the tokenizer's own pair encoding, context = left SEP right.
    n = ref.ids.index(sent.ids[0]) + len(sent.ids)
    assert mid.input_ids[:n] == ref.ids[:n] and mid.token_type_ids[:n] == ref.type_ids[:n]
    assert mid.token_type_ids[-1] == ref.type_ids[-1]  # the context segment's type
    joined = left.ids + enc.separator + right.ids
    assert (
        joined
        == mid.input_ids[len(mid.input_ids) - len(joined) - len(enc.t.suffix) : len(mid.input_ids) - len(enc.t.suffix)]
    )
    assert len(mid.input_ids) == len(mid.token_type_ids)


def test_without_context_the_input_is_the_single_sentence(tokenizer):
    enc = Encoder(tokenizer, 128, 0)
    f = enc.encode_article(SENTS)[0]
    assert f.input_ids == tokenizer.encode(SENTS[0]).ids


def test_long_sentences_are_windowed_never_truncated(tokenizer):
    enc = Encoder(tokenizer, 32, 1)
    long = " ".join(SENTS * 10)
    feats = enc.encode_article([SENTS[0], long])
    n_tokens = len(tokenizer.encode(long, add_special_tokens=False).ids)
    windows = [f for f in feats if f.sentence == 1]
    assert len(windows) == -(-n_tokens // enc.sentence_budget) > 1
    assert all(len(f.input_ids) <= 32 for f in feats)


def test_controls_bidi_marks_and_emoji_never_reach_the_tokenizer(tokenizer):
    noisy = [
        "\u2067افتتح الوزير 😀 محطة\x00 جديدة لتحلية المياه.\u2069",
        "وقال إن👍🏽 المحطة ستخدم\u200b المدينة.\u200f",
        "وأضاف\u202b أن العمل استغرق 🇸🇦 ثلاث سنوات.❤️\ue000",
    ]
    # Always on, whatever the bundle's named normalisation steps: bundles already shipped are covered too.
    for steps in [(), ("whitespace", "punctuation")]:
        enc = Encoder(tokenizer, 128, 1, steps)
        assert enc.encode_article(noisy) == enc.encode_article(SENTS)
