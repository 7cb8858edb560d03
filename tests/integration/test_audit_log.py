"""The audit log: written for every audited action with actor and request id, including
row changes on tenant tables, readable by admins only, append-only for the API roles."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from orgbase.core.context import OrgContext
from orgbase.core.postgres import Database
from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp
from tests.support.http import bearer, org_with_roles, secret_of, session_of


async def read(
    client: AsyncTestClient[OrgbaseApp], org_id: str, headers: dict[str, str], **params: Any
) -> Any:
    response = await client.get(f"/v1/orgs/{org_id}/audit", headers=headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def test_actions_are_audited_with_actor_and_request_id(
    client: AsyncTestClient[OrgbaseApp],
) -> None:
    org_id, people = await org_with_roles(client, ("member",))
    owner, owner_tokens = people["owner"]
    headers = bearer(owner_tokens["access_token"])
    member_id = people["member"][0]["id"]
    base = f"/v1/orgs/{org_id}"
    actions: list[tuple[str, str, dict[str, str], dict[str, Any], str]] = [
        ("PATCH", f"{base}/members/{member_id}", {}, {"role": "viewer"}, "audit-role-change-1"),
        (
            "PUT",
            f"{base}/settings",
            {"If-Match": "1"},
            {"settings": {"k": "v"}},
            "audit-settings-1",
        ),
        ("POST", f"{base}/api-keys", {}, {"name": "k"}, "audit-key-1"),
        ("POST", f"{base}/invitations", {}, {"email": "i@example.test"}, "audit-invite-1"),
    ]
    for method, url, extra, body, request_id in actions:
        response = await client.request(
            method, url, headers={**headers, **extra, "X-Request-ID": request_id}, json=body
        )
        assert response.is_success, (method, url, response.text)
    entries = (await read(client, org_id, headers))["items"]
    by_action: dict[str, Any] = {}
    for entry in entries:  # newest first: the action's latest entry
        by_action.setdefault(entry["action"], entry)
    for action, request_id in [
        ("member.role_changed", "audit-role-change-1"),
        ("settings.updated", "audit-settings-1"),
        ("api_key.created", "audit-key-1"),
        ("invitation.created", "audit-invite-1"),
    ]:
        entry = by_action[action]
        assert entry["actor_user_id"] == owner["id"], action
        assert entry["request_id"] == request_id, action
    assert by_action["member.role_changed"]["details"] == {"from": "member", "to": "viewer"}
    assert {"org.created", "invitation.accepted"} <= set(by_action)
    filtered = await read(client, org_id, headers, action="member.*")
    assert {e["action"] for e in filtered["items"]} == {"member.added", "member.role_changed"}


async def test_row_changes_on_tenant_tables_are_audited(
    settings: Settings, client: AsyncTestClient[OrgbaseApp]
) -> None:
    org_id, people = await org_with_roles(client, ("member",))
    member_id = uuid.UUID(people["member"][0]["id"])
    headers = bearer(people["owner"][1]["access_token"])
    db = Database(settings.database)
    await db.open()
    try:
        ctx = OrgContext(
            org_id=uuid.UUID(org_id),
            user_id=member_id,
            role="member",
            request_id="row-audit-1",
            session_id=session_of(people["member"][1]["access_token"]),
            session_secret=secret_of(people["member"][1]["access_token"]),
        )
        async with db.tenant_transaction(ctx) as connection:
            item_id = await connection.fetchval(
                "INSERT INTO api.items (title) VALUES ('first') RETURNING id"
            )
            await connection.execute("UPDATE api.items SET title = 'second' WHERE id = $1", item_id)
            await connection.execute("DELETE FROM api.items WHERE id = $1", item_id)
    finally:
        await db.close()
    entries = (await read(client, org_id, headers, table="api.items"))["items"]
    assert [e["action"] for e in entries] == ["row.delete", "row.update", "row.insert"]
    for entry in entries:
        assert entry["row_key"] == {"id": item_id}
        assert entry["actor_user_id"] == str(member_id)
        assert entry["request_id"] == "row-audit-1"
    delete, update, insert = entries
    assert insert["new_values"]["title"] == "first"
    assert insert["old_values"] is None
    assert (update["old_values"]["title"], update["new_values"]["title"]) == ("first", "second")
    assert delete["old_values"]["title"] == "second"


async def test_only_admins_read_and_pages_follow(client: AsyncTestClient[OrgbaseApp]) -> None:
    org_id, people = await org_with_roles(client)
    for role in ("member", "viewer"):
        response = await client.get(
            f"/v1/orgs/{org_id}/audit", headers=bearer(people[role][1]["access_token"])
        )
        assert response.status_code == 403
    headers = bearer(people["admin"][1]["access_token"])
    everything = [e["id"] for e in (await read(client, org_id, headers, limit=200))["items"]]
    assert len(everything) >= 4
    seen: list[int] = []
    cursor = None
    while True:
        page = await read(
            client, org_id, headers, limit=2, **({"before": cursor} if cursor else {})
        )
        seen += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == everything
    for bad in (
        {"limit": 0},
        {"limit": 1000},
        {"before": "x"},
        {"since": "yesterday"},
        {"actor": "nope"},
    ):
        assert (
            await client.get(f"/v1/orgs/{org_id}/audit", headers=headers, params=bad)
        ).status_code == 400


async def test_the_api_roles_cannot_alter_audit_rows(settings: Settings) -> None:
    for url in (settings.database.api_url, settings.database.system_url):
        connection = await asyncpg.connect(url)
        try:
            for statement in (
                "UPDATE orgbase.audit_events SET action = 'forged'",
                "DELETE FROM orgbase.audit_events",
                "TRUNCATE orgbase.audit_events",
            ):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await connection.execute(statement)
        finally:
            await connection.close()
    connection = await asyncpg.connect(settings.database.api_url)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await connection.execute("INSERT INTO orgbase.audit_events (action) VALUES ('forged')")
    finally:
        await connection.close()
