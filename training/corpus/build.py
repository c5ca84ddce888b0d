"""The training corpus: selected host articles + our insertions -> labelled articles.

    data/hosts.jsonl            selected hosts: id, outlet, content hash (no host text)
    data/insertions/*.jsonl     our sentences: host, para, slot, [new_para], kind, text
    -> build/corpus/{train,dev,test}.jsonl   labelled articles (bracket format in "text")
    -> build/corpus/{train,dev,test}.records.jsonl   sentence records for the trainer

Splits go by outlet: the test outlets appear nowhere else, so the test score is out of domain.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

from serving.batch.io import atomic_write_json, atomic_write_jsonl
from serving.errors import InputError
from serving.segment import segment
from training.corpus.hosts import Host, read_selection
from training.corpus.insertions import TEST_ONLY_VOICES, Insertion, check, insertion_files, read_insertions
from training.corpus.sources import load_hosts
from training.corpus.splits import read_splits, split_of
from training.defaults import CORPORA, CORPUS_DIR, DATA

MIN_WORDS, MAX_WORDS = 8, 50


def assemble(host: Host, insertions: list[Insertion]) -> tuple[str, list[Insertion]]:
    """The labelled article: host paragraphs with our sentences in [ ] at their slots; and the
    insertions in reading order."""
    by_para: dict[int, list[Insertion]] = defaultdict(list)
    new_paras: dict[int, list[Insertion]] = defaultdict(list)
    for ins in insertions:
        (new_paras if ins.new_para else by_para)[ins.para].append(ins)
    paragraphs: list[str] = []
    order: list[Insertion] = []  # reading order
    # Square brackets mark insertions: the host's own (rare) brackets become parentheses.
    host_paras = [p.replace("[", "(").replace("]", ")") for p in host.paragraphs]
    for p, para in enumerate(host_paras + [None]):
        for ins in sorted(new_paras.get(p, []), key=lambda i: i.line):
            paragraphs.append(f"[{ins.text}]")
            order.append(ins)
        if para is None:
            break
        sents = segment(para)
        cuts = sorted(by_para.get(p, []), key=lambda i: i.slot)
        pieces, pos = [], 0
        for ins in cuts:
            at = sents[ins.slot].start if ins.slot < len(sents) else len(para)
            pieces.append(para[pos:at].rstrip())
            pieces.append(f"[{ins.text}]")
            order.append(ins)
            pos = at
        pieces.append(para[pos:])
        paragraphs.append(" ".join(x for x in pieces if x))
    return "\n\n".join(paragraphs), order


def build(
    data_dir: Path = DATA, corpora: Path = CORPORA, out: Path = CORPUS_DIR, hold_out_source: str | None = None
) -> dict:
    """Write the labelled corpus; returns counts per split. Byte-identical across runs.

    hold_out_source: a leave-one-source-out corpus. Every host of that source is test; the other
    sources keep their train and dev splits, and their own test outlets are left out altogether."""
    from serving.batch.inputs import RawArticle
    from training.corpus.articles import parse_article, to_records

    data_dir = Path(data_dir)
    selection = read_selection(data_dir / "hosts.jsonl")
    if hold_out_source is not None and hold_out_source not in {c.source for c in selection}:
        raise InputError(
            f"--hold-out-source {hold_out_source!r}: no host comes from it "
            f"(sources: {', '.join(sorted({c.source for c in selection}))})"
        )
    outlet_splits = read_splits(data_dir / "splits.json")
    insertions = read_insertions(insertion_files(data_dir))
    hosts = load_hosts({c.id for c in selection}, corpora)
    changed = [c.id for c in selection if hosts[c.id].sha256 != c.sha256]
    if changed:
        raise InputError(
            f"{len(changed)} host articles differ from the recorded content hash "
            f"(a corpus under {corpora} changed), e.g. {changed[:3]}"
        )
    problems, _ = check(insertions, hosts, selection)
    if problems:
        raise InputError(f"{len(problems)} insertion problems, first: {problems[0]} (run `mudraj corpus check`)")
    by_host: dict[str, list[Insertion]] = defaultdict(list)
    for ins in insertions:
        by_host[ins.host].append(ins)
    splits: dict[str, list[dict]] = {"train": [], "dev": [], "test": []}
    records: dict[str, list[dict]] = {"train": [], "dev": [], "test": []}
    counts: dict = {}
    for cand in selection:
        host = hosts[cand.id]
        text, order = assemble(host, by_host.get(cand.id, []))
        kinds = [i.kind for i in order]
        split = split_of(cand.outlet, outlet_splits)
        if hold_out_source is not None:
            if cand.source == hold_out_source:
                split = "test"
            elif split == "test":
                continue
        voices = [i.voice for i in order]
        held_out = [v for v in voices if v in TEST_ONLY_VOICES]
        if held_out and split != "test":
            raise InputError(
                f"{cand.id} ({cand.outlet}, {split} split) has insertions in the test-only voice "
                f"{held_out[0]!r}: put them in hosts of test outlets (data/splits.json)"
            )
        rec = {
            "id": cand.id,
            "outlet": cand.outlet,
            "source": cand.source,
            "genre": cand.genre,
            "style": cand.style,
            "split": split,
            "text": text,
            "kinds": kinds,
        }
        if host.date:
            rec["date"] = host.date[:10]  # carried through `mudraj predict` to `mudraj report`
        if any(v != "house" for v in voices):
            rec["voices"] = voices  # per insertion, in reading order (like kinds)
        article = parse_article(RawArticle(cand.id, "build", text=text, meta=dict(rec)))
        if sum(s.label for s in article.sentences) != len(kinds):
            raise AssertionError(
                f"{cand.id}: {len(kinds)} insertions but {sum(s.label for s in article.sentences)} inserted sentences"
            )
        splits[split].append(rec)
        it = iter(kinds)
        it_voice = iter(voices)
        for r in to_records([article], context_width=1):
            r["kind"] = next(it) if r["label"] == "inserted" else None
            if "voices" in rec:
                r["voice"] = next(it_voice) if r["label"] == "inserted" else None
            records[split].append(r)
    out = Path(out)
    for split in splits:
        atomic_write_jsonl(out / f"{split}.jsonl", splits[split])
        atomic_write_jsonl(out / f"{split}.records.jsonl", records[split])
        counts[split] = {
            "articles": len(splits[split]),
            "clean_articles": sum(not r["kinds"] for r in splits[split]),
            "sentences": len(records[split]),
            "inserted": sum(r["label"] == "inserted" for r in records[split]),
            "outlets": dict(sorted(Counter(r["outlet"] for r in splits[split]).items())),
            "kinds": dict(sorted(Counter(k or "none" for r in splits[split] for k in r["kinds"]).items())),
        }
    genuine_file = data_dir / "genuine.jsonl"
    if genuine_file.is_file() and hold_out_source is None:
        from training.corpus import genuine

        for name, rows in genuine.articles(genuine.read(genuine_file), corpora).items():
            atomic_write_jsonl(out / f"{name}.jsonl", rows)
            counts[name] = {"articles": len(rows), "outlets": len({r["outlet"] for r in rows})}
    atomic_write_json(out / "counts.json", counts)
    return counts
