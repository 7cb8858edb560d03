"""Finding 6: inputs below the JSON level made 500s, several with no credentials at all.
Each is a 4xx with a precise code now:

- a bearer token whose header ``kid`` is not a string, on every kind of route, the event
  stream and the WebSocket;
- invalid UTF-8 inside a JSON string, and JSON nested 5,000 deep;
- ``or=`` nested 400 deep;
- ``limit``, ``offset`` or ``Range`` made of non-ASCII digits (``²``), and an ``If-Match``;
- Extended JSON with an impossible value (``{"$oid": "zz"}``, a ``$date`` out of range);
- a platform admin's impersonation reason that is long enough only with its spaces;

and finding 8's ``cs`` on a text column, a 400 (it was a 404).
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import httpx
import pytest
import websockets
from litestar.testing import AsyncTestClient

from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp
from tests.support.data import make_platform_admin
from tests.support.http import bearer, member_tokens, new_user, sign_in

Client = AsyncTestClient[OrgbaseApp]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token_with_kid(kid: Any) -> str:
    header = b64(json.dumps({"alg": "EdDSA", "typ": "JWT", "kid": kid}).encode())
    payload = b64(json.dumps({"sub": str(uuid.uuid4()), "exp": 9999999999}).encode())
    return f"{header}.{payload}.{b64(b'not a signature')}"


KIDS = [1, None, [], {}, True, ["a"], {"k": "v"}, 1.5]
ROUTES = [
    ("GET", "/v1/auth/user"),
    ("GET", "/v1/orgs"),
    ("GET", f"/v1/orgs/{uuid.uuid4()}/members"),
    ("GET", "/v1/db/items"),
    ("POST", "/v1/db/items"),
    ("GET", "/v1/kv/k"),
    ("GET", "/v1/docs/notes"),
    ("POST", "/v1/realtime/news"),
    ("GET", "/v1/realtime/sse?channels=news"),
]


@pytest.mark.parametrize("kid", KIDS, ids=repr)
async def test_a_kid_that_is_not_a_string_is_a_401(client: Client, kid: Any) -> None:
    headers = bearer(token_with_kid(kid))
    for method, path in ROUTES:
        response = await client.request(method, path, headers=headers, json={})
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["code"] == "token_malformed"


async def test_a_kid_that_is_not_a_string_closes_the_websocket(live_server: str) -> None:
    url = live_server.replace("http", "ws") + f"/v1/realtime?access_token={token_with_kid(7)}"
    async with websockets.connect(url) as socket:
        error = json.loads(await socket.recv())
        assert (error["type"], error["code"]) == ("error", "token_malformed")


INVALID_UTF8 = b'{"email": "caf\xc3\x28@example.test", "password": "x\xff\xfe", "name": "\xff"}'
DEEP = b'{"a": ' * 5000 + b"1" + b"}" * 5000
DEEP_LIST = b"[" * 5000 + b"]" * 5000
BODY_ROUTES = [
    ("POST", "/v1/auth/token"),
    ("POST", "/v1/auth/signup"),
    ("POST", "/v1/auth/browser/sign-in"),
    ("POST", "/v1/orgs"),
    ("PUT", "/v1/kv/k"),
    ("POST", "/v1/db/items"),
    ("PATCH", "/v1/db/items?id=eq.1"),
    ("POST", "/v1/docs/notes"),
    ("POST", "/v1/docs/notes/query"),
    ("PUT", "/v1/orgs/{org}/settings"),
]


@pytest.mark.parametrize(
    ("body", "code"),
    [(INVALID_UTF8, "invalid_utf8"), (DEEP, "json_too_deep"), (DEEP_LIST, "json_too_deep")],
    ids=["invalid utf-8", "deep objects", "deep arrays"],
)
async def test_bodies_below_the_json_level_are_a_400(
    client: Client, body: bytes, code: str
) -> None:
    org_id, tokens = await member_tokens(client, ())
    for with_credentials in (False, True):
        headers = {"content-type": "application/json", "if-match": "1"}
        if with_credentials:
            headers |= bearer(tokens["owner"])
        for method, path in BODY_ROUTES:
            response = await client.request(
                method, path.format(org=org_id), content=body, headers=headers
            )
            assert response.status_code == 400, (method, path, response.text)
            assert response.json()["code"] == code, (method, path)


async def test_a_websocket_command_nested_deep_is_an_error_frame(live_server: str) -> None:
    async with httpx.AsyncClient(base_url=live_server) as http:
        _, tokens = await member_tokens(http, ())
    url = live_server.replace("http", "ws") + f"/v1/realtime?access_token={tokens['owner']}"
    async with websockets.connect(url) as socket:
        await socket.send("[" * 5000 + "]" * 5000)
        error = json.loads(await socket.recv())
        assert (error["type"], error["code"]) == ("error", "json_too_deep")
        await socket.send(json.dumps({"type": "ping"}))
        assert json.loads(await socket.recv())["type"] == "pong"


async def test_filters_nested_deep_are_a_400(client: Client) -> None:
    _, tokens = await member_tokens(client, ())
    deep = "or=(" + "or(" * 400 + "id.eq.1" + ")" * 400 + ")"
    response = await client.get(f"/v1/db/items?{deep}", headers=bearer(tokens["owner"]))
    assert (response.status_code, response.json()["code"]) == (400, "PGRST100")


@pytest.mark.parametrize("digits", ["²", "٣", "1²", "¹⁰", "৪২"])
async def test_numbers_are_ascii_digits(client: Client, digits: str) -> None:
    org_id, tokens = await member_tokens(client, ())
    headers = bearer(tokens["owner"])
    raw_headers = {k.encode(): v.encode() for k, v in headers.items()}
    for query in (f"limit={digits}", f"offset={digits}"):
        response = await client.get(f"/v1/db/items?{query}", headers=headers)
        assert (response.status_code, response.json()["code"]) == (400, "PGRST100"), query
    # Headers travel as bytes (servers read them as Latin-1).
    for span in (f"0-{digits}", f"{digits}-9"):
        ranged = await client.get("/v1/db/items", headers={**raw_headers, b"range": span.encode()})
        assert ranged.status_code == 416, span
    latin1 = digits.encode("latin-1", errors="ignore") or digits.encode()
    settings = await client.put(
        f"/v1/orgs/{org_id}/settings",
        headers={**raw_headers, b"if-match": latin1},
        json={"settings": {}},
    )
    assert (settings.status_code, settings.json()["code"]) == (400, "invalid_if_match")
    for path in ("/v1/platform/orgs", "/v1/orgs/{org}/audit", "/v1/docs/notes"):
        response = await client.get(f"{path.format(org=org_id)}?limit={digits}", headers=headers)
        assert 400 <= response.status_code < 500, (path, response.text)


@pytest.mark.parametrize(
    "document",
    [
        '{"ref": {"$oid": "zz"}}',
        '{"when": {"$date": "99999-01-01T00:00:00Z"}}',
        '{"when": {"$date": {"$numberLong": "99999999999999999999"}}}',
        '{"n": {"$numberDecimal": "not a number"}}',
        '{"b": {"$binary": "zz"}}',
    ],
)
async def test_impossible_extended_json_is_a_400(client: Client, document: str) -> None:
    _, tokens = await member_tokens(client, ())
    headers = {**bearer(tokens["owner"]), "content-type": "application/json"}
    inserted = await client.post("/v1/docs/notes", headers=headers, content=document)
    assert (inserted.status_code, inserted.json()["code"]) == (400, "malformed_body")
    listed = await client.get("/v1/docs/notes", headers=headers, params={"filter": document})
    assert (listed.status_code, listed.json()["code"]) == (400, "malformed_body")


async def test_an_impersonation_reason_counts_without_its_spaces(
    settings: Settings, client: Client
) -> None:
    admin, _ = await new_user(client)
    await make_platform_admin(settings, admin["id"])
    headers = bearer((await sign_in(client, admin["email"]))["access_token"])
    org_id, _ = await member_tokens(client, ())
    for reason in ("  a  ", " ab ", "\t\tx\n\n"):
        response = await client.post(
            f"/v1/platform/orgs/{org_id}/impersonate", headers=headers, json={"reason": reason}
        )
        assert (response.status_code, response.json()["code"]) == (400, "invalid_reason")


async def test_contains_on_a_text_column_is_a_400(client: Client) -> None:
    _, tokens = await member_tokens(client, ())
    response = await client.get("/v1/db/items?title=cs.x", headers=bearer(tokens["owner"]))
    assert response.status_code == 400, response.text


async def test_created_by_cannot_name_a_user_of_another_org(client: Client) -> None:
    """Finding 8: an admin set created_by to a user of another org."""
    _, tokens = await member_tokens(client, ())
    outsider, _ = await new_user(client)
    headers = {**bearer(tokens["owner"]), "Prefer": "return=representation"}
    inserted = await client.post(
        "/v1/db/items", headers=headers, json={"title": "x", "created_by": outsider["id"]}
    )
    assert inserted.status_code == 403, inserted.text
    mine = await client.post("/v1/db/items", headers=headers, json={"title": "mine"})
    row_id = mine.json()[0]["id"]
    moved = await client.patch(
        f"/v1/db/items?id=eq.{row_id}", headers=headers, json={"created_by": outsider["id"]}
    )
    assert (moved.status_code, moved.json()["code"]) == (400, "23514")
