"""Commands of the corpus stage: `mudraj corpus select|show|check|genuine|build`, `mudraj segment`, `mudraj audit`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from training import defaults as D  # light: paths and numbers only
from training.cli.common import CORPORA_OPT, CORPUS_OPT, app, bundle_of, corpus_app, fail, guard  # noqa: F401 (one header for every stage module)


@corpus_app.command("select")
def corpus_select(
    corpora: Path = CORPORA_OPT,
    data: Path = typer.Option(D.DATA, help="data folder: hosts.jsonl and splits.json are extended"),
    per_source: int = typer.Option(900, help="hosts to take from each new source"),
    fill_sample: float = typer.Option(0.08, help="share of SaudiNewsNet read as the genre fill-up reserve"),
    seed: int = typer.Option(D.HOST_SEED),
):
    """Extend the host selection from every source: genres (zero-shot, cached in build/genres.jsonl),
    genre balance, new outlets split into dev/test. Hosts already selected are kept as they are."""
    from serving.batch.io import atomic_write_json
    from training.corpus.hosts import read_selection, write_selection
    from training.corpus.selection import assign_splits, read_rejected, select_all, summary
    from training.corpus.splits import read_splits

    def run():
        hosts_file, splits_file = data / "hosts.jsonl", data / "splits.json"
        existing = read_selection(hosts_file) if hosts_file.is_file() else []
        chosen = select_all(
            existing,
            corpora,
            cache=D.GENRE_CACHE,
            fill_sample=fill_sample,
            rejected=read_rejected(data / "rejected_hosts.txt"),
            per_source=per_source,
            seed=seed,
        )
        read_splits(splits_file)  # fail on a broken file before writing anything
        raw = json.loads(splits_file.read_text(encoding="utf-8"))
        raw.update(assign_splits(chosen, {"test": raw["test"], "dev": raw["dev"]}, seed=seed))
        write_selection(chosen, hosts_file)
        atomic_write_json(splits_file, raw)
        return chosen

    typer.echo(json.dumps(summary(guard(run)), indent=2, ensure_ascii=False))


@corpus_app.command("show")
def corpus_show(host_id: str, corpora: Path = CORPORA_OPT):
    """Print a host with \\[paragraph.slot] markers, for writing insertions."""
    from training.corpus.hosts import show
    from training.corpus.sources import load_hosts

    typer.echo(show(guard(lambda: load_hosts({host_id}, corpora))[host_id]))


@corpus_app.command("check")
def corpus_check(corpora: Path = CORPORA_OPT, data: Path = typer.Option(D.DATA, help="data folder")):
    """Validate the insertions and print their distribution."""
    from training.corpus.hosts import read_selection
    from training.corpus.insertions import check, insertion_files, read_insertions
    from training.corpus.sources import load_hosts

    def run():
        selection = read_selection(data / "hosts.jsonl")
        insertions = read_insertions(insertion_files(data))
        hosts = load_hosts({i.host for i in insertions} & {c.id for c in selection}, corpora)
        return check(insertions, hosts, selection)

    problems, rep = guard(run)
    typer.echo(json.dumps(rep, indent=2, ensure_ascii=False))
    for p in problems:
        typer.secho(p, err=True, fg=typer.colors.RED)
    if problems:
        fail(f"{len(problems)} problem(s) in the insertions", 1)
    typer.echo("insertions OK")


@corpus_app.command("genuine")
def corpus_genuine(
    corpora: Path = CORPORA_OPT,
    data: Path = typer.Option(D.DATA, help="data folder"),
    model: Path = typer.Option(
        D.REPO / "models" / "mudraj-e5-small",
        "--model",
        "-m",
        help="the bundle whose flags make hard negatives (the shipped model)",
    ),
    n_opinion: int = typer.Option(3000, help="opinion pieces to take from train outlets, genre-balanced"),
    n_scored: int = typer.Option(2000, help="train-outlet articles to score for hard negatives"),
    seed: int = typer.Option(D.HOST_SEED),
):
    """Mine genuine articles (no insertion) into data/genuine.jsonl: negatives from train outlets (hard
    negatives the model flags, opinion pieces), the false-alarm benchmark from dev and test outlets."""
    from training.corpus import genuine as G

    def run():
        pooled = G.pool(corpora, data)
        predictor, score_of = G.shipped_scorer(bundle_of(model))
        records = G.select(
            pooled,
            G.genres_with_cache(D.GENRE_CACHE),
            score_of,
            n_opinion=n_opinion,
            n_scored=n_scored,
            flag_at=predictor.threshold,
            seed=seed,
        )
        G.write(records, data / "genuine.jsonl")
        return G.summary(records)

    typer.echo(json.dumps(guard(run), indent=2, ensure_ascii=False))


@corpus_app.command("build")
def corpus_build(
    corpora: Path = CORPORA_OPT,
    data: Path = typer.Option(D.DATA, help="data folder"),
    out: Path = typer.Option(D.CORPUS_DIR, help="output folder"),
    hold_out_source: Optional[str] = typer.Option(
        None,
        help="leave-one-source-out: this source (saudinewsnet, baly2018, armpro) is the whole "
        "test split; the others train and validate, their test outlets left out",
    ),
):
    """Hosts + insertions -> labelled articles and sentence records, split by outlet."""
    from training.corpus.build import build

    counts = guard(lambda: build(data, corpora, out, hold_out_source=hold_out_source))
    typer.echo(json.dumps(counts, indent=2))


@app.command()
def segment(inputs: List[Path] = typer.Argument(..., help="labelled .txt / JSONL / folders")):
    """Report how often the segmenter cuts exactly at the bracket boundaries."""
    from training.corpus.articles import alignment, load_articles

    typer.echo(json.dumps(guard(lambda: alignment(load_articles(inputs))), indent=2))


@app.command()
def audit(corpus_dir: Path = typer.Argument(D.CORPUS_DIR, help="output of `mudraj corpus build`")):
    """Shortcut audit: ROC-AUC of a formatting-only classifier, before and after normalisation, and per source."""
    from training.corpus.audit import audit as run_audit

    typer.echo(json.dumps(guard(lambda: run_audit(corpus_dir)), indent=2, ensure_ascii=False))
