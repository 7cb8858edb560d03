"""Attacks on Supabase Realtime's protocol (/realtime/v1/websocket).

- postgres_changes are authorised per subscriber, by PostgreSQL, at delivery: an
  owner_private row reaches its owner and the org's admins, never the other members or
  the viewers (its insert, update and delete alike); a row made visible to someone later
  never shows them the change from before; a demoted admin stops seeing what admins see.
- Topics are the org's: the same topic and table in two orgs are two channels, silent to
  each other (broadcast, presence, changes), whatever filter a subscriber writes.
- A socket stays with its caller: a token of another user or another org is refused.
- Revocations reach these sockets at once, through Redis, from another gateway process:
  sign-out, removal, deletion of the org, a revoked API key, a demotion, an org's MFA
  requirement.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from devstack import LocalStack
from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp, create_app
from tests.security.test_policy_revocation import mfa_org, require_mfa
from tests.support.http import add_member, bearer, member_tokens, new_user, sign_in
from tests.support.phoenix import Phoenix, changes_of, wait_changes

Client = AsyncTestClient[OrgbaseApp]
AT_ONCE = 5.0
QUIET = 1.5
"""How long a socket that must hear nothing is listened to after the others heard."""
NOTES = [{"event": "*", "schema": "public", "table": "private_notes"}]


@pytest.fixture
def http(live_http: httpx.AsyncClient) -> httpx.AsyncClient:
    return live_http


async def listeners(
    base: str,
    key: str,
    tokens: dict[str, str],
    topic: str,
    changes: list[dict[str, Any]],
    presence: bool = False,
) -> dict[str, Phoenix]:
    sockets = {}
    for who, token in tokens.items():
        sockets[who] = await Phoenix.open(base, key)
        answer = await sockets[who].join(topic, token, changes=changes, presence=presence)
        assert answer["status"] == "ok", answer
    return sockets


async def close_all(sockets: dict[str, Phoenix]) -> None:
    for socket in sockets.values():
        await socket.close()


async def write(http: httpx.AsyncClient, method: str, path: str, token: str, **body: Any) -> Any:
    headers = bearer(token) | {"Prefer": "return=representation"}
    answer = await http.request(method, path, headers=headers, json=body or None)
    assert answer.status_code in (200, 201), answer.text
    return answer.json()


async def test_owner_private_changes_reach_the_owner_and_admins_only(
    live_server: str, anon_key: str, http: httpx.AsyncClient
) -> None:
    org_id, tokens = await member_tokens(http, ("admin", "member", "viewer"))
    other = await sign_in(http, (await _second_member(http, org_id, tokens))["email"], org_id)
    everyone = {**tokens, "other": other["access_token"]}
    sockets = await listeners(live_server, anon_key, everyone, "notes", NOTES)
    try:
        note = (await write(http, "POST", "/v1/db/private_notes", tokens["member"], body="mine"))[0]
        path = f"/v1/db/private_notes?id=eq.{note['id']}"
        await write(http, "PATCH", path, tokens["member"], body="still mine")
        await write(http, "DELETE", path, tokens["member"])
        for who in ("member", "admin", "owner"):
            seen = [f["data"] for f in await wait_changes(sockets[who], "notes", 3)]
            assert [d["type"] for d in seen] == ["INSERT", "UPDATE", "DELETE"], who
            assert seen[0]["record"]["body"] == "mine"
        await asyncio.sleep(QUIET)
        assert changes_of(sockets["other"], "notes") == []
        assert changes_of(sockets["viewer"], "notes") == []
    finally:
        await close_all(sockets)


async def _second_member(
    http: httpx.AsyncClient, org_id: str, tokens: dict[str, str]
) -> dict[str, Any]:
    """Another member of the org (made through the API by the owner)."""
    user, _ = await new_user(http)
    await add_member(http, {"access_token": tokens["owner"]}, org_id, user, "member")
    return user


async def test_a_row_made_visible_later_does_not_show_its_past(
    live_server: str, anon_key: str, http: httpx.AsyncClient
) -> None:
    """An admin hands a member's private note to another member: the new owner hears the
    handover (the row as it is now theirs), never the insert from before it."""
    org_id, tokens = await member_tokens(http, ("admin", "member"))
    heir = await _second_member(http, org_id, tokens)
    heir_token = (await sign_in(http, heir["email"], org_id))["access_token"]
    sockets = await listeners(live_server, anon_key, {"heir": heir_token}, "notes", NOTES)
    try:
        note = (await write(http, "POST", "/v1/db/private_notes", tokens["member"], body="x"))[0]
        await write(
            http,
            "PATCH",
            f"/v1/db/private_notes?id=eq.{note['id']}",
            tokens["admin"],
            created_by=heir["id"],
        )
        await wait_changes(sockets["heir"], "notes", 1)
        await asyncio.sleep(QUIET)
        seen = changes_of(sockets["heir"], "notes")
        assert [d["type"] for d in seen] == ["UPDATE"]
        assert seen[0]["record"]["created_by"] == heir["id"]
    finally:
        await close_all(sockets)


async def test_a_demoted_admin_stops_seeing_others_private_rows(
    live_server: str, anon_key: str, http: httpx.AsyncClient
) -> None:
    org_id, tokens = await member_tokens(http, ("admin", "member"))
    sockets = await listeners(live_server, anon_key, {"admin": tokens["admin"]}, "notes", NOTES)
    try:
        await write(http, "POST", "/v1/db/private_notes", tokens["member"], body="before")
        await wait_changes(sockets["admin"], "notes", 1)
        members = await http.get(f"/v1/orgs/{org_id}/members", headers=bearer(tokens["owner"]))
        admin_id = next(m["user_id"] for m in members.json() if m["role"] == "admin")
        demoted = await http.patch(
            f"/v1/orgs/{org_id}/members/{admin_id}",
            headers=bearer(tokens["owner"]),
            json={"role": "member"},
        )
        assert demoted.status_code == 200
        await write(http, "POST", "/v1/db/private_notes", tokens["member"], body="after")
        await asyncio.sleep(QUIET)
        assert [d["record"]["body"] for d in changes_of(sockets["admin"], "notes")] == ["before"]
    finally:
        await close_all(sockets)


async def test_the_same_topic_in_two_orgs_is_two_channels(
    live_server: str, anon_key: str, http: httpx.AsyncClient
) -> None:
    org_a, a = await member_tokens(http, ("member",))
    _, b = await member_tokens(http, ("member",))
    # B's subscriber even names A's org in its filter.
    changes = [{"event": "*", "schema": "public", "table": "tasks", "filter": f"org_id=eq.{org_a}"}]
    ours = await listeners(live_server, anon_key, {"a": a["member"]}, "room", changes, True)
    theirs = await listeners(live_server, anon_key, {"b": b["member"]}, "room", changes, True)
    try:
        await ours["a"].broadcast("room", "secret", {"org": org_a})
        await ours["a"].push(
            "realtime:room", "presence", {"event": "track", "payload": {"org": org_a}}
        )
        await write(http, "POST", "/v1/db/tasks", a["member"], title="a's task")
        await wait_changes(ours["a"], "room", 1)
        await asyncio.sleep(QUIET)
        b_heard = [f for f in theirs["b"].frames if f.event in ("broadcast", "postgres_changes")]
        assert b_heard == []
        diffs = theirs["b"].events("realtime:room", "presence_diff")
        assert all(not d["joins"] for d in diffs)
    finally:
        await close_all(ours)
        await close_all(theirs)


async def test_a_socket_refuses_another_users_or_orgs_token(
    live_server: str, anon_key: str, http: httpx.AsyncClient
) -> None:
    org_id, tokens = await member_tokens(http, ("member",))
    _, strangers = await member_tokens(http, ())
    me = (await http.get("/v1/auth/user", headers=bearer(tokens["member"]))).json()
    my_other_org = (
        await http.post("/v1/orgs", headers=bearer(tokens["member"]), json={"name": "mine"})
    ).json()["id"]
    elsewhere = (await sign_in(http, me["email"], my_other_org))["access_token"]
    socket = await Phoenix.open(live_server, anon_key)
    try:
        assert (await socket.join("a", tokens["member"]))["status"] == "ok"
        for token in (strangers["owner"], elsewhere):
            refused = await socket.join("b", token)
            assert refused["response"]["code"] == "realtime_identity_changed"
        # The same through access_token: the channel is closed, nothing else changes.
        await socket.push("realtime:a", "access_token", {"access_token": elsewhere})
        closed = await socket.wait(lambda f: f.event == "phx_close" and f.topic == "realtime:a")
        assert closed is not None
        error = await socket.wait(lambda f: f.event == "system" and f.payload["status"] == "error")
        assert error.payload["code"] == "realtime_identity_changed"
        # A refreshed token of the same caller is taken.
        fresh = (await sign_in(http, me["email"], org_id))["access_token"]
        assert (await socket.join("c", fresh))["status"] == "ok"
        garbage = await socket.join("d", "not-a-token")
        assert garbage["response"]["code"] == "token_malformed"
    finally:
        await socket.close()


async def closed_code(socket: Phoenix) -> int | None:
    await asyncio.wait_for(socket.closed.wait(), AT_ONCE)
    return socket.close_code


async def test_sign_out_closes_the_socket_at_once(
    live_server: str, anon_key: str, client: Client
) -> None:
    _, tokens = await member_tokens(client, ("member",))
    socket = await Phoenix.open(live_server, anon_key)
    await socket.join("room", tokens["member"])
    out = await client.post("/v1/auth/logout", headers=bearer(tokens["member"]), json={})
    assert out.status_code in (200, 204)
    assert await closed_code(socket) == 4401
    told = socket.events("realtime:room", "system")
    assert told
    assert told[-1]["code"] == "session_revoked"


async def test_removal_and_org_deletion_close_sockets(
    live_server: str, anon_key: str, client: Client
) -> None:
    org_id, tokens = await member_tokens(client, ("member",))
    member, owner = (
        await Phoenix.open(live_server, anon_key),
        await Phoenix.open(live_server, anon_key),
    )
    await member.join("room", tokens["member"])
    await owner.join("room", tokens["owner"])
    people = await client.get(f"/v1/orgs/{org_id}/members", headers=bearer(tokens["owner"]))
    member_id = next(m["user_id"] for m in people.json() if m["role"] == "member")
    removed = await client.delete(
        f"/v1/orgs/{org_id}/members/{member_id}", headers=bearer(tokens["owner"])
    )
    assert removed.status_code == 204
    assert await closed_code(member) == 4403
    deleted = await client.delete(f"/v1/orgs/{org_id}", headers=bearer(tokens["owner"]))
    assert deleted.status_code == 204
    assert await closed_code(owner) == 4403


async def test_a_revoked_key_closes_its_socket(
    live_server: str, anon_key: str, client: Client
) -> None:
    org_id, tokens = await member_tokens(client, ())
    owner = bearer(tokens["owner"])
    key = (
        await client.post(f"/v1/orgs/{org_id}/api-keys", headers=owner, json={"name": "rt"})
    ).json()
    socket = await Phoenix.open(live_server, key["key"])  # the key as the connection's apikey
    assert (await socket.join("room", None))["status"] == "ok"
    revoked = await client.delete(f"/v1/orgs/{org_id}/api-keys/{key['id']}", headers=owner)
    assert revoked.status_code == 204
    assert await closed_code(socket) == 4401


async def test_a_demoted_member_keeps_listening_but_cannot_send(
    live_server: str, anon_key: str, client: Client
) -> None:
    org_id, tokens = await member_tokens(client, ("member",))
    socket = await Phoenix.open(live_server, anon_key)
    await socket.join("room", tokens["member"], ack=True)
    assert (await socket.reply(await socket.broadcast("room", "e", {})))["status"] == "ok"
    people = await client.get(f"/v1/orgs/{org_id}/members", headers=bearer(tokens["owner"]))
    member_id = next(m["user_id"] for m in people.json() if m["role"] == "member")
    demoted = await client.patch(
        f"/v1/orgs/{org_id}/members/{member_id}",
        headers=bearer(tokens["owner"]),
        json={"role": "viewer"},
    )
    assert demoted.status_code == 200
    refused = await socket.reply(await socket.broadcast("room", "e", {}))
    assert refused["response"]["code"] == "role_too_low"
    tracked = await socket.push("realtime:room", "presence", {"event": "track", "payload": {}})
    assert (await socket.reply(tracked))["response"]["code"] == "role_too_low"
    heartbeat = await socket.push("phoenix", "heartbeat", {})
    assert (await socket.reply(heartbeat))["status"] == "ok"
    await socket.close()


async def test_requiring_mfa_closes_aal1_phoenix_sockets(
    live_server: str, anon_key: str, stack: LocalStack, settings: Settings
) -> None:
    async with AsyncTestClient(app=create_app(settings)) as gateway:
        gateway.headers.update({"apikey": stack.secrets["publishable"]})
        org = await mfa_org(gateway)
        member, owner = (
            await Phoenix.open(live_server, anon_key),
            await Phoenix.open(live_server, anon_key),
        )
        await member.join("room", org["member"])
        await owner.join("room", org["owner"])
        await require_mfa(gateway, org)
        assert await closed_code(member) == 4403
        assert not owner.closed.is_set()
        await owner.close()


async def test_rows_too_large_to_announce_are_still_decided_per_subscriber(
    live_server: str, anon_key: str, http: httpx.AsyncClient
) -> None:
    """A row over NOTIFY's 8000 bytes is read under RLS by key (insert, update); its
    deletion is decided on the key, org and creator (all a trimmed announcement keeps)."""
    org_id, tokens = await member_tokens(http, ("member",))
    other = await _second_member(http, org_id, tokens)
    other_token = (await sign_in(http, other["email"], org_id))["access_token"]
    everyone = {"member": tokens["member"], "owner": tokens["owner"], "other": other_token}
    sockets = await listeners(live_server, anon_key, everyone, "big", NOTES)
    try:
        big = "x" * 20_000
        note = (await write(http, "POST", "/v1/db/private_notes", tokens["member"], body=big))[0]
        for who in ("member", "owner"):  # read now: the row must still be there
            assert (await wait_changes(sockets[who], "big", 1))[0]["data"]["record"]["body"] == big
        await write(http, "DELETE", f"/v1/db/private_notes?id=eq.{note['id']}", tokens["member"])
        for who in ("member", "owner"):
            seen = [f["data"] for f in await wait_changes(sockets[who], "big", 2)]
            assert [d["type"] for d in seen] == ["INSERT", "DELETE"], (who, seen)
            assert seen[1]["old_record"] == {"id": note["id"]}
        await asyncio.sleep(QUIET)
        assert changes_of(sockets["other"], "big") == []
    finally:
        await close_all(sockets)
