"""The policy presets of enable_tenancy, through the data API, for every role."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp
from tests.support.data import owner_connection
from tests.support.http import bearer, member_tokens

ROLES = ("viewer", "member", "admin", "owner")


@pytest.fixture
async def org(client: AsyncTestClient[OrgbaseApp]) -> dict[str, dict[str, str]]:
    _, tokens = await member_tokens(client, ("admin", "member", "viewer"))
    return {role: bearer(token) for role, token in tokens.items()}


async def _bodies(client: AsyncTestClient[OrgbaseApp], table: str, headers: Any) -> set[str]:
    response = await client.get(f"/v1/db/{table}?select=body", headers=headers)
    assert response.status_code == 200, response.text
    return {r["body"] for r in response.json()}


async def _insert(client: AsyncTestClient[OrgbaseApp], table: str, headers: Any, body: str) -> int:
    response = await client.post(
        f"/v1/db/{table}",
        headers={**headers, "Prefer": "return=representation"},
        json={"body": body},
    )
    return response.status_code


async def _change(
    client: AsyncTestClient[OrgbaseApp], table: str, headers: Any, body: str
) -> tuple[int, int]:
    """(rows updated, rows deleted) of the row with this body, as this caller."""
    updated = await client.patch(
        f"/v1/db/{table}?body=eq.{body}",
        headers={**headers, "Prefer": "return=representation"},
        json={"body": body},
    )
    deleted = await client.delete(
        f"/v1/db/{table}?body=eq.{body}", headers={**headers, "Prefer": "return=representation"}
    )
    assert updated.status_code == 200
    assert deleted.status_code == 200
    return len(updated.json()), len(deleted.json())


async def test_owner_private(
    client: AsyncTestClient[OrgbaseApp], org: dict[str, dict[str, str]]
) -> None:
    table = "private_notes"
    expected_insert = {"viewer": 403, "member": 201, "admin": 201, "owner": 201}
    for role in ROLES:
        assert await _insert(client, table, org[role], f"by {role}") == expected_insert[role]
    written = {f"by {r}" for r in ("member", "admin", "owner")}
    # Creators see their own rows; admins and owners see every row of the org.
    assert await _bodies(client, table, org["viewer"]) == set()
    assert await _bodies(client, table, org["member"]) == {"by member"}
    assert await _bodies(client, table, org["admin"]) == written
    assert await _bodies(client, table, org["owner"]) == written
    # A member cannot touch the admin's row; a viewer nothing; an admin the member's row.
    assert await _change(client, table, org["member"], "by admin") == (0, 0)
    assert await _change(client, table, org["viewer"], "by member") == (0, 0)
    assert await _change(client, table, org["member"], "by member") == (1, 1)
    assert await _change(client, table, org["admin"], "by owner") == (1, 1)


async def test_admin_write(
    client: AsyncTestClient[OrgbaseApp], org: dict[str, dict[str, str]]
) -> None:
    table = "announcements"
    expected_insert = {"viewer": 403, "member": 403, "admin": 201, "owner": 201}
    for role in ROLES:
        assert await _insert(client, table, org[role], f"by {role}") == expected_insert[role]
    for role in ROLES:
        assert await _bodies(client, table, org[role]) == {"by admin", "by owner"}
    assert await _change(client, table, org["viewer"], "by admin") == (0, 0)
    assert await _change(client, table, org["member"], "by admin") == (0, 0)
    assert await _change(client, table, org["admin"], "by owner") == (1, 1)
    assert await _change(client, table, org["owner"], "by admin") == (1, 1)


async def test_org_preset_is_the_default(
    client: AsyncTestClient[OrgbaseApp], org: dict[str, dict[str, str]]
) -> None:
    table = "comments"
    task = await client.post(
        "/v1/db/tasks",
        headers={**org["owner"], "Prefer": "return=representation"},
        json={"title": "t"},
    )
    task_id = task.json()[0]["id"]
    expected = {"viewer": 403, "member": 201, "admin": 201, "owner": 201}
    for role in ROLES:
        response = await client.post(
            f"/v1/db/{table}", headers=org[role], json={"task_id": task_id, "body": role}
        )
        assert response.status_code == expected[role], role
    for role in ROLES:
        listed = await client.get(f"/v1/db/{table}?select=body", headers=org[role])
        assert {r["body"] for r in listed.json()} == {"member", "admin", "owner"}


async def test_shared_read(
    client: AsyncTestClient[OrgbaseApp], org: dict[str, dict[str, str]]
) -> None:
    _, other = await member_tokens(client, ("viewer",))
    callers = [*org.values(), bearer(other["viewer"]), bearer(other["owner"])]
    for headers in callers:
        listed = await client.get("/v1/db/countries?select=code,name&order=code", headers=headers)
        assert listed.json() == [
            {"code": "fr", "name": "France"},
            {"code": "jp", "name": "Japan"},
        ]
    for role in ROLES:
        headers = org[role]
        added = await client.post(
            "/v1/db/countries", headers=headers, json={"code": "xx", "name": "Nowhere"}
        )
        assert (added.status_code, added.json()["code"]) == (403, "42501"), role
        changed = await client.patch(
            "/v1/db/countries?code=eq.fr", headers=headers, json={"name": "Gaul"}
        )
        assert changed.status_code == 403, role
        removed = await client.delete("/v1/db/countries?code=eq.fr", headers=headers)
        assert removed.status_code == 403, role
    anonymous = await client.get("/v1/db/countries")
    assert anonymous.status_code == 401


async def test_presets_refuse_what_would_open_a_table(
    client: AsyncTestClient[OrgbaseApp], settings: Settings
) -> None:
    async with owner_connection(settings) as connection:
        with pytest.raises(asyncpg.RaiseError, match="shared_read is for reference tables"):
            await connection.execute("SELECT orgbase.enable_tenancy('api.tasks', 'shared_read')")
        with pytest.raises(asyncpg.RaiseError, match="unknown policy"):
            await connection.execute("SELECT orgbase.enable_tenancy('api.tasks', 'everyone')")
        policy = await connection.fetchval(
            "SELECT policy FROM orgbase.tenant_tables WHERE table_name = 'tasks'"
        )
    assert policy == "org"
