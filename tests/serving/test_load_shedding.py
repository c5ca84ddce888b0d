"""A request BentoML's adaptive batching sheds under load (`/classify_sentences`, 503): the client is told what
happened and when to retry, the log gets one WARNING line, and our own 503s keep their own message."""

import asyncio
import json
import logging

from bentoml.exceptions import ServiceUnavailable

from serving.http import BENTOML_500S, SHED_RETRY_AFTER_S, TidyErrors, _ClientErrorsInOneLine


def _answer(status: int, error: str):
    async def app(scope, receive, send):
        body = json.dumps({"error": error}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def _call(app, path="/classify_sentences"):
    sent = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    asyncio.run(TidyErrors(app)({"type": "http", "path": path, "method": "POST"}, receive, send))
    start, body = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], dict(start["headers"]), body


def test_a_shed_request_is_told_what_happened_and_when_to_retry():
    status, headers, body = _call(_answer(503, BENTOML_500S.decode()))
    assert status == 503
    assert headers[b"retry-after"] == str(SHED_RETRY_AFTER_S).encode()
    assert int(headers[b"content-length"]) == len(body)
    error = json.loads(body)["error"]
    assert "busy" in error and "/classify_sentences" in error and "max_latency_ms" in error
    assert "unexpected" not in error


def test_our_own_503s_and_other_answers_pass_untouched():
    for status, error in ((503, "model not loaded yet"), (500, BENTOML_500S.decode()), (200, "x")):
        got_status, headers, body = _call(_answer(status, error))
        assert (got_status, json.loads(body)["error"]) == (status, error)
        assert b"retry-after" not in headers


def test_a_shed_request_is_one_warning_line_in_the_log():
    try:
        raise ServiceUnavailable("process is overloaded")
    except ServiceUnavailable:
        import sys

        record = logging.LogRecord(
            "bentoml", logging.ERROR, __file__, 1, "Exception on %s [%s]", ("/classify_sentences", "POST"), None
        )
        record.exc_info = sys.exc_info()
    assert _ClientErrorsInOneLine().filter(record)
    assert record.levelno == logging.WARNING and record.exc_info is None
    line = record.getMessage()
    assert "503 on POST /classify_sentences" in line and "process is overloaded" in line and "\n" not in line
