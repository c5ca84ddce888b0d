"""Fuzz the HTTP API from its own OpenAPI schema: never a 5xx, every error a JSON body.

Every input tried is appended to artifacts/fuzz-inputs.jsonl (git-ignored) for reading later.
"""

import json

import pytest
from hypothesis import HealthCheck, given, settings

schemathesis = pytest.importorskip("schemathesis")

pytestmark = pytest.mark.slow

from tests._paths import REPO, service_endpoints  # noqa: E402

LOG = REPO / "artifacts" / "fuzz-inputs.jsonl"


ENDPOINTS = service_endpoints()  # from serving/service.py: /compare too


@pytest.fixture(scope="module")
def api_schema(server):
    LOG.parent.mkdir(exist_ok=True)
    LOG.write_text("")
    return schemathesis.openapi.from_url(server.url + "/docs.json")


@pytest.mark.parametrize("path", ENDPOINTS)
def test_no_server_error_and_errors_are_json(api_schema, server, path):
    operation = api_schema[path]["POST"]
    seen = []

    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(case=operation.as_strategy())
    def run(case):
        r = case.call(base_url=server.url, timeout=60)
        seen.append(r.status_code)
        with LOG.open("a", encoding="utf-8") as f:
            f.write(
                json.dumps({"path": path, "body": case.body, "status": r.status_code}, ensure_ascii=False, default=str)
                + "\n"
            )
        assert r.status_code < 500, f"{path} {case.body!r:.300} -> {r.status_code} {r.text[:300]}"
        if r.status_code >= 400:
            assert "error" in r.json(), r.text[:300]

    run()
    assert len(seen) >= 5  # the schema really produced inputs for this endpoint
