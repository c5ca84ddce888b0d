"""The HTTP plumbing around the endpoints (serving/service.py holds the endpoints, serving/schema.py
the limits and the request models). No model code here.

    BodyLimit            413 JSON for a body over MUDRAJ_MAX_BODY_BYTES, declared or chunked
    Admission            per worker: at most MUDRAJ_MAX_QUEUE inference requests at once (503 and
                         Retry-After beyond), each answered 504 when MUDRAJ_TIMEOUT has passed; the
                         computation reads the deadline with request_deadline() and stops at it
    MudrajService        what BentoML's app factory has no setting for, done on the app it builds:
                         paths no route serves share one metrics label (else every random path is a
                         new Prometheus series: memory and /metrics grow without end), and 404/405
                         answer JSON like every other error
    quiet_client_errors  BentoML logs each 4xx at ERROR with a traceback; make it one INFO line
    docs_page            the API docs at / from local files only (BentoML's page loads Google Tag Manager)
"""
from __future__ import annotations

import asyncio
import logging
import math
import time
from contextvars import ContextVar
from typing import Any, Iterable

import bentoml
from bentoml.exceptions import BentoMLException
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Match, Mount

logger = logging.getLogger("bentoml.mudraj")


# ---------------------------------------------------------------- helpers for the service

# When the current request must be answered by (time.monotonic()); set by Admission, read in the worker thread.
_DEADLINE: ContextVar[float | None] = ContextVar("mudraj_deadline", default=None)


def request_deadline() -> float | None:
    """The current request's deadline (time.monotonic() seconds), or None outside a request."""
    return _DEADLINE.get()


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def deadline_response(timeout: float) -> JSONResponse:
    return error_response(504, f"not answered within {timeout:g} s (MUDRAJ_TIMEOUT), so the request was given up "
                               "and its computation stopped; send less text per request, or raise MUDRAJ_TIMEOUT")


# ---------------------------------------------------------------- request body size


def replaying(body: bytes, receive):
    """An ASGI receive that gives the body, already read, as one message, then waits on the real one
    (for the disconnect, as a server would): how a middleware that read the body passes it on."""
    given = False

    async def replay():
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class BodyLimit:
    """413 with a JSON error for request bodies over `limit` bytes, declared (Content-Length) or streamed
    (chunked); 408 when the whole body has not arrived within `timeout` seconds. The body is read here,
    before BentoML's handler sees it (an error raised from inside the handler's read would be caught
    by BentoML and answered 500), and before Admission: only a request whose body is complete takes a
    place in the queue, so idle or slow clients cannot lock the others out."""

    def __init__(self, app, limit: int, timeout: float = 20.0):
        self.app, self.limit, self.timeout = app, limit, timeout

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self._reject(scope, receive, send)
        chunks, size = [], 0
        give_up = time.monotonic() + self.timeout
        while True:
            try:
                message = await asyncio.wait_for(receive(), max(0.0, give_up - time.monotonic()))
            except asyncio.TimeoutError:
                resp = error_response(408, f"the request body did not arrive within {self.timeout:g} s "
                                           "(MUDRAJ_BODY_TIMEOUT); send it at once", headers={"Connection": "close"})
                return await resp(scope, receive, send)
            if message["type"] == "http.disconnect":
                return  # the client went away; nobody to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                return await self._reject(scope, receive, send)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, replaying(b"".join(chunks), receive), send)

    async def _reject(self, scope, receive, send):
        resp = error_response(413, f"request body larger than {self.limit} bytes (MUDRAJ_MAX_BODY_BYTES)")
        await resp(scope, receive, send)


# ---------------------------------------------------------------- queue bound and deadline


class Admission:
    """For the inference `paths` of one worker: at most `max_queue` requests at once (being computed or
    waiting for the worker's thread); one more is answered 503 with Retry-After at once, instead of
    waiting behind all the others. An admitted request is answered 504 when `timeout` seconds have
    passed; the computation sees the deadline (request_deadline()) and stops at its next model batch,
    and the request holds its place in the queue until it has stopped."""

    def __init__(self, app, paths: Iterable[str], max_queue: int, timeout: float):
        self.app, self.paths, self.max_queue, self.timeout = app, frozenset(paths), max_queue, timeout
        self.in_flight = 0
        self.typical_s = 1.0  # smoothed time an admitted request stays in flight

    def retry_after(self) -> int:
        """Seconds until a place is likely free: one request's share of the time requests stay in flight."""
        return max(1, min(math.ceil(self.typical_s / max(self.in_flight, 1)), math.ceil(self.timeout)))

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] not in self.paths:
            return await self.app(scope, receive, send)
        if self.in_flight >= self.max_queue:
            resp = error_response(503, f"the server is busy: {self.in_flight} requests are queued, the most one "
                                       f"worker takes (MUDRAJ_MAX_QUEUE); retry later",
                                  headers={"Retry-After": str(self.retry_after())})
            return await resp(scope, receive, send)
        self.in_flight += 1
        started = time.monotonic()
        answered_by_us = False
        response_started = False

        async def guarded_send(message):
            nonlocal response_started
            if answered_by_us:
                return  # the 504 went out already
            response_started = True
            await send(message)

        token = _DEADLINE.set(started + self.timeout)
        try:
            task = asyncio.ensure_future(self.app(scope, receive, guarded_send))  # copies the context: the deadline
        finally:
            _DEADLINE.reset(token)
        task.add_done_callback(lambda _: self._release(started))
        try:
            done, _ = await asyncio.wait({task}, timeout=self.timeout)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if task in done or response_started:
            return await task
        answered_by_us = True
        task.cancel()  # BentoML stops waiting; the worker thread stops at its next deadline check
        await deadline_response(self.timeout)(scope, receive, send)

    def _release(self, started: float) -> None:
        self.in_flight -= 1
        self.typical_s = 0.8 * self.typical_s + 0.2 * (time.monotonic() - started)


# ---------------------------------------------------------------- strict requests


class StrictRequests:
    """For the POST endpoints (`paths`): a request must say its body is JSON (Content-Type application/json:
    a text/plain or form body is what a cross-site page can send without asking, so it is refused 415),
    must not carry both Content-Length and Transfer-Encoding (400: two framings of one body), and its JSON
    must not repeat a key in one object (400: which value would count is a guess). Runs after BodyLimit,
    which has read the body."""

    def __init__(self, app, paths: Iterable[str]):
        self.app, self.paths = app, frozenset(paths)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] not in self.paths or scope.get("method") != "POST":
            return await self.app(scope, receive, send)
        headers = {k.lower(): v for k, v in scope.get("headers") or []}
        if b"content-length" in headers and b"transfer-encoding" in headers:
            return await error_response(400, "the request has both Content-Length and Transfer-Encoding; "
                                              "send one")(scope, receive, send)
        kind = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if kind != b"application/json":
            shown = clip(kind.decode("latin-1") or "none", 60)
            return await error_response(415, f"the body must be JSON sent as Content-Type: application/json "
                                              f"(got {shown})")(scope, receive, send)
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        duplicate = _duplicate_key(body)
        if duplicate is not None:
            return await error_response(400, f"the JSON body repeats the key {clip(duplicate, 60)!r} in one object; "
                                              "send each field once")(scope, receive, send)
        await self.app(scope, replaying(body, receive), send)


def _duplicate_key(body: bytes) -> str | None:
    """The first key that occurs twice in one JSON object of the body, or None (also for invalid JSON,
    which the endpoint then refuses with its own message)."""
    import json

    found: list[str] = []

    def pairs(items):
        seen = set()
        for k, _ in items:
            if k in seen and not found:
                found.append(k)
            seen.add(k)
        return dict(items)

    try:
        json.loads(body, object_pairs_hook=pairs)
    except (ValueError, RecursionError):
        return None
    return found[0] if found else None


UI_HEADERS = [(b"content-security-policy", b"default-src 'self'; img-src 'self' data:; object-src 'none'; "
                                           b"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
              (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
              (b"x-frame-options", b"DENY")]


class SecurityHeaders:
    """Headers for the web page's files (/ui/...): the content security policy as a header (a meta tag
    cannot say frame-ancestors), no MIME sniffing, no referrer, no framing."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *UI_HEADERS]}
            await send(message)

        await self.app(scope, receive, with_headers)


# ---------------------------------------------------------------- 400 bodies


class TidyValidationErrors:
    """BentoML answers a request that fails validation with 400 {"error": "N validation error for X",
    "detail": pydantic's errors}. This rewrites that body: the count in plain English ("1 validation
    error", "2 validation errors"), each error's field path and message cut and escaped (clip: a field
    name can be two million characters, or carry line breaks), and pydantic's documentation URL left out."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start: dict | None = None
        chunks: list[bytes] = []

        async def tidy_send(message):
            nonlocal start
            if message["type"] == "http.response.start":
                if message["status"] != 400:
                    return await send(message)
                start = message
                return None
            if start is None:
                return await send(message)
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return None
            body = _tidy(b"".join(chunks))
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, tidy_send)


def _tidy(body: bytes) -> bytes:
    import json

    try:
        data = json.loads(body)
    except ValueError:
        return body
    if not isinstance(data, dict) or not isinstance(data.get("detail"), list):
        return body
    detail = []
    for e in data["detail"][:20]:
        if isinstance(e, dict):
            detail.append({"loc": [clip(x) if isinstance(x, str) else x for x in e.get("loc", [])],
                           "msg": clip(e.get("msg", ""), 300), "type": e.get("type")})
    n = len(data["detail"])
    model = str(data.get("error", "")).rsplit(" for ", 1)[-1] if " for " in str(data.get("error", "")) else "the request"
    out = {"error": f"{n} validation error{'s' if n != 1 else ''} for {clip(model)}", "detail": detail}
    if n > 20:
        out["more"] = n - 20
    return json.dumps(out, ensure_ascii=False).encode()


# ---------------------------------------------------------------- metrics labels, JSON 404/405

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
    server fault: one INFO line naming the status, the endpoint and the problem."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        status = _client_status(exc)
        if status is None:
            return True
        where = " ".join(reversed([str(a) for a in (record.args or ())]))  # log_exception's (path, method)
        record.msg, record.args = "client error %d on %s: %s", (status, where, _describe(exc))
        record.exc_info = record.exc_text = None
        record.levelno, record.levelname = logging.INFO, "INFO"
        return True


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
_DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
             "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'")


async def docs_page(request: Request) -> HTMLResponse:
    return HTMLResponse(_DOCS_PAGE, headers={"Content-Security-Policy": _DOCS_CSP})
