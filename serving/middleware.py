"""Request-level ASGI middlewares in front of the endpoints (serving/service.py installs them; serving/http.py
holds what is done to the app BentoML builds).

    BodyLimit             413 JSON for a body over MUDRAJ_MAX_BODY_BYTES, declared or chunked; 408 for a body
                          that does not arrive within MUDRAJ_BODY_TIMEOUT
    Admission             per worker: at most MUDRAJ_MAX_QUEUE inference requests at once (503 and
                          Retry-After beyond), each answered 504 when MUDRAJ_TIMEOUT has passed; the
                          computation reads the deadline with request_deadline() and stops at it
    StrictRequests        415 for a body that is not JSON, 400 for duplicate keys or Content-Length with
                          Transfer-Encoding
    SecurityHeaders       a strict content security policy on the page
"""

import asyncio
import math
import time
from contextvars import ContextVar
from typing import Iterable

from starlette.responses import JSONResponse

from serving.http import clip, queue_gauge

# ---------------------------------------------------------------- helpers for the service

# When the current request must be answered by (time.monotonic()); set by Admission, read in the worker thread.
_DEADLINE: ContextVar[float | None] = ContextVar("mudraj_deadline", default=None)


def request_deadline() -> float | None:
    """The current request's deadline (time.monotonic() seconds), or None outside a request."""
    return _DEADLINE.get()


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def deadline_response(timeout: float) -> JSONResponse:
    return error_response(
        504,
        f"not answered within {timeout:g} s (MUDRAJ_TIMEOUT), so the request was given up "
        "and its computation stopped; send less text per request, or raise MUDRAJ_TIMEOUT",
    )


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
                resp = error_response(
                    408,
                    f"the request body did not arrive within {self.timeout:g} s (MUDRAJ_BODY_TIMEOUT); send it at once",
                    headers={"Connection": "close"},
                )
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
            resp = error_response(
                503,
                f"the server is busy: {self.in_flight} requests are queued, the most one "
                f"worker takes (MUDRAJ_MAX_QUEUE); retry later",
                headers={"Retry-After": str(self.retry_after())},
            )
            return await resp(scope, receive, send)
        self.in_flight += 1
        queue_gauge().labels(endpoint=scope["path"]).inc()
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
        task.add_done_callback(lambda _: self._release(started, scope["path"]))
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

    def _release(self, started: float, path: str) -> None:
        self.in_flight -= 1
        queue_gauge().labels(endpoint=path).dec()
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
            return await error_response(400, "the request has both Content-Length and Transfer-Encoding; send one")(
                scope, receive, send
            )
        kind = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if kind != b"application/json":
            shown = clip(kind.decode("latin-1") or "none", 60)
            return await error_response(
                415, f"the body must be JSON sent as Content-Type: application/json (got {shown})"
            )(scope, receive, send)
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
            return await error_response(
                400, f"the JSON body repeats the key {clip(duplicate, 60)!r} in one object; send each field once"
            )(scope, receive, send)
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


UI_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; object-src 'none'; "
        b"base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


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


# ---------------------------------------------------------------- metrics labels, JSON 404/405
