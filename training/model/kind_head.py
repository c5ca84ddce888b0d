"""The kind head fitted on a finished article run's frozen sentence vectors (issue 24, `mudraj kinds`).

Trained jointly (config kind_loss_weight), a freshly initialised kind head learns at the encoder's
small learning rate: at weight 0.1 the issue 20 run reached a dev kind accuracy of 0.24 after a whole
epoch. Here the detector is left exactly as it is: every sentence vector the article model's own
heads read (the mean of its tokens' output vectors) is computed once for the inserted sentences whose
kind is known, and a multinomial logistic regression (scikit-learn, classes balanced, its strength
chosen on dev macro-F1) is fitted on them. Its standardisation is folded into one linear layer that
becomes the model's `kind_classifier`, so the exported graph gains the kind_logits output and the
detector's logits stay bit-for-bit what they were: there is no "with and without the head" difference
in the main task to measure, by construction (tests/training/test_kind_head.py checks it).

The result is a new run folder (the input run is only read), ready for `mudraj release`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from serving.batch.io import atomic_dir, atomic_write_text
from serving.errors import ExistsError, InputError, MissingError

STRENGTHS = (0.01, 0.03, 0.1, 0.3, 1.0)  # LogisticRegression C values tried on dev


def sentence_vectors(model, encoder, articles, kinds: list[str], batch_size: int = 8, progress: bool = True):
    """(vectors [n, hidden], kind index [n]) of the inserted sentences with a known kind, one vector per
    sentence from the window that scores it at inference (as evaluation counts them)."""
    import torch
    from tqdm.auto import tqdm

    from training.model.article_model import IGNORE, WindowCollator, featurize_windows, pool_units

    cols = featurize_windows(articles, encoder, scored_only=True, kinds=kinds)
    rows = [
        {k: cols[k][i] for k in ("input_ids", "marker_positions", "labels", "kind_labels")}
        for i in range(len(cols["input_ids"]))
        if any(k != IGNORE for k in cols["kind_labels"][i])
    ]
    rows.sort(key=lambda r: len(r["input_ids"]))  # less padding
    collate = WindowCollator(encoder.pad_id)
    xs, ys = [], []
    model.eval()
    with torch.inference_mode():
        for i in tqdm(range(0, len(rows), batch_size), desc="sentence vectors", unit="batch", disable=not progress):
            b = collate(rows[i : i + batch_size])
            hidden = model.bert(
                input_ids=b["input_ids"], attention_mask=b["attention_mask"], token_type_ids=b["token_type_ids"]
            ).last_hidden_state
            units = pool_units(hidden, b["attention_mask"], b["marker_positions"])
            known = b["kind_labels"] != IGNORE
            xs.append(units[known].float().numpy())
            ys.append(b["kind_labels"][known].numpy())
    if not xs:
        raise InputError(
            "no inserted sentence with a known kind in these articles: the kind head has nothing to learn from"
        )
    return np.concatenate(xs), np.concatenate(ys)


def fit_linear(x_train, y_train, x_dev, y_dev, n_kinds: int, seed: int = 13):
    """The logistic regression with the best dev macro-F1, as (weight [kinds, hidden], bias [kinds],
    report). Classes absent from training get a bias far below the others (never predicted)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x_train)
    xt, xd = scaler.transform(x_train), scaler.transform(x_dev)
    tried = []
    best = None
    for c in STRENGTHS:
        clf = LogisticRegression(C=c, class_weight="balanced", max_iter=3000, random_state=seed).fit(xt, y_train)
        pred = clf.predict(xd)
        f1 = float(f1_score(y_dev, pred, average="macro", labels=sorted(set(y_dev))))
        tried.append(
            {"C": c, "dev_macro_f1": round(f1, 4), "dev_accuracy": round(float(accuracy_score(y_dev, pred)), 4)}
        )
        if best is None or f1 > best[0]:
            best = (f1, c, clf)
    _, c, clf = best
    # Standardisation folded in: w·((x - mu) / sd) + b = (w / sd)·x + (b - w·(mu / sd)).
    coef = clf.coef_ / scaler.scale_
    bias = clf.intercept_ - coef @ scaler.mean_
    weight = np.zeros((n_kinds, x_train.shape[1]), dtype=np.float32)
    full_bias = np.full(n_kinds, -1e4, dtype=np.float32)
    classes = clf.classes_ if len(clf.classes_) > 2 else None
    if classes is None:  # binary: scikit-learn keeps one row for classes_[1]
        weight[clf.classes_[1]], full_bias[clf.classes_[1]] = coef[0], bias[0]
        full_bias[clf.classes_[0]] = 0.0
    else:
        weight[classes], full_bias[classes] = coef, bias
    return (
        weight,
        full_bias,
        {"chosen_C": c, "tried": tried, "train_sentences": int(len(y_train)), "dev_sentences": int(len(y_dev))},
    )


def fit_kind_head(
    run_dir: Path,
    out_dir: Path,
    train_data: list[Path],
    dev_data: list[Path],
    batch_size: int = 8,
    progress: bool = True,
) -> dict:
    """Copy the article run at run_dir to out_dir with a kind head fitted on its frozen sentence vectors."""
    import torch

    from serving.defaults import default_threads
    from training.corpus.articles import load_articles
    from training.corpus.insertions import KINDS
    from training.model.article_model import load_model
    from training.model.config import TrainConfig
    from training.model.train import build_encoder

    run_dir, out_dir = Path(run_dir), Path(out_dir)
    meta_file = run_dir / "run.json"
    if not meta_file.is_file() or not (run_dir / "model").is_dir():
        raise MissingError(f"{run_dir} is not a finished training run (no run.json or model/)")
    if out_dir.exists():
        raise ExistsError(f"{out_dir} exists; pick another --out (the run is never overwritten)")
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    cfg = TrainConfig.model_validate(meta["config"])
    if cfg.model_type != "article":
        raise InputError(f"{run_dir} is a {cfg.model_type} model; the kind head is built for the article model")
    torch.set_num_threads(cfg.threads or default_threads())
    kinds = list(KINDS)
    model = load_model(run_dir / "model", "article")
    encoder = build_encoder(run_dir, cfg)  # the run's own tokenizer.json and normalisation
    x_train, y_train = sentence_vectors(model, encoder, load_articles(train_data), kinds, batch_size, progress)
    x_dev, y_dev = sentence_vectors(model, encoder, load_articles(dev_data), kinds, batch_size, progress)
    weight, bias, report = fit_linear(x_train, y_train, x_dev, y_dev, len(kinds), cfg.seed)

    model.config.kind_labels, model.config.kind_loss_weight = kinds, 0.0
    head = torch.nn.Linear(model.config.hidden_size, len(kinds))
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(weight))
        head.bias.copy_(torch.from_numpy(bias))
    model.kind_classifier = head
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp / "model")
        for name in ("tokenizer.json", "dev.jsonl"):
            if (run_dir / name).is_file():
                shutil.copyfile(run_dir / name, tmp / name)
        meta["kind_head"] = {
            "method": "logistic regression on the frozen sentence vectors (training/model/kind_head.py)",
            "from_run": str(run_dir),
            "train_data": [str(p) for p in train_data],
            "dev_data": [str(p) for p in dev_data],
            "kinds": kinds,
            **report,
        }
        meta["config"]["output_dir"] = str(out_dir)
        atomic_write_text(tmp / "run.json", json.dumps(meta, ensure_ascii=False, indent=2) + "\n")
    return meta["kind_head"]
