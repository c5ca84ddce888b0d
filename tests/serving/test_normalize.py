import pytest

from serving.normalize import check_steps, normalize


def test_host_quirks_and_clean_writing_normalise_to_the_same_text():
    quirky = "وقال\u00a0الوزير ، إن  المشروع\u200f سينتهي .وأضاف"
    clean = "وقال الوزير، إن المشروع سينتهي. وأضاف"
    steps = ["whitespace", "punctuation"]
    assert normalize(quirky, steps) == normalize(clean, steps)


def test_orthography_folds_hamza_ya_tatweel_and_digits():
    assert normalize("أكد إبراهيم آل مصطفى الكبـــير ١٢٣", ["orthography"]) == "اكد ابراهيم ال مصطفي الكبير 123"
    assert normalize("اكد", ["orthography"]) == normalize("أكد", ["orthography"])


def test_arabertv02_spaces_punctuation_and_strips_diacritics():
    assert normalize("قالَ: \"نعم\"!!!", ["arabertv02"]) == 'قال : " نعم " ! !'


def test_unknown_step_is_refused():
    with pytest.raises(ValueError, match="unknown normalisation"):
        check_steps(["whitespace", "stemming"])
