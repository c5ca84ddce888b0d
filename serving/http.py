"""What is done to the ASGI app BentoML builds (serving/middleware.py holds the request middlewares,
serving/service.py the endpoints, serving/schema.py the limits and the request models). No model code here.

    MudrajService        what BentoML's app factory has no setting for, done on the app it builds:
                         paths no route serves share one metrics label (else every random path is a
                         new Prometheus series: memory and /metrics grow without end), and 404/405
                         answer JSON like every other error
    quiet_client_errors  BentoML logs each 4xx at ERROR with a traceback; make it one INFO line
    TidyErrors           BentoML's own 400 (validation) and 503 (shed load) bodies rewritten: short, clipped,
                         saying what happened
    queue_gauge          mudraj_admitted_requests on /metrics: the queue depth Admission keeps
    clip                 a client's text, shortened for a log line or an error message
    docs_page            the API docs at / from local files only (BentoML's page loads Google Tag Manager)
"""

from __future__ import annotations

import json
import logging
from typing import Any, Iterable

import bentoml
from bentoml.exceptions import BentoMLException, ServiceUnavailable
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Match, Mount

logger = logging.getLogger("bentoml.mudraj")


UNSERVED = "(unmatched)"  # the one metrics label for every path no route serves


def endpoint_label(routes: Iterable[Any], scope: dict) -> str | None:
    """The route a request goes to, as a bounded label: the route's own path, or `<mount>/*` for any
    path below a mounted app without routes (static files); None if no route serves it."""
    partial = None
    for route in routes:
        match, child = route.matches(scope)
        if match is Match.NONE:
            continue
        inner = {**scope, **child}
        if isinstance(route, Mount):
            below = getattr(route.app, "routes", None)
            label = inner.get("root_path", "") + "/*" if below is None else endpoint_label(below, inner)
        else:
            label = scope.get("root_path", "") + route.path
        if label is not None and match is Match.FULL:
            return label
        partial = partial or label
    return partial


class LabelUnservedPaths:
    """Outside BentoML's metrics middleware: the path of a request that no route serves is replaced by
    one label (`/ui/*` for any path below a static mount), so metrics keep a bounded set of series."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and "app" in scope:
            path = scope["path"]
            label = endpoint_label(scope["app"].router.routes, scope) or UNSERVED
            if label != path:
                scope["path"], scope["mudraj.path"] = label, path
        await self.app(scope, receive, send)


class RestorePath:
    """Just inside BentoML's metrics middleware: routing, logs and handlers see the real path again."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if "mudraj.path" in scope:
            scope["path"] = scope.pop("mudraj.path")
        await self.app(scope, receive, send)


async def http_error(request: Request, exc: HTTPException) -> Response:
    """Starlette's own errors (404, 405, ...) as JSON, like every other error of the service."""
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=exc.headers)
    path = request.url.path
    if exc.status_code == 404:
        message = f"no such path: {path} (the API is described at /docs.json)"
    elif exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        message = f"method {request.method} is not allowed on {path}" + (f"; use {allowed}" if allowed else "")
    else:
        message = exc.detail
    return JSONResponse({"error": message}, status_code=exc.status_code, headers=exc.headers)


JSON_ERRORS = {HTTPException: http_error}


class MudrajService(bentoml.Service):
    """BentoML's Service, with two changes to the ASGI app it builds (BentoML has no setting for them):
    unserved paths share one metrics label, and Starlette's 404/405 answer JSON."""

    def to_asgi(self, is_main: bool = True):
        app = super().to_asgi(is_main)
        app.add_exception_handler(HTTPException, http_error)
        stack = app.user_middleware
        metrics = next((i for i, m in enumerate(stack) if m.cls.__name__.endswith("TrafficMetricsMiddleware")), None)
        if metrics is not None:  # MUDRAJ_METRICS=0: no metrics middleware, nothing to label
            stack.insert(metrics + 1, Middleware(RestorePath))
            stack.insert(metrics, Middleware(LabelUnservedPaths))
        return app


# ---------------------------------------------------------------- logs: one line per client error


class _ClientErrorsInOneLine(logging.Filter):
    """BentoML logs every bad request at ERROR with a full traceback. A client's mistake is not a
    server fault: one INFO line naming the status, the endpoint and the problem. A request its adaptive
    batching sheds under load (503) is one WARNING line."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        where = " ".join(reversed([str(a) for a in (record.args or ())]))  # log_exception's (path, method)
        if isinstance(exc, ServiceUnavailable):  # BentoML's batching shed the request: load, not a fault
            level, line = logging.WARNING, f"503 on {where}: {exc} (adaptive batching could not meet its deadline)"
        elif (status := _client_status(exc)) is not None:
            level, line = logging.INFO, f"client error {status} on {where}: {_describe(exc)}"
        else:
            return True
        record.msg, record.args = "%s", (line,)
        record.exc_info = record.exc_text = None
        record.levelno, record.levelname = level, logging.getLevelName(level)
        return True


# ---------------------------------------------------------------- BentoML's own error bodies, rewritten

BENTOML_500S = b"An unexpected error has occurred, please check the server log."
SHED_RETRY_AFTER_S = 5


class TidyErrors:
    """Rewrites the error bodies BentoML writes itself (installed innermost, it sees no other middleware's
    answers; our own errors carry their own message and pass untouched):

    400  a request that fails validation: {"error": "N validation error for X", "detail": pydantic's errors}
         becomes the count in plain English ("1 validation error", "2 validation errors"), each error's field
         path and message cut and escaped (clip: a field name can be two million characters, or carry line
         breaks), and pydantic's documentation URL left out;
    503  a request adaptive batching shed under load: BentoML's bare "An unexpected error has occurred"
         becomes what happened and when to retry, with Retry-After."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start: dict | None = None
        chunks: list[bytes] = []

        async def tidy_send(message):
            nonlocal start
            if message["type"] == "http.response.start" and message["status"] in (400, 503):
                start = message
                return None
            if start is None:
                return await send(message)
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return None
            body, headers = (
                b"".join(chunks),
                [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"],
            )
            if start["status"] == 400:
                body = _tidy(body)
            elif BENTOML_500S in body:
                body = _shed(scope["path"])
                headers.append((b"retry-after", str(SHED_RETRY_AFTER_S).encode()))
            await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, tidy_send)


def _shed(path: str) -> bytes:
    return json.dumps(
        {
            "error": f"the server is busy: {path} could not be batched within its deadline (adaptive batching, "
            f"max_latency_ms); retry in {SHED_RETRY_AFTER_S} s, or send fewer sentences at once"
        }
    ).encode()


def _tidy(body: bytes) -> bytes:
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if not isinstance(data, dict) or not isinstance(data.get("detail"), list):
        return body
    detail = []
    for e in data["detail"][:20]:
        if isinstance(e, dict):
            detail.append(
                {
                    "loc": [clip(x) if isinstance(x, str) else x for x in e.get("loc", [])],
                    "msg": clip(e.get("msg", ""), 300),
                    "type": e.get("type"),
                }
            )
    n = len(data["detail"])
    model = (
        str(data.get("error", "")).rsplit(" for ", 1)[-1] if " for " in str(data.get("error", "")) else "the request"
    )
    out = {"error": f"{n} validation error{'s' if n != 1 else ''} for {clip(model)}", "detail": detail}
    if n > 20:
        out["more"] = n - 20
    return json.dumps(out, ensure_ascii=False).encode()


_QUEUE_GAUGE = None


def queue_gauge():
    """`mudraj_admitted_requests{endpoint}` on /metrics: inference requests holding a place in a worker's queue
    (computing or waiting for its thread), summed over live workers. BentoML's own in-progress gauge counts a
    request from its first byte; this one from its admission, after the body has arrived."""
    global _QUEUE_GAUGE
    if _QUEUE_GAUGE is None:
        _QUEUE_GAUGE = bentoml.metrics.Gauge(
            name="mudraj_admitted_requests",
            documentation="Inference requests admitted and not yet finished (computing or queued), per endpoint",
            labelnames=["endpoint"],
            multiprocess_mode="livesum",
        )
    return _QUEUE_GAUGE


def _client_status(exc: BaseException | None) -> int | None:
    if isinstance(exc, ValidationError):
        return 400
    code = getattr(getattr(exc, "error_code", None), "value", None)
    if isinstance(exc, BentoMLException) and isinstance(code, int) and 400 <= code < 500:
        return code
    return None


def clip(text: object, limit: int = 120) -> str:
    """A user-supplied string made safe for one log line or an error message: control characters (line
    breaks, escapes) written as escapes, and cut to `limit` characters, saying how many were left out."""
    t = str(text)
    cut = len(t) - limit
    if cut > 0:
        t = t[:limit]
    t = "".join(c if c.isprintable() else repr(c)[1:-1] for c in t)
    return t + (f"… ({cut:,} more characters)" if cut > 0 else "")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        parts = [f"{clip('.'.join(map(str, e['loc'])) or 'body')}: {clip(e['msg'], 300)}" for e in errors[:3]]
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        return "; ".join(parts) + more
    return clip(exc, 600)


def quiet_client_errors() -> None:
    """Install the one-line filter on the logger BentoML reports request errors with."""
    log = logging.getLogger("bentoml._internal.server.http_app")
    if not any(isinstance(f, _ClientErrorsInOneLine) for f in log.filters):
        log.addFilter(_ClientErrorsInOneLine())


# ---------------------------------------------------------------- the API docs page at /

_DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Mudraj API</title>
  <!-- Everything from this server: Swagger UI's files as BentoML ships them, no analytics, no CDN. -->
  <link rel="stylesheet" href="./static_content/swagger-ui.css">
  <link rel="stylesheet" href="./static_content/index.css">
  <style>.mudraj-links{font:14px sans-serif;margin:12px 20px}</style>
</head>
<body>
  <p class="mudraj-links">Mudraj HTTP API: <a href="./docs.json">OpenAPI schema (docs.json)</a> |
     <a href="./ui/">web page</a> | <a href="./model_card">model card</a></p>
  <div id="swagger-ui"></div>
  <script src="./static_content/swagger-ui-bundle.js"></script>
  <script src="./static_content/swagger-ui-standalone-preset.js"></script>
  <script>
    window.onload = function () {
      window.ui = SwaggerUIBundle({
        url: "./docs.json", dom_id: "#swagger-ui", deepLinking: true,
        validatorUrl: null,  /* Swagger UI's default would send the schema's address to validator.swagger.io */
        presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
        plugins: [SwaggerUIBundle.plugins.DownloadUrl], layout: "StandaloneLayout"
      });
    };
  </script>
</body>
</html>
"""

# The browser may fetch and connect only to this server, whatever a script tries.
_DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'"
)


async def docs_page(request: Request) -> HTMLResponse:
    return HTMLResponse(_DOCS_PAGE, headers={"Content-Security-Policy": _DOCS_CSP})
