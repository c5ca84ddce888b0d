import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serving.normalize import check_steps, normalize, sanitize


def test_host_quirks_and_clean_writing_normalise_to_the_same_text():
    quirky = "وقال\u00a0الوزير ، إن  المشروع\u200f سينتهي .وأضاف"
    clean = "وقال الوزير، إن المشروع سينتهي. وأضاف"
    steps = ["whitespace", "punctuation"]
    assert normalize(quirky, steps) == normalize(clean, steps)


def test_orthography_folds_hamza_ya_tatweel_and_digits():
    assert normalize("أكد إبراهيم آل مصطفى الكبـــير ١٢٣", ["orthography"]) == "اكد ابراهيم ال مصطفي الكبير 123"
    assert normalize("اكد", ["orthography"]) == normalize("أكد", ["orthography"])


def test_arabertv02_spaces_punctuation_and_strips_diacritics():
    assert normalize('قالَ: "نعم"!!!', ["arabertv02"]) == 'قال : " نعم " ! !'


def test_unknown_step_is_refused():
    with pytest.raises(ValueError, match="unknown normalisation"):
        check_steps(["whitespace", "stemming"])


ARTICLE = "قال وزير المالية إن العجز تراجع 3.5% إلى 12 مليار ﷼ (3.2 مليار $) في 2024."


def test_sanitize_removes_controls_bidi_and_zero_width_characters():
    assert sanitize("قال\x00 الوزير\x1a\x7f\x9b") == "قال الوزير"
    assert sanitize("\u2067قال الوزير\u2069 \u202bإن\u202c \u202d\u202e\u2066\u2068\u061c") == "قال الوزير إن"
    assert sanitize("قال\u200b\u200c\u200d\u2060\ufeff\u00ad\u200e\u200f الوزير") == "قال الوزير"
    # Line-breaking controls separate words: they become one space.
    assert sanitize("قال\tالوزير\nإن\r\n\x0bالعجز\x85\u2028تراجع") == "قال الوزير إن العجز تراجع"


def test_sanitize_removes_emoji_with_their_modifiers_and_sequences():
    emoji = [
        "😀",
        "👍🏽",
        "👨\u200d👩\u200d👧\u200d👦",
        "🇸🇦",
        "❤️",
        "☺︎",
        "✈",
        "⭐",
        "1️⃣",
        "#️⃣",
        "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",
        "\ufe0f",
        "\U000e0100",
        "🫠",
    ]
    for e in emoji:
        assert sanitize(f"قال {e} الوزير{e}") == "قال الوزير", ascii(e)


def test_sanitize_removes_private_use_and_unassigned_code_points():
    assert sanitize("قال\ue000 الوزير\U000f0000\uffff\u0378") == "قال الوزير"
    assert sanitize("قال \ud83d الوزير") == "قال الوزير"  # a lone surrogate, as JSON can carry


def test_sanitize_keeps_what_news_writes():
    assert sanitize(ARTICLE) == ARTICLE
    kept = "٪ ° © ® ™ € £ ¥ ● • ■ ▪ ▶ ← → ※ ‼ ⁉ ؟ ، ؛ « » “ ” ۞ ۩ ؎ ﷽ ﷲ \u0600١٢ \u06dd١ ١٢٣ قالَ ما شاءَ اللهُ ـ"
    assert sanitize(kept) == kept
    assert sanitize("وقال\u00a0الوزير") == "وقال\u00a0الوزير"  # exotic spaces are the whitespace step's business


def test_sanitize_collapses_the_spaces_that_removal_leaves():
    assert sanitize("  قال  😀  الوزير \x00 ") == "قال الوزير"


@pytest.fixture(scope="module")
def everything_left() -> str:
    """sanitize of every code point (seconds: a million characters, none of them repeated)."""
    return sanitize("".join(chr(cp) for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF))


@pytest.mark.slow
def test_sanitize_removes_every_emoji_pictograph(everything_left):
    """The hand-written character class against Unicode's own Extended_Pictographic property."""
    regex = pytest.importorskip("regex")
    kept = set("©®‼⁉™ℹ↔↕↖↗↘↙↩↪Ⓜ▪▫▶◀◻◼◽◾⤴⤵⬅⬆⬇〰〽")  # text symbols and punctuation that news writes
    missed = [f"U+{ord(c):04X}" for c in regex.findall(r"\p{Extended_Pictographic}", everything_left) if c not in kept]
    assert not missed


JUNK = st.sampled_from(
    [
        "\x00",
        "\x01",
        "\x1a",
        "\x7f",
        "\x9b",
        "\u202a",
        "\u202e",
        "\u2066",
        "\u2069",
        "\u061c",
        "\u200b",
        "\u200c",
        "\u200d",
        "\u200f",
        "\ufeff",
        "\ufe0f",
        "😀",
        "👍🏿",
        "👩\u200d💻",
        "🇪🇬",
        "2️⃣",
        "*️⃣",
        "\ue123",
        "\U0010fffd",
        "\U000e0041",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_inserting_unseen_characters_anywhere_changes_nothing(data):
    cuts = sorted(data.draw(st.lists(st.integers(0, len(ARTICLE)), min_size=1, max_size=8)))
    noisy, last = "", 0
    for cut in cuts:
        noisy += ARTICLE[last:cut] + "".join(data.draw(st.lists(JUNK, min_size=1, max_size=3)))
        last = cut
    noisy += ARTICLE[last:]
    assert sanitize(noisy) == sanitize(ARTICLE) == ARTICLE
    assert sanitize(sanitize(noisy)) == sanitize(noisy)


@pytest.mark.slow
def test_sanitize_leaves_no_control_format_or_unassigned_character(everything_left):
    assert not {unicodedata.category(c) for c in everything_left} & {"Cc", "Co", "Cn", "Cs", "Zl", "Zp"}
    formats = {f"U+{ord(c):04X}" for c in everything_left if unicodedata.category(c) == "Cf"}
    assert formats <= {
        "U+0600",
        "U+0601",
        "U+0602",
        "U+0603",
        "U+0604",
        "U+0605",
        "U+06DD",
        "U+070F",
        "U+0890",
        "U+0891",
        "U+08E2",
        "U+110BD",
        "U+110CD",
    }  # visible signs that number or abbreviate
