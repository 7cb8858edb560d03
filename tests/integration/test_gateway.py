"""The gateway skeleton: error shape, request ids, headers, limits, OpenAPI, readiness."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from litestar import post
from litestar.params import JSONBody
from litestar.testing import AsyncTestClient

from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp, create_app

ERROR_KEYS = {"code", "message", "details", "hint", "request_id"}


class Note(msgspec.Struct):
    title: str
    count: int


@post("/test/echo")
async def echo(data: JSONBody[Note]) -> Note:
    return data


@pytest.fixture(scope="module")
async def echo_client(settings: Settings) -> AsyncIterator[AsyncTestClient[OrgbaseApp]]:
    small = msgspec.structs.replace(
        settings, http=msgspec.structs.replace(settings.http, max_body_bytes=1024)
    )
    async with AsyncTestClient(app=create_app(small, extra_handlers=[echo])) as client:
        yield client


def assert_error(body: Any, code: str, request_id: str) -> None:
    assert set(body) == ERROR_KEYS
    assert body["code"] == code
    assert body["request_id"] == request_id
    assert isinstance(body["message"], str)
    assert body["message"]


async def test_ready_reports_every_dependency(client: AsyncTestClient[OrgbaseApp]) -> None:
    response = await client.get("/health/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    for name in ("postgres", "redis", "mongo"):
        assert body["checks"][name]["status"] == "ok"
        assert body["checks"][name]["latency_ms"] >= 0
    assert body["checks"]["postgres"]["pools"]["api"]["max"] >= 1
    assert (await client.get("/health/live")).json() == {"status": "ok"}


async def test_unknown_route_and_wrong_method(client: AsyncTestClient[OrgbaseApp]) -> None:
    missing = await client.get("/v1/no/such/thing")
    assert missing.status_code == 404
    assert_error(missing.json(), "not_found", missing.headers["x-request-id"])
    wrong = await client.delete("/health/live")
    assert wrong.status_code == 405
    assert_error(wrong.json(), "method_not_allowed", wrong.headers["x-request-id"])


async def test_request_id_is_echoed_or_made(client: AsyncTestClient[OrgbaseApp]) -> None:
    given = await client.get("/health/live", headers={"X-Request-ID": "trace-123.abc:9"})
    assert given.headers["x-request-id"] == "trace-123.abc:9"
    made = await client.get("/health/live")
    assert len(made.headers["x-request-id"]) == 32
    assert made.headers["x-request-id"] != given.headers["x-request-id"]


@pytest.mark.parametrize(
    "bad", ["has space", "x" * 129, 'quote"d', "semi;colon", "<script>", "-leading-dash"]
)
async def test_a_bad_request_id_is_refused(client: AsyncTestClient[OrgbaseApp], bad: str) -> None:
    response = await client.get("/health/live", headers={"X-Request-ID": bad})
    assert response.status_code == 400
    body = response.json()
    assert_error(body, "invalid_request_id", response.headers["x-request-id"])
    assert bad not in response.headers["x-request-id"]


async def test_security_headers_on_every_response(client: AsyncTestClient[OrgbaseApp]) -> None:
    for response in (await client.get("/health/live"), await client.get("/missing")):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert "default-src 'none'" in response.headers["content-security-policy"]


async def test_malformed_json_is_a_clear_400(echo_client: AsyncTestClient[OrgbaseApp]) -> None:
    ok = await echo_client.post("/test/echo", json={"title": "t", "count": 2})
    assert ok.status_code == 201
    assert ok.json() == {"title": "t", "count": 2}
    for body in (b"{not json", b'{"title": "t", "count": 2', b"\xff\xfe", b""):
        response = await echo_client.post(
            "/test/echo", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 400, body
        assert response.json()["code"] in {"malformed_body", "validation_failed", "invalid_utf8"}


async def test_wrong_types_are_a_validation_error(echo_client: AsyncTestClient[OrgbaseApp]) -> None:
    response = await echo_client.post("/test/echo", json={"title": "t", "count": "many"})
    assert response.status_code == 400
    assert_error(response.json(), "validation_failed", response.headers["x-request-id"])


async def test_oversized_body_is_refused(echo_client: AsyncTestClient[OrgbaseApp]) -> None:
    response = await echo_client.post("/test/echo", json={"title": "x" * 5000, "count": 1})
    assert response.status_code == 413
    assert_error(response.json(), "payload_too_large", response.headers["x-request-id"])


async def test_openapi_at_schema(client: AsyncTestClient[OrgbaseApp]) -> None:
    response = await client.get("/schema")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert "/health/ready" in document["paths"]
