"""Shortcut audit: can formatting and orthography alone (no words) tell our sentences apart?

Host outlets write with quirks (NBSP, ` ، `, bare alef for hamza, tatweel, Hindi digits) that our
inserted sentences lack. If a classifier on such features alone beats chance, a model can learn
quirks instead of commentary. We measure it on the text the model sees, before and after the
normalisation steps, training on the train split and scoring the dev split.

    mudraj audit build/corpus
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import numpy as np

from serving.batch.inputs import read_jsonl
from serving.normalize import ARABIC_LETTERS, normalize

FEATURES = {
    "nbsp": lambda s: s.count("\u00a0"),
    "invisible_marks": lambda s: len(re.findall(r"[\u200b-\u200f\u202a-\u202e\ufeff]", s)),
    "double_space": lambda s: s.count("  "),
    "space_before_punct": lambda s: len(re.findall(r"\s[،؛,.:!؟?]", s)),
    "no_space_after_comma": lambda s: len(re.findall(r"[،,][^\s\d]", s)),
    "stop_glued_to_letter": lambda s: len(re.findall(f"\\.[{ARABIC_LETTERS}]", s)),
    "hamza_alef": lambda s: len(re.findall(r"[أإآ]", s)) / max(1, len(re.findall(r"[اأإآ]", s))),
    "bare_alef_word_start": lambda s: len(re.findall(r"(?:^|\s)ال?ا", s)) / max(1, len(s.split())),
    "alef_maqsura": lambda s: s.count("ى") / max(1, s.count("ى") + s.count("ي")),
    "ta_marbuta_as_ha": lambda s: len(re.findall(r"ه(?=\s|$)", s)) / max(1, len(re.findall(r"[هة](?=\s|$)", s))),
    "tatweel": lambda s: s.count("\u0640"),
    "diacritics": lambda s: len(re.findall(r"[\u064b-\u0652]", s)),
    "hindi_digits": lambda s: len(re.findall(r"[٠-٩]", s)),
    "latin_punct_comma": lambda s: s.count(","),
    "leading_space": lambda s: float(s[:1].isspace()),
    "html_or_entity": lambda s: len(re.findall(r"<[^>]+>|&\w+;", s)),
}
# Not quirks but structure: direct quotes and unpunctuated headlines/datelines are part of what
# reporting is. Reported separately so their signal is visible, not counted as a shortcut.
STRUCTURE = {
    "straight_quotes": lambda s: s.count('"'),
    "curly_quotes": lambda s: len(re.findall(r"[“”«»]", s)),
    "ends_with_stop": lambda s: float(s.rstrip()[-1:] == "."),
    "ends_without_punct": lambda s: float(s.rstrip()[-1:] not in '.!?؟"”»)'),
}


def featurize(sentences: Sequence[str], features: dict = FEATURES) -> np.ndarray:
    return np.array([[f(s) for f in features.values()] for s in sentences], dtype=np.float64)


def _load(path: Path) -> tuple[list[str], np.ndarray, list[str], list[str]]:
    texts, labels, sources, articles = [], [], [], []
    for n, r in read_jsonl(path):
        texts.append(r["text"])
        labels.append(int(r["label"] == "inserted"))
        sources.append(r.get("source") or "saudinewsnet")
        articles.append(str(r.get("article_id", f"{path.name}:{n}")))
    return texts, np.array(labels), sources, articles


def _classifier():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, class_weight="balanced"))


def _cv_auc(x: list[str], y: np.ndarray, groups: list[str], steps: list[str], folds: int = 5) -> dict:
    """ROC-AUC of out-of-fold scores, folds grouped by article: one source's dev split alone can be
    too small to tell (ArMPro: 155 dev sentences, where one dev-only AUC read 0.625 and five folds
    over train+dev read 0.535)."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupKFold, cross_val_predict

    feats = featurize([normalize(t, steps) if steps else t for t in x])
    p = cross_val_predict(_classifier(), feats, y, groups=groups, cv=GroupKFold(folds), method="predict_proba")
    return {
        "cv_roc_auc": round(float(roc_auc_score(y, p[:, 1])), 4),
        "folds": folds,
        "sentences": len(y),
        "inserted": int(y.sum()),
    }


def _auc(train_x, train_y, dev_x, dev_y, feats: dict, steps: list[str]) -> dict:
    from sklearn.metrics import roc_auc_score

    a = featurize([normalize(t, steps) if steps else t for t in train_x], feats)
    b = featurize([normalize(t, steps) if steps else t for t in dev_x], feats)
    clf = _classifier()
    clf.fit(a, train_y)
    auc = roc_auc_score(dev_y, clf.predict_proba(b)[:, 1])
    top = sorted(zip(feats, clf[-1].coef_[0]), key=lambda kv: -abs(kv[1]))[:4]
    return {"dev_roc_auc": round(float(auc), 4), "top_features": {k: round(float(v), 3) for k, v in top}}


def audit(corpus_dir: Path, settings: dict[str, list[str]] | None = None) -> dict:
    """ROC-AUC on dev of a formatting-only classifier, for each normalisation setting; with several
    host sources, also per source, since each corpus has quirks of its own: trained and scored on
    that source's train+dev sentences only, with five article-grouped folds (its dev split alone
    may be too small), after the last normalisation setting."""
    settings = settings or {
        "raw": [],
        "whitespace+punctuation": ["whitespace", "punctuation"],
        "whitespace+punctuation+orthography": ["whitespace", "punctuation", "orthography"],
    }
    train_x, train_y, train_s, train_a = _load(Path(corpus_dir) / "train.records.jsonl")
    dev_x, dev_y, dev_s, dev_a = _load(Path(corpus_dir) / "dev.records.jsonl")
    out = {}
    for group, feats in (("quirks", FEATURES), ("structure", STRUCTURE)):
        for name, steps in settings.items():
            out[f"{group}: {name}"] = _auc(train_x, train_y, dev_x, dev_y, feats, steps)
    sources = sorted(set(train_s) & set(dev_s))
    if len(sources) > 1:
        steps = list(settings.values())[-1]
        x, y, s, a = train_x + dev_x, np.concatenate([train_y, dev_y]), train_s + dev_s, train_a + dev_a
        for src in sources:
            idx = [i for i, v in enumerate(s) if v == src]
            if len(set(y[idx])) < 2 or len({a[i] for i in idx}) < 5:
                continue
            out[f"quirks, {src} only: {list(settings)[-1]}"] = _cv_auc(
                [x[i] for i in idx], y[idx], [a[i] for i in idx], steps
            )
    return out
