"""What schemathesis never sends, sent to every operation of /schema on a real gateway
process: bodies that are not UTF-8 or nest 5,000 deep (whatever content type they
declare), non-ASCII digits in every path and query parameter, invalid percent-escapes, and
oversized headers. No answer is a 5xx; a bad body is a 400 with its precise code; the
server keeps serving."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
import pytest

from tests.support.http import PASSWORD, unique_email

pytestmark = pytest.mark.slow

NOT_UTF8 = b'{"a": "\xff\xfe\xc3\x28", "\xed\xa0\x80": 1}'
DEEP = b"[" * 5000 + b"]" * 5000
ODD_DIGITS = ["²", "٣", "১২", "⁵", "Ⅻ"]
STREAMS = ("/v1/realtime/sse",)
# Routes read a body as JSON whatever it declares (`curl -d` declares a form).
CONTENT_TYPES = (
    "application/json",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/octet-stream",
)


@pytest.fixture(scope="module")
def owner(live_server: str) -> dict[str, Any]:
    """A signed-in owner of an org (so credential checks pass and the inputs go deeper)."""
    with httpx.Client(base_url=live_server, timeout=30) as http:
        email = unique_email("raw")
        http.post("/v1/auth/signup", json={"email": email, "password": PASSWORD})
        grant = {"grant_type": "password", "email": email, "password": PASSWORD}
        first = http.post("/v1/auth/token", json=grant).json()
        org = http.post(
            "/v1/orgs",
            headers={"Authorization": f"Bearer {first['access_token']}"},
            json={"name": "raw"},
        ).json()
        scoped = http.post("/v1/auth/token", json={**grant, "org_id": org["id"]}).json()
        return {"org": org["id"], "headers": {"Authorization": f"Bearer {scoped['access_token']}"}}


@pytest.fixture(scope="module")
def operations(live_server: str) -> list[tuple[str, str, dict[str, Any]]]:
    document = httpx.get(f"{live_server}/schema/openapi.json").json()
    found = []
    for path, item in document["paths"].items():
        if path.startswith(STREAMS):
            continue
        for method, operation in item.items():
            if method in ("get", "post", "put", "patch", "delete", "head"):
                found.append((method.upper(), path, operation))
    assert len(found) > 60
    return found


def fill(path: str, value: str, org: str) -> str:
    """Every path parameter set to ``value`` (org_id to the caller's org every other time)."""
    out = path
    while "{" in out:
        start, end = out.index("{"), out.index("}")
        name = out[start + 1 : end]
        out = out[:start] + (org if name == "org_id" and value == "org" else value) + out[end + 1 :]
    return out


def test_bad_bodies_are_a_400_everywhere(
    live_server: str, owner: dict[str, Any], operations: list[tuple[str, str, dict[str, Any]]]
) -> None:
    wrong = []
    with httpx.Client(base_url=live_server, timeout=30) as http:
        for method, path, operation in operations:
            if "requestBody" not in operation:
                continue
            for (body, code), content_type in itertools.product(
                ((NOT_UTF8, "invalid_utf8"), (DEEP, "json_too_deep")), CONTENT_TYPES
            ):
                response = http.request(
                    method,
                    fill(path, "org", owner["org"]),
                    content=body,
                    headers={**owner["headers"], "content-type": content_type},
                )
                if response.status_code != 400 or response.json().get("code") != code:
                    wrong.append(
                        f"{method} {path} ({content_type}): "
                        f"{response.status_code} {response.text[:120]}"
                    )
    assert not wrong, "\n".join(wrong)


def test_odd_digits_and_escapes_in_every_parameter_are_never_a_5xx(
    live_server: str, owner: dict[str, Any], operations: list[tuple[str, str, dict[str, Any]]]
) -> None:
    wrong = []
    with httpx.Client(base_url=live_server, timeout=30) as http:
        for method, path, operation in operations:
            declared = [
                p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"
            ]
            # The data API reads PostgREST's grammar from the raw query: not in the document.
            names = [*declared, "limit", "offset", "id"]
            for value in [*ODD_DIGITS, "%FF%FE", "%ED%A0%80"]:
                url = fill(path, value if "{" in path else "org", owner["org"])
                query = "&".join(f"{name}={value}" for name in names)
                response = http.request(
                    method, f"{url}?{query}" if query else url, headers=owner["headers"]
                )
                if response.status_code >= 500:
                    wrong.append(
                        f"{method} {url}?{query}: {response.status_code} {response.text[:120]}"
                    )
    assert not wrong, "\n".join(wrong)


def test_odd_digits_in_headers_and_oversized_headers(
    live_server: str, owner: dict[str, Any]
) -> None:
    with httpx.Client(base_url=live_server, timeout=30) as http:
        for digits in ODD_DIGITS:
            raw = digits.encode()
            for name in (b"range", b"if-match", b"prefer", b"x-request-id", b"accept"):
                headers = {
                    **{k.encode(): v.encode() for k, v in owner["headers"].items()},
                    name: raw,
                }
                try:
                    response = http.get("/v1/db/items", headers=headers)
                except httpx.ProtocolError:
                    continue  # refused by the HTTP layer itself, before the gateway
                assert response.status_code < 500, (name, digits, response.text)
        huge = {"x-padding": "p" * 65_536, **owner["headers"]}
        try:
            response = http.get("/v1/db/items", headers=huge)
            assert response.status_code < 500
        except httpx.ProtocolError:
            pass  # refused (or the connection closed) by the HTTP server: not a 5xx
        for long_credential in (
            {"authorization": "Bearer " + "x" * 20_000},
            {"apikey": "obk_" + "x" * 20_000},
        ):
            response = http.get("/v1/db/items", headers=long_credential)
            assert (response.status_code, response.json()["code"]) == (401, "token_malformed")
        # Still serving.
        assert http.get("/health/live").status_code == 200
