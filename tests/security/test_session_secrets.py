"""Entering a session's org takes a secret of one of its live tokens, not its id.

The attacker holds the tenant role's credentials (``orgbase_api``, the data pool's login)
and calls the entry functions directly, with ids read where ids are written down: the
org's audit log (sign-ins name their session, impersonations their id) and tokens that
have expired. None of that enters an org any more; only the secret a live token carries
(``ssec``), checked in PostgreSQL against its SHA-256 in the session's (or the
impersonation's) row, does. Legitimate use keeps working: a refresh leaves the previous
token usable until it expires, concurrent refreshes each get a working token, and a
session made before secrets existed works again after its first refresh.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from devstack import LocalStack
from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp, create_app
from tests.integration.test_platform_admin import cli_admin_create
from tests.support.http import (
    bearer,
    org_with_roles,
    secret_of,
    session_of,
    sign_in,
    unique_email,
)
from tests.support.stack import with_overrides

Client = AsyncTestClient[OrgbaseApp]
ENTER_SESSION = "SELECT orgbase.enter_session($1, $2, $3, 'attack')"
ENTER_IMPERSONATION = "SELECT orgbase.enter_impersonation($1, $2, $3, 'attack')"
TOKEN_SECONDS = 2


@pytest.fixture
async def tenant_role(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    """A connection as the tenant role, the attacker's."""
    connection = await asyncpg.connect(settings.database.api_url)
    yield connection
    await connection.close()


@pytest.fixture(scope="module")
async def short_client(settings: Settings) -> AsyncIterator[Client]:
    """A gateway whose access tokens live two seconds, without clock skew."""
    configured = with_overrides(
        settings, auth={"access_token_seconds": TOKEN_SECONDS, "clock_skew_seconds": 0}
    )
    async with AsyncTestClient(app=create_app(configured)) as client:
        yield client


async def entry(connection: asyncpg.Connection, statement: str, *args: Any) -> str:
    """The role an entry answers, or the SQLSTATE it refuses with."""
    try:
        return str(await connection.fetchval(statement, *args))
    except asyncpg.PostgresError as exc:
        return str(exc.sqlstate)


async def audit_entry(client: Client, org_id: str, owner_token: str, action: str) -> dict[str, Any]:
    response = await client.get(
        f"/v1/orgs/{org_id}/audit", headers=bearer(owner_token), params={"action": action}
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    assert items, action
    return items[0]


async def refresh(client: Client, refresh_token: str) -> dict[str, Any]:
    response = await client.post(
        "/v1/auth/token", json={"grant_type": "refresh_token", "refresh_token": refresh_token}
    )
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


async def test_a_session_id_from_the_audit_log_enters_no_org(
    client: Client, tenant_role: asyncpg.Connection
) -> None:
    org_id, people = await org_with_roles(client, ("member",))
    owner_token = people["owner"][1]["access_token"]
    member_user = people["member"][0]
    member = await sign_in(client, member_user["email"], org_id)
    # The org's audit log names the member's session.
    signin = await audit_entry(client, org_id, owner_token, "auth.signin")
    sid = uuid.UUID(signin["details"]["session_id"])
    assert sid == session_of(member["access_token"])
    org = uuid.UUID(org_id)

    # What the entry used to take: the session, its user, the org.
    assert await entry(tenant_role, ENTER_SESSION, sid, member_user["id"], org) == "OB401"
    live = secret_of(member["access_token"])
    attempts = {
        "no secret": None,
        "an empty secret": "",
        "a made-up secret": secrets.token_urlsafe(32),
        "another session's live secret": secret_of(owner_token),
        "a secret one character off": live[:-1] + ("B" if live.endswith("A") else "A"),
    }
    for what, second in attempts.items():
        assert await entry(tenant_role, ENTER_SESSION, sid, second, org) == "OB401", what
    # The entry by ids alone is gone (not merely shadowed by an overload).
    with pytest.raises(asyncpg.UndefinedFunctionError):
        await tenant_role.fetchval(
            "SELECT orgbase.enter_session($1::uuid, $2::uuid, $3::uuid, 'attack')",
            sid,
            uuid.UUID(member_user["id"]),
            org,
        )
    # The live token's secret is what enters.
    assert await entry(tenant_role, ENTER_SESSION, sid, secret_of(member["access_token"]), org) == (
        "member"
    )


async def test_an_expired_tokens_secret_enters_no_org(
    short_client: Client, tenant_role: asyncpg.Connection
) -> None:
    """While the session lives on (refreshed), the secret of its expired token is dead."""
    client = short_client
    org_id, people = await org_with_roles(client, ("member",))
    member = await sign_in(client, people["member"][0]["email"], org_id)
    expired = member["access_token"]
    sid, org = session_of(expired), uuid.UUID(org_id)
    assert await entry(tenant_role, ENTER_SESSION, sid, secret_of(expired), org) == "member"
    await asyncio.sleep(TOKEN_SECONDS + 1.1)
    assert await entry(tenant_role, ENTER_SESSION, sid, secret_of(expired), org) == "OB401"
    renewed = await refresh(client, member["refresh_token"])
    assert session_of(renewed["access_token"]) == sid
    assert await entry(tenant_role, ENTER_SESSION, sid, secret_of(expired), org) == "OB401"
    assert await entry(
        tenant_role, ENTER_SESSION, sid, secret_of(renewed["access_token"]), org
    ) == ("member")
    # Through the gateway the same: the expired token is refused, the new one reads.
    assert (await client.get("/v1/db/items", headers=bearer(expired))).status_code == 401
    fresh = await client.get("/v1/db/items", headers=bearer(renewed["access_token"]))
    assert fresh.status_code == 200


async def test_an_impersonation_id_enters_no_org(
    short_client: Client, stack: LocalStack, tenant_role: asyncpg.Connection
) -> None:
    client = short_client
    operator_email = unique_email("operator")
    assert cli_admin_create(stack, operator_email).returncode == 0
    org_id, people = await org_with_roles(client, ())
    operator = await sign_in(client, operator_email)
    started = await client.post(
        f"/v1/platform/orgs/{org_id}/impersonate",
        headers=bearer(operator["access_token"]),
        json={"reason": "ticket 16"},
    )
    assert started.status_code == 201, started.text
    token = started.json()["access_token"]
    owner_token = (await sign_in(client, people["owner"][0]["email"]))["access_token"]
    logged = await audit_entry(client, org_id, owner_token, "platform.impersonation_started")
    impersonation = uuid.UUID(logged["details"]["impersonation_id"])
    org = uuid.UUID(org_id)
    # What the entry used to take: the impersonation, the admin's session, the org.
    admin_session = str(session_of(operator["access_token"]))
    assert await entry(tenant_role, ENTER_IMPERSONATION, impersonation, admin_session, org) == (
        "OB412"
    )
    attempts = {
        "no secret": None,
        "a made-up secret": secrets.token_urlsafe(32),
        "the admin's own token's secret": secret_of(operator["access_token"]),
    }
    for what, second in attempts.items():
        assert await entry(tenant_role, ENTER_IMPERSONATION, impersonation, second, org) == (
            "OB412"
        ), what
    assert await entry(tenant_role, ENTER_IMPERSONATION, impersonation, secret_of(token), org) == (
        "viewer"
    )
    # Its token expires (before the impersonation does): its secret with it.
    await asyncio.sleep(TOKEN_SECONDS + 1.1)
    assert await entry(tenant_role, ENTER_IMPERSONATION, impersonation, secret_of(token), org) == (
        "OB412"
    )


async def test_refreshes_keep_every_live_token_working(client: Client) -> None:
    """The previous token works until it expires; two refreshes racing with one refresh
    token (the grace window) both get a working token."""
    org_id, people = await org_with_roles(client, ("member",))
    first = await sign_in(client, people["member"][0]["email"], org_id)
    second = await refresh(client, first["refresh_token"])
    racing = await asyncio.gather(*(refresh(client, second["refresh_token"]) for _ in range(3)))
    tokens = [first["access_token"], second["access_token"], *(t["access_token"] for t in racing)]
    assert len({secret_of(t) for t in tokens}) == len(tokens)
    for token in tokens:
        answer = await client.get("/v1/db/items", headers=bearer(token))
        assert answer.status_code == 200, answer.text


async def test_a_session_from_before_secrets_works_after_its_first_refresh(
    client: Client, admin_connection: asyncpg.Connection
) -> None:
    """As the migration leaves a session made before it: no secret. Its token no longer
    enters; its refresh token still works and gives it one."""
    org_id, people = await org_with_roles(client, ("member",))
    member = await sign_in(client, people["member"][0]["email"], org_id)
    await admin_connection.execute(
        "UPDATE orgbase.sessions SET secret_hashes = '{}', secret_expires_at = '{}' WHERE id = $1",
        session_of(member["access_token"]),
    )
    refused = await client.get("/v1/db/items", headers=bearer(member["access_token"]))
    assert refused.status_code == 401
    assert refused.json()["code"] == "session_revoked"
    renewed = await refresh(client, member["refresh_token"])
    answer = await client.get("/v1/db/items", headers=bearer(renewed["access_token"]))
    assert answer.status_code == 200, answer.text


async def test_no_secret_is_written_down(
    client: Client, admin_connection: asyncpg.Connection
) -> None:
    """Neither the audit log nor the session row holds a token's secret (the row holds its
    SHA-256)."""
    org_id, people = await org_with_roles(client, ("member",))
    member = await sign_in(client, people["member"][0]["email"], org_id)
    renewed = await refresh(client, member["refresh_token"])
    for token in (member["access_token"], renewed["access_token"]):
        secret = secret_of(token)
        written = await admin_connection.fetchval(
            "SELECT count(*) FROM orgbase.audit_events e WHERE strpos(e::text, $1) > 0", secret
        )
        assert written == 0
        row = await admin_connection.fetchval(
            "SELECT s::text FROM orgbase.sessions s WHERE id = $1", session_of(token)
        )
        assert secret not in row
        hashed = await admin_connection.fetchval(
            "SELECT orgbase.secret_hash($2) = ANY (secret_hashes) FROM orgbase.sessions"
            " WHERE id = $1",
            session_of(token),
            secret,
        )
        assert hashed is True
