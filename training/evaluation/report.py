"""What `mudraj evaluate` and `mudraj release` write for people: figures, and Markdown rendered from
the templates in training/evaluation/templates/ (report.md.j2, model_card.md.j2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

TEMPLATES = Path(__file__).resolve().parent / "templates"


def cell(value) -> str:
    """A table cell: floats to 3 decimals, missing values as a dash."""
    if value is None:
        return "–"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def render(template: str, **context) -> str:
    """Render a template from training/evaluation/templates/; a placeholder with no value is an error, not a blank."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["cell"] = cell
    env.filters["pct"] = lambda v: "–" if v is None else f"{100 * v:.2f}%"
    env.filters["md"] = lambda text: str(text).replace("|", "/").replace("\n", " ")  # safe inside a table row
    return env.get_template(template).render(**context)


def render_report(result: dict, figures: list[str]) -> str:
    """report.md for an evaluate() result (the dict written to report.json)."""
    headline = {
        f"**model** ({result['model']['name']}, {result['model']['precision']})": result["test"],
        **result["baselines"],
    }
    return render("report.md.j2", r=result, headline=headline, figures=figures)


def figures(out: Path, labels: np.ndarray, probs: np.ndarray, thr: float, tfidf: np.ndarray | None) -> list[str]:
    """Precision-recall curve, reliability diagram, confusion matrix and score histogram, as PNGs in out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import ConfusionMatrixDisplay, PrecisionRecallDisplay

    from serving.predictor import flags

    def save(fig, name: str) -> str:
        fig.tight_layout()
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        return name

    names = []
    fig, ax = plt.subplots(figsize=(5, 4))
    PrecisionRecallDisplay.from_predictions(labels, probs, ax=ax, name="model")
    if tfidf is not None:
        PrecisionRecallDisplay.from_predictions(labels, tfidf, ax=ax, name="char TF-IDF + LR")
    ax.set_title("Precision-recall, inserted class")
    names.append(save(fig, "pr_curve.png"))

    fig, ax = plt.subplots(figsize=(5, 4))
    frac, mean = calibration_curve(labels, probs, n_bins=10, strategy="quantile")
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect")
    ax.plot(mean, frac, "o-", label="model")
    ax.set_xlabel("predicted P(inserted)")
    ax.set_ylabel("observed share inserted")
    ax.legend()
    ax.set_title("Reliability diagram")
    names.append(save(fig, "reliability.png"))

    fig, ax = plt.subplots(figsize=(4.5, 4))
    ConfusionMatrixDisplay.from_predictions(
        labels, flags(probs, thr).astype(int), display_labels=["reporting", "inserted"], ax=ax, colorbar=False
    )
    ax.set_title(f"Confusion matrix (threshold {thr:.3f})")
    names.append(save(fig, "confusion.png"))

    fig, ax = plt.subplots(figsize=(5, 4))
    bins = np.linspace(0, 1, 41)
    ax.hist(probs[labels == 0], bins=bins, alpha=0.6, label="reporting", log=True)
    ax.hist(probs[labels == 1], bins=bins, alpha=0.6, label="inserted", log=True)
    ax.axvline(thr, color="k", ls="--", label="threshold")
    ax.set_xlabel("P(inserted)")
    ax.set_ylabel("sentences (log)")
    ax.legend()
    ax.set_title("Scores by true class")
    names.append(save(fig, "score_hist.png"))
    return names
