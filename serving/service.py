"""The HTTP service: `bentoml serve serving.service:Mudraj` (or `mudraj serve`).

Endpoints (JSON in, JSON out; see serving/README.md and /docs.json):

    POST /classify            {"text", "threshold"?}               one article
    POST /classify_batch      {"articles": [{"id", "text"}], ...}   several articles
    POST /classify_sentences  {"sentences": [str]}                  pre-split sentences, adaptive batching
    POST /compare             {"source", "published", "threshold"?} a published text against its source
    POST /model_card          {}                                    the bundle's metadata
    GET  /model_card                                                the same, for browsers and curl
    GET  /ui/                                                       the web page (serving/static/)
    GET  /                                                          the API docs (Swagger UI, local files only)
    GET  /healthz /livez /readyz /metrics /docs.json                BentoML's own

Configuration is by environment variable (MUDRAJ_*, read when the modules are imported, i.e. in
every worker process; the table is in serving/README.md). What a request may be (the input models
and limits) and the HTTP plumbing (body limit, queue bound and deadline, JSON 404/405, metrics
labels, one-line logs for client errors, the docs page) are in serving/http.py.

Precision and device: on a CPU the int8 model is used; when onnxruntime offers the
CUDAExecutionProvider (the `onnxruntime-gpu` wheel) the fp32 model runs on the GPU. MUDRAJ_GPUS=N
declares N GPUs to BentoML (BentoCloud schedules on them, and BentoML sets CUDA_VISIBLE_DEVICES per
worker); `bentoml build -f bentofile-gpu.yaml` builds that variant, with onnxruntime-gpu, a CUDA
base image and MUDRAJ_DEVICE=cuda (no silent fallback to the CPU).

This process must never import torch or transformers: the predictor runs ONNX Runtime and the
`tokenizers` library only.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Optional

import bentoml
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from serving.brackets import offsets_text
from serving.bundle import resolve_bundle
from serving.defaults import default_threads
from serving.http import JSON_ERRORS, MudrajService, TidyErrors, docs_page, quiet_client_errors
from serving.kinds import describe
from serving.middleware import (
    Admission,
    BodyLimit,
    SecurityHeaders,
    StrictRequests,
    deadline_response,
    error_response,
    request_deadline,
)
from serving.predictor import DeadlineExceeded, Predictor, decide
from serving.responses import (
    ArticleResult,
    BatchResponse,
    ClassifyResponse,
    CompareResponse,
    ModelInfo,
    Sentence,
    SentenceScore,
)
from serving.schema import (
    BODY_TIMEOUT,
    MAX_ARTICLES,
    MAX_BODY_BYTES,
    MAX_CHARS,
    MAX_QUEUE,
    MAX_REQUEST_CHARS,
    MAX_SENTENCES,
    METRICS,
    TIMEOUT,
    ArticleIn,
    BatchInput,
    ClassifyInput,
    CompareInput,
    ModelCardInput,
    SentencesInput,
    env_int,
)

logger = logging.getLogger("bentoml.mudraj")

STATIC = Path(__file__).resolve().parent / "static"
WORKERS = env_int("MUDRAJ_WORKERS", 1)  # processes, each with its own ONNX session
GPUS = env_int("MUDRAJ_GPUS", 0)  # >0: BentoML schedules the service onto that many GPUs (bentofile-gpu.yaml)
THREADS = default_threads(WORKERS)  # MUDRAJ_THREADS: ONNX Runtime threads per worker
INFERENCE = ("/classify", "/classify_batch", "/classify_sentences", "/compare")

quiet_client_errors()


# ---------------------------------------------------------------- the web page, the docs page, GET /model_card

_state: dict[str, Any] = {}  # filled by Mudraj.__init__ in each worker


async def _model_card_get(request: Request) -> JSONResponse:
    if "card" not in _state:
        return error_response(503, "model not loaded yet")
    return JSONResponse(_state["card"])


ui_app = Starlette(
    routes=[Mount("/", app=StaticFiles(directory=STATIC, html=True), name="static")],
    exception_handlers=JSON_ERRORS,
    middleware=[Middleware(SecurityHeaders)],
)


async def _no_favicon(request: Request) -> Response:
    return Response(status_code=204)  # browsers ask for one; nothing to send, and no 404 in the log


pages_app = Starlette(
    routes=[
        Route("/model_card", _model_card_get, methods=["GET"]),
        Route("/favicon.ico", _no_favicon, methods=["GET"]),
        Route("/", docs_page, methods=["GET"]),
    ],
    exception_handlers=JSON_ERRORS,
)


# ---------------------------------------------------------------- the service


@bentoml.service(
    name="mudraj",
    workers=WORKERS,
    threads=1,
    service_class=MudrajService,
    **({"resources": {"gpu": GPUS}} if GPUS else {}),
    # BentoML's own timeout is the backstop; Admission answers 504 at MUDRAJ_TIMEOUT
    traffic={"timeout": TIMEOUT + 10},
    **({} if METRICS else {"metrics": {"enabled": False}}),
)
@bentoml.asgi_app(ui_app, path="/ui", name="ui")
@bentoml.asgi_app(pages_app, path="/", name="pages")
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
        meta["kinds"] = describe(self.predictor.kinds)  # the kind head's classes, named for people
        meta["serving"] = {
            **self.predictor.info,
            "bundle": self.bundle.name,
            "threads": THREADS,
            "workers": WORKERS,
            "max_chars": MAX_CHARS,
            "max_request_chars": MAX_REQUEST_CHARS,
            "max_articles": MAX_ARTICLES,
            "max_sentences": MAX_SENTENCES,
            "max_queue": MAX_QUEUE,
            "timeout_s": TIMEOUT,
        }
        self.card = meta
        _state["card"] = meta
        logger.info(
            "Mudraj: serving %s (%s, %s, %d threads)",
            self.bundle,
            self.predictor.precision,
            self.predictor.device,
            THREADS,
        )

    def _threshold(self, threshold: float | None) -> float:
        return self.predictor.threshold if threshold is None else float(threshold)

    def _results(self, texts: list[str], thr: float) -> list[dict]:
        """Raises DeadlineExceeded when the request's deadline (MUDRAJ_TIMEOUT) passes."""
        bare = [offsets_text(t) for t in texts]
        out = []
        for text, clean, preds in zip(texts, bare, self.predictor.predict_texts(bare, thr, request_deadline())):
            out.append(
                {
                    "sentences": [
                        Sentence(start=p.start, end=p.end, text=p.text, label=p.label, score=p.score, kind=p.kind)
                        for p in preds
                    ],
                    "inserted": sum(p.label == "inserted" for p in preds),
                    "windowed": [i for i, p in enumerate(preds) if p.windows > 1],
                    "text": clean if clean != text else None,  # the text the offsets refer to, if not the one sent
                }
            )
        return out

    @staticmethod
    def _stopped(endpoint: str, err: DeadlineExceeded) -> JSONResponse:
        logger.warning(
            "%s: deadline of %d s passed (MUDRAJ_TIMEOUT), stopped after %d of %d model batches",
            endpoint,
            TIMEOUT,
            err.done,
            err.total,
        )
        return deadline_response(TIMEOUT)  # Admission has answered already, unless this one wins the race

    @bentoml.api(input_spec=ClassifyInput)
    def classify(self, text: str, threshold: Optional[float] = None) -> ClassifyResponse:
        """Classify every sentence of one article."""
        thr = self._threshold(threshold)
        try:
            result = self._results([text], thr)[0]
        except DeadlineExceeded as err:
            return self._stopped("/classify", err)
        return ClassifyResponse(model=self.model_info, threshold=thr, **result)

    @bentoml.api(input_spec=BatchInput)
    def classify_batch(self, articles: list[ArticleIn], threshold: Optional[float] = None) -> BatchResponse:
        """Classify several articles in one request (scored in one batched model run)."""
        thr = self._threshold(threshold)
        try:
            results = self._results([a.text for a in articles], thr)
        except DeadlineExceeded as err:
            return self._stopped("/classify_batch", err)
        return BatchResponse(
            model=self.model_info,
            threshold=thr,
            results=[ArticleResult(id=a.id, **r) for a, r in zip(articles, results)],
        )

    # A bulk caller would rather wait than be refused: the batch deadline is generous (BentoML answers
    # 503 to requests it cannot serve within max_latency_ms).
    @bentoml.api(input_spec=SentencesInput, batchable=True, max_batch_size=256, max_latency_ms=30_000)
    def classify_sentences(self, sentences: list[str]) -> list[SentenceScore]:
        """Score sentences you segmented yourself: one score per sentence, in order.

        Each sentence is scored alone, as a one-sentence article: neighbouring items of the
        request are NOT used as context (concurrent requests are merged into one model batch by
        BentoML's adaptive batching, so a request's list is not an article). Scores therefore
        differ from /classify, which reads each sentence with its neighbours; use /classify for
        whole articles. Labels use the model's threshold (a request cannot carry its own: the
        batch is shared). Unlike /classify, the sentences of concurrent requests share model batches
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

    @bentoml.api(input_spec=CompareInput)
    def compare(
        self, source: str, published: str, threshold: Optional[float] = None, floor: Optional[float] = None
    ) -> CompareResponse:
        """Compare a published text with its source (e.g. the agency's original): every published sentence
        is kept, edited (with its changes) or added, with the model's score; unmatched source sentences
        are dropped. Offsets refer to each text (less a byte-order mark and [ ] brackets)."""
        from serving.compare import FLOOR, compare, record

        thr = self._threshold(threshold)
        src, pub = offsets_text(source), offsets_text(published)
        try:
            rows = compare(
                src, pub, self.predictor, thr, FLOOR if floor is None else floor, deadline=request_deadline()
            )
        except DeadlineExceeded as err:
            return self._stopped("/compare", err)
        return CompareResponse(**record(rows, self.model_info.model_dump(), thr, src, pub, source, published))

    @bentoml.api(input_spec=ModelCardInput)
    async def model_card(self) -> dict[str, Any]:
        """The model bundle's metadata (metrics, threshold, training data hashes, ...), without file checksums."""
        return self.card


# Outermost first: read and bound the whole body (413, or 408 for a client that does not send it), then
# admit: only complete requests take a place in the queue, and its deadline counts computation only.
Mudraj.add_asgi_middleware(BodyLimit, limit=MAX_BODY_BYTES, timeout=BODY_TIMEOUT)
Mudraj.add_asgi_middleware(StrictRequests, paths=(*INFERENCE, "/model_card"))
Mudraj.add_asgi_middleware(Admission, paths=INFERENCE, max_queue=MAX_QUEUE, timeout=TIMEOUT)
Mudraj.add_asgi_middleware(TidyErrors)  # innermost: sees BentoML's own answers only
