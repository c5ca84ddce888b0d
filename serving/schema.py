"""What a request to the service may be: the limits (MUDRAJ_* settings, serving/README.md) and the
pydantic input models of the endpoints: unknown fields refused, strict types, sizes bounded
(-> 400 with the field and the problem). The HTTP plumbing around them is serving/http.py.
"""

from __future__ import annotations

import os
from typing import Annotated, Any, Optional, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    model_validator,
)

from serving.batch.inputs import language_problem
from serving.brackets import FormatError, offsets_text, without_bom

# ---------------------------------------------------------------- settings


def env_int(name: str, default: int, minimum: int = 1) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise RuntimeError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise RuntimeError(f"{name} must be at least {minimum}, got {value}")
    return value


def env_flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise RuntimeError(f"{name} must be 1 or 0, got {raw!r}")


# 50,000 characters (about 650 sentences) are about 3 s of work for models/mudraj-e5-small on two CPU
# cores (bench/results/http.json: ~210 sentences/s): one request never holds a worker for long.
# About 200 sentences: ~7 s on a 2-core AVX2 machine (29 sentences/s), ~2 s on one with VNNI (docs/benchmarks.md),
# so one request cannot hold a worker for long. A long feature article is 10-15k characters.
MAX_CHARS = env_int("MUDRAJ_MAX_CHARS", 15_000)  # longest text or sentence
MAX_REQUEST_CHARS = env_int("MUDRAJ_MAX_REQUEST_CHARS", MAX_CHARS)  # all texts of one request together
MAX_ARTICLES = env_int("MUDRAJ_MAX_ARTICLES", 64)  # per /classify_batch request
MAX_SENTENCES = env_int("MUDRAJ_MAX_SENTENCES", 1024)  # per /classify_sentences request
MAX_BODY_BYTES = env_int("MUDRAJ_MAX_BODY_BYTES", 8 * 2**20)
MAX_QUEUE = env_int("MUDRAJ_MAX_QUEUE", 64)  # inference requests one worker holds (computing or waiting); more: 503
TIMEOUT = env_int("MUDRAJ_TIMEOUT", 300)  # seconds until an inference request is answered 504 and stopped
BODY_TIMEOUT = env_int("MUDRAJ_BODY_TIMEOUT", 20)  # seconds a client has to send its whole request body (else 408)
METRICS = env_flag("MUDRAJ_METRICS", True)  # Prometheus metrics at /metrics


# ---------------------------------------------------------------- request checks (-> HTTP 400)
# Every check is part of a pydantic input model, so a bad request is answered by BentoML with
# 400 {"error": "N validation error(s) for ClassifyInput", "detail": [{"loc": [field, ...], "msg": ...}]}.
# Unknown fields are refused (a typo such as "treshold" must not fall back to a default), and types
# are strict (true is not 1, "0.5" is not 0.5).


def _check_text(text: str) -> str:
    """The offsets of a response refer to the text less a leading BOM and the brackets (serving.brackets.offsets_text)."""
    if not without_bom(text).strip():
        raise ValueError("text is empty (or only whitespace)")
    if len(text) > MAX_CHARS:
        raise ValueError(f"text is {len(text)} characters long; the limit is {MAX_CHARS} (MUDRAJ_MAX_CHARS)")
    try:
        clean = offsets_text(text, source="text")
    except FormatError as err:
        raise ValueError(
            f"text has unbalanced brackets (line {err.line}: {err.message}); square brackets mark "
            "inserted sentences, so they must come in [ ] pairs"
        ) from None
    if "\x00" in clean:
        raise ValueError("text contains a NUL character (binary data, not text)")
    problem = language_problem(clean)
    if problem:
        raise ValueError(problem)
    return text


def _check_sentence(sentence: str) -> str:
    if not sentence.strip():
        raise ValueError("sentence is empty (or only whitespace)")
    if len(sentence) > MAX_CHARS:
        raise ValueError(f"sentence is {len(sentence)} characters long; the limit is {MAX_CHARS} (MUDRAJ_MAX_CHARS)")
    if "\x00" in sentence:
        raise ValueError("sentence contains a NUL character (binary data, not text)")
    problem = language_problem(sentence, what="sentence")
    if problem:
        raise ValueError(problem)
    return sentence


def _check_sentences(sentences: list[str]) -> list[str]:
    if not sentences:
        raise ValueError("sentences is empty; send at least one sentence")
    if len(sentences) > MAX_SENTENCES:
        raise ValueError(f"sentences has {len(sentences)} items; the limit is {MAX_SENTENCES} (MUDRAJ_MAX_SENTENCES)")
    return sentences


def _check_articles(articles: list["ArticleIn"]) -> list["ArticleIn"]:
    if not articles:
        raise ValueError("articles is empty; send at least one article")
    if len(articles) > MAX_ARTICLES:
        raise ValueError(f"articles has {len(articles)} items; the limit is {MAX_ARTICLES} (MUDRAJ_MAX_ARTICLES)")
    seen: set[str] = set()
    for a in articles:
        key = str(a.id)
        if key in seen:
            raise ValueError(f"articles: duplicate id {a.id!r}")
        seen.add(key)
    return articles


def _check_request_chars(texts: list[str]) -> None:
    """One request's work is bounded by its characters: it never holds the worker for long."""
    total = sum(map(len, texts))
    if total > MAX_REQUEST_CHARS:
        raise ValueError(
            f"the request carries {total} characters of text in all; the limit is "
            f"{MAX_REQUEST_CHARS} (MUDRAJ_MAX_REQUEST_CHARS): split it into several requests"
        )


_SAMPLE = "أعلنت وزارة الصحة اليوم افتتاح مستشفى جديد في المدينة. ويأتي ذلك في وقت يعاني فيه القطاع من إهمال مزمن."

ArticleText = Annotated[
    str,
    Field(
        strict=True,
        description="An Arabic news article, plain text. Sentences may be marked inserted with [ ] "
        "(they are removed before classification; offsets then refer to the text without them). "
        "A leading byte-order mark (U+FEFF) is not part of the text.",
        examples=[_SAMPLE],
    ),
    AfterValidator(_check_text),
]
Threshold = Annotated[
    Optional[Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False, strict=True)]],
    Field(
        description="Decision threshold in [0, 1]: a sentence is 'inserted' when its score >= threshold. "
        "Default: the model's own (see /model_card).",
        examples=[0.5],
    ),
]
SentenceList = Annotated[
    list[Annotated[str, Field(strict=True), AfterValidator(_check_sentence)]],
    Field(
        description="Sentences, already split by the caller. Each is scored alone (no context).",
        examples=[["أعلنت الوزارة افتتاح مستشفى جديد.", "ويأتي ذلك في وقت يعاني فيه القطاع من إهمال مزمن."]],
    ),
    AfterValidator(_check_sentences),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


_JSON_TYPES = {
    bool: "true/false",
    float: "a number with a fraction part",
    type(None): "null",
    list: "an array",
    dict: "an object",
}


def _check_id(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (str, int)):  # strict: true is not 1, 1.0 is not 1
        raise ValueError(
            f"id must be a string or a whole number, not {_JSON_TYPES.get(type(value), type(value).__name__)}"
        )
    return value


class ArticleIn(_Strict):
    id: Annotated[
        Union[StrictStr, StrictInt],
        BeforeValidator(_check_id),
        Field(
            description="Your identifier for the article (a string or a whole number); echoed back.", examples=["a1"]
        ),
    ]
    text: ArticleText


ArticleList = Annotated[
    list[ArticleIn],
    Field(description="The articles to classify (at most MUDRAJ_MAX_ARTICLES, default 64), ids unique."),
    AfterValidator(_check_articles),
]


class ClassifyInput(_Strict):
    model_config = ConfigDict(title="ClassifyInput")
    text: ArticleText
    threshold: Threshold = None

    @model_validator(mode="after")
    def _size(self) -> "ClassifyInput":
        _check_request_chars([self.text])
        return self


class BatchInput(_Strict):
    model_config = ConfigDict(title="BatchInput")
    articles: ArticleList
    threshold: Threshold = None

    @model_validator(mode="after")
    def _size(self) -> "BatchInput":
        _check_request_chars([a.text for a in self.articles])
        return self


class SentencesInput(_Strict):
    model_config = ConfigDict(title="SentencesInput")
    sentences: SentenceList

    @model_validator(mode="before")
    @classmethod
    def _no_threshold(cls, data: Any) -> Any:
        # Adaptive batching merges the sentences of concurrent requests into one model call, which
        # takes one argument: a per-request threshold cannot travel with them.
        if isinstance(data, dict) and "threshold" in data:
            raise ValueError(
                "/classify_sentences takes no threshold: its labels use the model's threshold "
                "(see /model_card). Compare the returned scores with your own threshold, or "
                "send whole articles to /classify, which takes one"
            )
        return data

    @model_validator(mode="after")
    def _size(self) -> "SentencesInput":
        _check_request_chars(self.sentences)
        return self


class CompareInput(_Strict):
    model_config = ConfigDict(title="CompareInput")
    source: ArticleText
    published: ArticleText
    threshold: Threshold = None
    # ge, not gt: OpenAPI 3.0 (what /docs.json is) has no numeric exclusiveMinimum; 0 is refused below.
    floor: Optional[Annotated[float, Field(ge=0.0, le=100.0, allow_inf_nan=False, strict=True)]] = Field(
        None,
        description="Similarity (0-100) from which a changed sentence counts as edited rather than "
        "added and dropped (default 70, as `mudraj compare --floor`)",
        examples=[70.0],
    )

    @model_validator(mode="after")
    def _size(self) -> "CompareInput":
        if self.floor == 0:
            raise ValueError(
                "floor must be above 0 (a similarity in (0, 100]); 0 would call every pair of sentences edited"
            )
        # Each side on its own (two versions of one long article must fit): only the published side is
        # scored by the model; the source is aligned with it, which costs far less.
        for name, text in (("source", self.source), ("published", self.published)):
            if len(text) > MAX_REQUEST_CHARS:
                raise ValueError(
                    f"{name} is {len(text)} characters long; the limit is {MAX_REQUEST_CHARS} "
                    "(MUDRAJ_MAX_REQUEST_CHARS) for each side of a comparison"
                )
        return self


class ModelCardInput(_Strict):
    model_config = ConfigDict(title="ModelCardInput")
