"""The HTTP service: `bentoml serve serving.service:Mudraj` (or `mudraj serve`).

Endpoints (JSON in, JSON out; see serving/README.md and /docs.json):

    POST /classify            {"text", "threshold"?}               one article
    POST /classify_batch      {"articles": [{"id", "text"}], ...}   several articles
    POST /classify_sentences  {"sentences": [str]}                  pre-split sentences, adaptive batching
    POST /model_card          {}                                    the bundle's metadata
    GET  /model_card                                                the same, for browsers and curl
    GET  /ui/                                                       the web page (serving/static/)
    GET  /healthz /livez /readyz /metrics /docs.json                BentoML's own

Configuration, all by environment variable (read when this module is imported, i.e. in every
worker process):

    MUDRAJ_MODEL         bundle folder; default <repo>/models/mudraj-e5-small, else the newest
                         <repo>/runs/*/bundle
    MUDRAJ_WORKERS       worker processes (default 1); each loads its own ONNX session
    MUDRAJ_THREADS       ONNX Runtime intra-op threads per worker (default: cores / workers, at most 4)
    MUDRAJ_PRECISION     auto (default) | int8 | fp32;  MUDRAJ_DEVICE  auto (default) | cpu | cuda
    MUDRAJ_MAX_CHARS     longest accepted text, in characters (default 100000)
    MUDRAJ_MAX_ARTICLES  most articles in one /classify_batch request (default 64)
    MUDRAJ_MAX_SENTENCES most sentences in one /classify_sentences request (default 1024)

Precision and device: on a CPU the int8 model is used; when onnxruntime offers the
CUDAExecutionProvider (the `onnxruntime-gpu` wheel) the fp32 model runs on the GPU. To have
BentoML schedule the service onto a GPU (BentoCloud, or CUDA_VISIBLE_DEVICES per worker), declare
the resource in the decorator below:

    @bentoml.service(name="mudraj", resources={"gpu": 1}, workers=1, ...)

and install onnxruntime-gpu instead of onnxruntime in bentofile.yaml.

This process must never import torch or transformers: the predictor runs ONNX Runtime and the
`tokenizers` library only.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated, Any, Optional, Union

import bentoml
from pydantic import AfterValidator, BaseModel, Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from serving.brackets import FormatError, strip_brackets
from serving.bundle import resolve_bundle
from serving.defaults import default_threads
from serving.normalize import ARABIC_LETTER
from serving.predictor import Predictor, decide

logger = logging.getLogger("bentoml.mudraj")

STATIC = Path(__file__).resolve().parent / "static"


def _env_int(name: str, default: int, minimum: int = 1) -> int:
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


MAX_CHARS = _env_int("MUDRAJ_MAX_CHARS", 100_000)
MAX_ARTICLES = _env_int("MUDRAJ_MAX_ARTICLES", 64)
MAX_SENTENCES = _env_int("MUDRAJ_MAX_SENTENCES", 1024)
WORKERS = _env_int("MUDRAJ_WORKERS", 1)
THREADS = default_threads(WORKERS)



# ---------------------------------------------------------------- request checks (-> HTTP 400)
# Every check is a pydantic validator, so a bad request is answered by BentoML with
# 400 {"error": "N validation error(s) for Input", "detail": [{"loc": [field, ...], "msg": ...}]}.


def _check_text(text: str) -> str:
    if not text.strip():
        raise ValueError("text is empty (or only whitespace)")
    if len(text) > MAX_CHARS:
        raise ValueError(f"text is {len(text)} characters long; the limit is {MAX_CHARS} (MUDRAJ_MAX_CHARS)")
    clean = text
    if "[" in text or "]" in text:
        try:
            clean, _ = strip_brackets(text, source="text")
        except FormatError as err:
            raise ValueError(
                f"text has unbalanced brackets (line {err.line}: {err.message}); square brackets mark "
                "inserted sentences, so they must come in [ ] pairs"
            ) from None
    if not ARABIC_LETTER.search(clean):
        raise ValueError("text has no Arabic letters (Mudraj reads Arabic news articles)")
    return text


def _check_sentence(sentence: str) -> str:
    if not sentence.strip():
        raise ValueError("sentence is empty (or only whitespace)")
    if len(sentence) > MAX_CHARS:
        raise ValueError(f"sentence is {len(sentence)} characters long; the limit is {MAX_CHARS} (MUDRAJ_MAX_CHARS)")
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


_SAMPLE = "أعلنت وزارة الصحة اليوم افتتاح مستشفى جديد في المدينة. ويأتي ذلك في وقت يعاني فيه القطاع من إهمال مزمن."

ArticleText = Annotated[
    str,
    Field(
        strict=True,
        description="An Arabic news article, plain text. Sentences may be marked inserted with [ ] "
        "(they are removed before classification; offsets then refer to the text without them).",
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
    Field(description="Sentences, already split by the caller. Each is scored alone (no context).",
          examples=[["أعلنت الوزارة افتتاح مستشفى جديد.", "ويأتي ذلك في وقت يعاني فيه القطاع من إهمال مزمن."]]),
    AfterValidator(_check_sentences),
]


class ArticleIn(BaseModel):
    id: Annotated[Union[str, int], Field(description="Your identifier for the article; echoed back.", examples=["a1"])]
    text: ArticleText


ArticleList = Annotated[
    list[ArticleIn],
    Field(description="The articles to classify (at most MUDRAJ_MAX_ARTICLES, default 64), ids unique."),
    AfterValidator(_check_articles),
]


# ---------------------------------------------------------------- response models


class ModelInfo(BaseModel):
    name: str = Field(description="Model (bundle) name", examples=["mudraj-e5-small"])
    version: str = Field(description="Bundle version", examples=["2026.11.29"])
    threshold: float = Field(description="The model's default decision threshold", examples=[0.5])
    precision: str = Field(description="int8 (CPU) or fp32", examples=["int8"])
    device: str = Field(description="cpu or cuda", examples=["cpu"])
    backbone: Optional[str] = Field(default=None, description="Encoder the model was fine-tuned from")


class Sentence(BaseModel):
    start: int = Field(description="Offset of the sentence's first character in the text")
    end: int = Field(description="Offset just past its last character: text[start:end] is the sentence")
    text: str = Field(description="The sentence")
    label: str = Field(description="'inserted' (score >= threshold) or 'reporting'", examples=["reporting"])
    score: float = Field(description="Calibrated probability that the sentence is inserted", examples=[0.12])


class ClassifyResponse(BaseModel):
    model: ModelInfo
    threshold: float = Field(description="The threshold the labels were decided with")
    sentences: list[Sentence] = Field(description="The article's sentences in order")
    inserted: int = Field(description="How many sentences are labelled inserted")
    windowed: list[int] = Field(
        description="Indices of sentences too long for one model input: they were scored in several "
        "windows (never truncated) and their score is the highest window's"
    )
    text: Optional[str] = Field(
        default=None,
        description="The text the offsets refer to, when it differs from the text sent (brackets removed); "
        "null otherwise",
    )


class ArticleResult(BaseModel):
    id: Union[str, int] = Field(description="The article's id, as sent")
    sentences: list[Sentence]
    inserted: int
    windowed: list[int]
    text: Optional[str] = Field(default=None, description="As in /classify: the text without brackets, if it had any")


class BatchResponse(BaseModel):
    model: ModelInfo
    threshold: float
    results: list[ArticleResult] = Field(description="One result per article, in the order sent")


class SentenceScore(BaseModel):
    score: float = Field(description="Calibrated probability that the sentence is inserted")
    label: str = Field(description="'inserted' or 'reporting' at the model's default threshold")


# ---------------------------------------------------------------- the web page and GET /model_card

_state: dict[str, Any] = {}  # filled by Mudraj.__init__ in each worker


async def _model_card_get(request: Request) -> JSONResponse:
    if "card" not in _state:
        return JSONResponse({"error": "model not loaded yet"}, status_code=503)
    return JSONResponse(_state["card"])


MAX_BODY_BYTES = _env_int("MUDRAJ_MAX_BODY_BYTES", 8 * 2**20)


class BodyLimit:
    """413 with a JSON error for request bodies over MAX_BODY_BYTES, declared or streamed."""

    def __init__(self, app, limit: int = MAX_BODY_BYTES):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self._reject(send)
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge()
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._reject(send)

    async def _reject(self, send):
        resp = JSONResponse({"error": f"request body larger than {self.limit} bytes (MUDRAJ_MAX_BODY_BYTES)"},
                            status_code=413)
        await resp({"type": "http"}, None, send)


class _TooLarge(Exception):
    pass


ui_app = Starlette(routes=[Mount("/", app=StaticFiles(directory=STATIC, html=True), name="static")])
get_app = Starlette(routes=[Route("/model_card", _model_card_get, methods=["GET"])])


# ---------------------------------------------------------------- the service


@bentoml.service(name="mudraj", workers=WORKERS, threads=1, traffic={"timeout": 300})
@bentoml.asgi_app(ui_app, path="/ui", name="ui")
@bentoml.asgi_app(get_app, path="/", name="model_card_get")
class Mudraj:
    """Labels each sentence of an Arabic news article `reporting` or `inserted`."""

    def __init__(self) -> None:
        self.bundle = resolve_bundle()
        self.predictor = Predictor(
            self.bundle,
            precision=os.environ.get("MUDRAJ_PRECISION", "auto"),
            device=os.environ.get("MUDRAJ_DEVICE", "auto"),
            threads=THREADS,
        )
        self.model_info = ModelInfo(**self.predictor.info)
        meta = dict(self.predictor.meta)
        meta["files"] = sorted(meta.get("files", {}))  # names only, no checksums
        meta["serving"] = {**self.predictor.info, "bundle": self.bundle.name, "threads": THREADS,
                           "workers": WORKERS, "max_chars": MAX_CHARS, "max_articles": MAX_ARTICLES,
                           "max_sentences": MAX_SENTENCES}
        self.card = meta
        _state["card"] = meta
        logger.info("Mudraj: serving %s (%s, %s, %d threads)", self.bundle, self.predictor.precision,
                    self.predictor.device, THREADS)

    def _threshold(self, threshold: float | None) -> float:
        return self.predictor.threshold if threshold is None else float(threshold)

    def _results(self, texts: list[str], thr: float) -> list[dict]:
        out = []
        for text, preds in zip(texts, self.predictor.predict_texts(texts, threshold=thr)):
            out.append({
                "sentences": [Sentence(start=p.start, end=p.end, text=p.text, label=p.label, score=p.score)
                              for p in preds],
                "inserted": sum(p.label == "inserted" for p in preds),
                "windowed": [i for i, p in enumerate(preds) if p.windows > 1],
                "text": strip_brackets(text)[0] if ("[" in text or "]" in text) else None,
            })
        return out

    @bentoml.api
    def classify(self, text: ArticleText, threshold: Threshold = None) -> ClassifyResponse:
        """Classify every sentence of one article."""
        thr = self._threshold(threshold)
        result = self._results([text], thr)[0]
        return ClassifyResponse(model=self.model_info, threshold=thr, **result)

    @bentoml.api
    def classify_batch(self, articles: ArticleList, threshold: Threshold = None) -> BatchResponse:
        """Classify several articles in one request (scored in one batched model run)."""
        thr = self._threshold(threshold)
        results = self._results([a.text for a in articles], thr)
        return BatchResponse(model=self.model_info, threshold=thr,
                             results=[ArticleResult(id=a.id, **r) for a, r in zip(articles, results)])

    # A bulk caller would rather wait than be refused: the batch deadline is generous (BentoML answers
    # 503 to requests it cannot serve within max_latency_ms).
    @bentoml.api(batchable=True, max_batch_size=256, max_latency_ms=10_000)
    def classify_sentences(self, sentences: SentenceList) -> list[SentenceScore]:
        """Score sentences you segmented yourself: one score per sentence, in order.

        Each sentence is scored alone, as a one-sentence article: neighbouring items of the
        request are NOT used as context (concurrent requests are merged into one model batch by
        BentoML's adaptive batching, so a request's list is not an article). Scores therefore
        differ from /classify, which reads each sentence with its neighbours; use /classify for
        whole articles. Unlike /classify, the sentences of concurrent requests share model batches
        (that is what adaptive batching is for), and int8 dynamic quantisation scales activations per
        batch: a score can move slightly with its batch-mates. /classify computes each article in
        batches of its own and is deterministic.
        """
        scored = self.predictor.score_articles([[s] for s in sentences], isolate=False)
        thr = self.predictor.threshold
        out = []
        for scores, _ in scored:
            label, score = decide(scores[0], thr)
            out.append(SentenceScore(score=score, label=label))
        return out

    @bentoml.api
    async def model_card(self) -> dict[str, Any]:
        """The model bundle's metadata (metrics, threshold, training data hashes, ...), without file checksums."""
        return self.card


Mudraj.add_asgi_middleware(BodyLimit, limit=MAX_BODY_BYTES)
