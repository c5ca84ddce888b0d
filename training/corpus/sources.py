"""Host sources: three corpora read into one layout (a `Host`: title paragraph, then body paragraphs).

    ../shared/corpora/saudinewsnet/*.zip          Saudi outlets, 2015 (CC BY-NC-SA 4.0)
    ../shared/corpora/baly2018/articles.jsonl.gz  web articles from 773 outlets, 2011-2018 (research use)
    ../shared/corpora/armpro/pages.jsonl          paragraphs of 241 outlets' pages, 2020-2022 (CC BY-NC-SA 4.0)

The corpora stay where they are; the repository keeps host ids, content hashes and our own
sentences only. Each reader cleans what its source's scraping left behind, so that a host's
formatting is no shortcut for telling it from our insertions (the shortcut audit measures what is
left, per source):
- baly2018: one sentence a line, paragraph breaks lost, menus and related-article lists mixed in,
  spaced punctuation (" ." " , " "1 . 4") and holes where hyperlink anchor text was removed
  ("وفقا لجريدة ."). Boilerplate lines are dropped, spacing is repaired, texts with an anchor hole
  are rejected, and sentences are grouped into paragraphs of two to four (seeded by the id).
- armpro: the annotated paragraphs of a page, in page order (not always consecutive in the original).
Outlets kept for independent evaluation never become hosts, whatever the source (EXCLUDED_DOMAINS).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import re
from pathlib import Path
from typing import Callable, Iterator

from serving.brackets import FormatError
from serving.errors import InputError, MissingError
from serving.normalize import ARABIC_LETTER
from training.corpus.hosts import Host, iter_corpus
from training.defaults import CORPORA

# Evaluation-only outlets: never training, dev or hosts.
EXCLUDED_DOMAINS = ("bbc.com", "bbc.co.uk", "arabic.cnn.com", "jawharafm.net")

# A media noun left without its name: the anchor text that named the outlet was cut out.
# Indefinite only: "الصحيفة أن" is a paper named earlier, "لجريدة ." a name that went missing.
_ANCHOR_HOLE = re.compile(
    r"(?:^|\s)[لبو]?(?:صحيفة|جريدة|وكالة|موقع|قناة|مجلة|شبكة|تلفزيون|إذاعة)"
    r"\s*(?:[.,،:؛)]|$|(?:تقريرا|تقريراً|أن|إن|عن|نقلا|نقلاً)(?=\s))"
)
# Lines that are page furniture, not article text.
_BOILERPLATE = re.compile(
    r"(?:©|حقوق (?:النشر|الطبع)|جميع الحقوق|اقرأ أيضا|اقرأ أيضاً|إقرأ أيضا|شارك(?:ها)? على|تابعونا|"
    r"اشترك في|للاشتراك|النشرة البريدية|الأكثر قراءة|مواضيع ذات صلة|أخبار ذات صلة|تعليقات|"
    r"الرجاء|إدخال|كلمة المرور|اسم المستخدم|تسجيل الدخول|التصفح|القائمة الرئيسية|الصفحة الرئيسية|"
    r"مواقع التواصل|البريد الإلكتروني|فيسبوك|تويتر|واتساب|يوتيوب|انستغرام|تطبيق|إعلان|"
    r"https?://|www\.|\.com\b|\||\*|/ )",
    re.IGNORECASE,
)
_SPACE_BEFORE = re.compile(r"\s+([.,،؛:!?؟)\]»])")
_SPACE_AFTER_OPEN = re.compile(r"([(\[«])\s+")
_DECIMAL = re.compile(r"(?<=\d) \. (?=\d)")
_DOTS = re.compile(r"\.(?: \.)+")
_TERMINAL = '.!?؟…"”»)'


_ISO_DATE = re.compile(r"^\s*(\d{4})[-/.](\d{1,2})")
_DMY_DATE = re.compile(r"^\s*\d{1,2}[-/.](\d{1,2})[-/.](\d{4})\b")


def year_month(date: str | None) -> str | None:
    """'YYYY-MM' of a date as the sources print it (ISO '2022-09-27T…', '2015-08-08 14:46', or '17/04/2020');
    None when it cannot be read (ArMPro prints some dates in words)."""
    if not date:
        return None
    m = _ISO_DATE.match(date)
    if m:
        y, mo = int(m.group(1)), int(m.group(2))
    else:
        m = _DMY_DATE.match(date)
        if not m:
            return None
        y, mo = int(m.group(2)), int(m.group(1))
    return f"{y:04d}-{mo:02d}" if 1 <= mo <= 12 else None


def excluded(domain_or_url: str) -> bool:
    host = re.sub(r"^[a-z]+://", "", domain_or_url.lower()).split("/")[0]
    return any(host == d or host.endswith("." + d) for d in EXCLUDED_DOMAINS)


def _digest(paragraphs: tuple[str, ...]) -> str:
    return hashlib.sha256("\n\n".join(paragraphs).encode("utf-8")).hexdigest()


def _arabic_share(text: str) -> float:
    letters = sum(c.isalpha() for c in text)
    return len(ARABIC_LETTER.findall(text)) / letters if letters else 0.0


def repair_spacing(line: str) -> str:
    """Undo the source's spaced punctuation: "قال ." -> "قال.", "1 . 4" -> "1.4", ". ." -> "..".
    (Kept "?" and "," as written: the model's normalisation maps them in Arabic context.)"""
    line = _DECIMAL.sub(".", line)
    line = _DOTS.sub(lambda m: "." * (m.group(0).count(".")), line)
    line = _SPACE_BEFORE.sub(r"\1", line)
    line = _SPACE_AFTER_OPEN.sub(r"\1", line)
    return re.sub(r"\s+", " ", line).strip()


def is_boilerplate(line: str) -> bool:
    words = line.split()
    return (
        len(words) < 5
        or _BOILERPLATE.search(line) is not None
        or _arabic_share(line) < 0.8
        or line[-1:] not in _TERMINAL
    )


def has_anchor_hole(text: str) -> bool:
    return _ANCHOR_HOLE.search(text) is not None


def _group(sentences: list[str], seed: str) -> list[str]:
    """Paragraphs of two to four sentences, the sizes drawn with a seed of the article's own."""
    rng = random.Random(seed)
    out, i = [], 0
    while i < len(sentences):
        k = rng.randint(2, 4)
        out.append(" ".join(sentences[i : i + k]))
        i += k
    return out


def _records(path: Path, what: str) -> Iterator[dict]:
    """The JSON lines of a source file (plain or .gz), less those of evaluation-only outlets."""
    if not path.is_file():
        raise MissingError(f"no {what} at {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as err:
                raise FormatError(str(path), lineno, f"invalid JSON ({err.msg})") from None
            if not (excluded(rec.get("domain", "")) or excluded(rec.get("url", ""))):
                yield rec


def iter_baly2018(root: Path = CORPORA / "baly2018") -> Iterator[Host]:
    """Cleaned baly2018 articles; rejected ones (anchor holes, too little text left) are skipped."""
    for rec in _records(Path(root) / "articles.jsonl.gz", "baly2018 articles"):
        lines = [repair_spacing(x) for x in rec["text"].splitlines() if x.strip()]
        body = [x for x in lines if not is_boilerplate(x)]
        if len(body) < 5 or any(has_anchor_hole(x) for x in body):
            continue
        # No headline in this source: the first sentence stands as the title paragraph, so that
        # nothing is ever inserted before it (insertions never go into paragraph 0).
        paras = tuple([body[0]] + _group(body[1:], rec["id"]))
        yield Host(
            id=f"baly-{rec['id']}",
            outlet=rec["domain"],
            url=rec.get("url", ""),
            title=body[0],
            date="",
            sha256=_digest(paras),
            paragraphs=paras,
            source="baly2018",
        )


def iter_armpro(root: Path = CORPORA / "armpro") -> Iterator[Host]:
    """ArMPro pages: title, then the page's annotated paragraphs in page order."""
    for rec in _records(Path(root) / "pages.jsonl", "ArMPro pages"):
        title = re.sub(r"\s+", " ", rec.get("title") or "").strip()
        body = [re.sub(r"\s+", " ", p["text"]).strip() for p in rec.get("paragraphs", [])]
        body = [p for p in body if p]
        if not title or not body:
            continue
        paras = tuple([title] + body)
        yield Host(
            id=f"armpro-{rec['page_id']}",
            outlet=rec["domain"],
            url=rec.get("url", ""),
            title=title,
            date=(rec.get("date") or "")[:10],
            sha256=_digest(paras),
            paragraphs=paras,
            source="armpro",
        )


READERS: dict[str, Callable[[Path], Iterator[Host]]] = {
    "saudinewsnet": iter_corpus,
    "baly2018": iter_baly2018,
    "armpro": iter_armpro,
}


def source_of(host_id: str) -> str:
    """Which source a host id belongs to (baly- and armpro- prefixes; everything else SaudiNewsNet)."""
    for prefix, name in (("baly-", "baly2018"), ("armpro-", "armpro")):
        if host_id.startswith(prefix):
            return name
    return "saudinewsnet"


def iter_hosts(corpora: Path = CORPORA, sources: tuple[str, ...] = tuple(READERS)) -> Iterator[Host]:
    """Every host of the named sources, each read from corpora/<source>."""
    for name in sources:
        if name not in READERS:
            raise InputError(f"unknown host source {name!r}; known: {', '.join(READERS)}")
        yield from READERS[name](Path(corpora) / name)


def load_hosts(ids: set[str], corpora: Path = CORPORA) -> dict[str, Host]:
    """The hosts with these ids, reading only the sources they come from."""
    wanted = {source_of(i) for i in ids}
    found = {h.id: h for h in iter_hosts(corpora, tuple(s for s in READERS if s in wanted)) if h.id in ids}
    missing = sorted(ids - set(found))
    if missing:
        raise InputError(f"{len(missing)} host ids not found under {corpora}: {missing[:5]}")
    return found
