"""An impersonation token acted as its platform admin outside the org it was made for.

``POST /v1/platform/orgs/{X}/impersonate`` hands a read-only viewer token for org X. With
it, the admin's own account answered: ``POST /v1/orgs`` made orgs, ``POST
/v1/invitations/accept`` joined one, ``DELETE /v1/auth/sessions/{sid}`` and ``POST
/v1/auth/logout`` ended the admin's sessions, and ``GET /v1/auth/sessions`` and ``GET
/v1/orgs`` listed them. Now the request-auth component refuses every method that may
write (403 ``impersonation_read_only``, before any handler runs: new routes included),
except routes that declare they only read, and the principal refuses every route about
the caller's own account: the token reads org X, nothing else.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import websockets
from litestar.testing import AsyncTestClient

from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp
from tests.support.data import make_platform_admin, owner_connection
from tests.support.http import bearer, create_org, new_user, session_of, sign_in

Client = AsyncTestClient[OrgbaseApp]
READ_ONLY = (403, "impersonation_read_only")


async def impersonating(client: Client, settings: Settings) -> dict[str, Any]:
    """A platform admin with an org of their own (Y) and a pending invitation elsewhere,
    looking at org X (whose owner keeps data there) through an impersonation."""
    owner, owner_tokens = await new_user(client)
    org_x = await create_org(client, owner_tokens, "customer")
    in_x = bearer((await sign_in(client, owner["email"], org_x))["access_token"])
    assert (await client.post("/v1/db/items", headers=in_x, json={"title": "x"})).status_code == 201
    assert (await client.post("/v1/docs/notes", headers=in_x, json={"n": 1})).status_code == 201
    admin, admin_tokens = await new_user(client)
    await make_platform_admin(settings, admin["id"])
    org_y = await create_org(client, admin_tokens, "the admin's own")
    invitation = await client.post(
        f"/v1/orgs/{org_x}/invitations", headers=in_x, json={"email": admin["email"]}
    )
    assert invitation.status_code == 201, invitation.text
    async with owner_connection(settings) as connection:
        mailed = await connection.fetchval(
            "SELECT body FROM orgbase.outbox WHERE recipient = $1 ORDER BY id DESC LIMIT 1",
            admin["email"],
        )
    token = re.search(r"token=([A-Za-z0-9_-]+)", mailed)
    assert token is not None
    made = await client.post(
        f"/v1/platform/orgs/{org_x}/impersonate",
        headers=bearer(admin_tokens["access_token"]),
        json={"reason": "support ticket 79"},
    )
    assert made.status_code == 201, made.text
    return {
        "x": org_x,
        "y": org_y,
        "admin": bearer(admin_tokens["access_token"]),
        "admin_session": str(session_of(admin_tokens["access_token"])),
        # With the publishable key, as Supabase's clients send it on /auth/v1 and /rest/v1.
        "token": bearer(made.json()["access_token"])
        | {"apikey": settings.auth.publishable_key or ""},
        "invitation": token.group(1),
    }


def answer(response: Any) -> tuple[int, str | None]:
    return response.status_code, response.json().get("code") if response.content else None


async def test_an_impersonation_writes_nothing_and_reads_only_its_org(
    client: Client, settings: Settings
) -> None:
    w = await impersonating(client, settings)
    x, y, token = w["x"], w["y"], w["token"]
    writes: list[tuple[str, str, Any]] = [
        ("POST", "/v1/orgs", {"name": "made by an impersonation"}),
        ("POST", "/v1/invitations/accept", {"token": w["invitation"]}),
        ("DELETE", f"/v1/auth/sessions/{w['admin_session']}", None),
        ("POST", "/v1/auth/logout", {"scope": "global"}),
        ("POST", "/auth/v1/logout", None),
        ("POST", "/v1/auth/browser/sign-out", None),
        ("PATCH", f"/v1/orgs/{y}", {"name": "renamed"}),
        ("DELETE", f"/v1/orgs/{y}", None),
        ("POST", f"/v1/orgs/{y}/api-keys", {"name": "k", "role": "admin"}),
        ("POST", f"/v1/orgs/{x}/invitations", {"email": "a@example.test"}),
        ("PUT", f"/v1/orgs/{x}/settings", {"a": 1}),
        ("POST", "/v1/db/items", {"title": "written by an impersonation"}),
        ("POST", "/v1/db/rpc/count_items", {}),
        ("POST", "/v1/docs/notes", {"n": 2}),
        ("PUT", "/v1/kv/greeting", {"value": "hi"}),
        ("POST", "/v1/kv/greeting/increment", {"by": 1}),
        ("DELETE", "/v1/kv/greeting", None),
        ("POST", "/v1/realtime/chat", {"event": "said"}),
        ("POST", "/storage/v1/bucket", {"id": "files"}),
        ("POST", "/auth/v1/factors", {}),
        ("PUT", "/auth/v1/user", {"data": {"a": 1}}),
    ]
    wrong = []
    for method, path, body in writes:
        got = await client.request(method, path, headers=token, json=body)
        if answer(got) != READ_ONLY:
            wrong.append(f"{method} {path}: {got.status_code} {got.text[:120]}")
    # The admin's own account: not this token's to read.
    for path in ("/v1/orgs", "/v1/auth/sessions", "/v1/auth/user", "/auth/v1/user"):
        got = await client.get(path, headers=token)
        if answer(got) != READ_ONLY:
            wrong.append(f"GET {path}: {got.status_code} {got.text[:120]}")
    # Another org (the admin's own): as any other org, not found.
    for path in (f"/v1/orgs/{y}", f"/v1/orgs/{y}/members"):
        got = await client.get(path, headers=token)
        if answer(got) != (404, "org_not_found"):
            wrong.append(f"GET {path}: {got.status_code} {got.text[:120]}")
    assert not wrong, "\n".join(wrong)

    # What it is for: reading org X, with GET or the routes that only read by POST.
    reads = [
        await client.get(f"/v1/orgs/{x}/members", headers=token),
        await client.get("/v1/db/items", headers=token),
        await client.get("/v1/db/rpc/count_items", headers=token),
        await client.post("/v1/docs/notes/query", headers=token, json={}),
        await client.post("/v1/docs/notes/count", headers=token, json={}),
    ]
    assert [r.status_code for r in reads] == [200] * len(reads), [r.text for r in reads]
    # Nothing happened to the admin: their session lives, they made no org, joined none.
    mine = await client.get("/v1/orgs", headers=w["admin"])
    assert mine.status_code == 200, mine.text
    assert [o["id"] for o in mine.json()] == [y]


async def test_an_impersonation_publishes_nothing_on_a_socket(
    client: Client, settings: Settings, live_server: str
) -> None:
    """A socket has no method to refuse: its publish command is refused by the hub, while
    the subscription (a read) stays open."""
    w = await impersonating(client, settings)
    token = w["token"]["Authorization"].removeprefix("Bearer ")
    url = live_server.replace("http", "ws") + f"/v1/realtime?access_token={token}"
    async with websockets.connect(url) as socket:

        async def command(**body: Any) -> dict[str, Any]:
            await socket.send(json.dumps(body))
            reply: dict[str, Any] = json.loads(await asyncio.wait_for(socket.recv(), 5))
            return reply

        assert (await command(type="subscribe", channel="chat"))["type"] == "subscribed"
        refused = await command(type="publish", channel="chat", event="said", payload=1)
        assert (refused["type"], refused.get("code")) == ("error", "impersonation_read_only")
