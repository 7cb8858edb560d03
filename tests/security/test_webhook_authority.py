"""A webhook endpoint sends the org's rows with an admin's authority, and stops when its owner
loses it: removed from the org, demoted below admin, account deleted, the API key that
registered it revoked or expired. Before, full rows kept flowing to an endpoint whose
creator had been removed. Observed at a real receiver, through a gateway delivering for
real: the endpoint is disabled in the same transaction (audited, mailed to the org's admins
and owners), nothing more arrives, and an admin in person at aal2 enabling it again owns
it. Deliveries already claimed when the owner goes are released unsent (only a request
already on its way completes)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp, create_app
from tests.support.data import owner_connection
from tests.support.http import (
    PASSWORD,
    add_member,
    admin_at_aal2,
    bearer,
    create_org,
    new_user,
    sign_in,
)
from tests.support.receivers import Answer, Receiver
from tests.support.stack import with_overrides
from tests.support.waiting import eventually

Client = AsyncTestClient[OrgbaseApp]
DELIVERING = {
    "enabled": True,
    "allowed_hosts": ("127.0.0.1",),
    "poll_seconds": 0.05,
    "timeout_seconds": 5.0,
    "retry_schedule": (0.3, 0.6),
    "breaker_failures": 1000,
    "max_in_flight": 1,
    "owner_check_seconds": 0.5,
}
QUIET_SECONDS = 1.5
"""How long "nothing more arrives" is watched (the gateway polls every 0.05 s)."""


@pytest.fixture(scope="module")
async def client(settings: Settings) -> AsyncIterator[Client]:
    configured = with_overrides(settings, webhooks=DELIVERING)
    async with AsyncTestClient(app=create_app(configured)) as test_client:
        yield test_client


@dataclass
class Org:
    id: str
    owner: dict[str, str]
    """The owner's headers, at aal2."""
    admin: dict[str, Any]
    """The admin (user) and their tokens in the org, at aal2 (``headers``)."""


async def org_with_admin(client: Client) -> Org:
    owner, owner_tokens = await new_user(client)
    org_id = await create_org(client, owner_tokens, "hooks")
    admin, _ = await new_user(client)
    await add_member(client, owner_tokens, org_id, admin, "admin")
    strong_owner = await admin_at_aal2(client, await sign_in(client, owner["email"], org_id))
    strong_admin = await admin_at_aal2(client, await sign_in(client, admin["email"], org_id))
    return Org(
        org_id,
        bearer(strong_owner["access_token"]),
        {"user": admin, "headers": bearer(strong_admin["access_token"])},
    )


async def register(client: Client, org: Org, headers: dict[str, str], url: str) -> str:
    made = await client.post(
        f"/v1/orgs/{org.id}/webhooks", headers=headers, json={"url": url, "events": ["db.*"]}
    )
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


async def insert(client: Client, headers: dict[str, str], *titles: str) -> None:
    made = await client.post("/v1/db/items", headers=headers, json=[{"title": t} for t in titles])
    assert made.status_code == 201, made.text


async def endpoint(client: Client, org: Org, endpoint_id: str) -> dict[str, Any]:
    read = await client.get(f"/v1/orgs/{org.id}/webhooks/{endpoint_id}", headers=org.owner)
    assert read.status_code == 200, read.text
    found: dict[str, Any] = read.json()
    return found


async def assert_stopped(
    client: Client, settings: Settings, org: Org, endpoint_id: str, receiver: Receiver, why: str
) -> None:
    """Disabled at once, with the reason, an audit record and a mail to each admin and
    owner; a change made now reaches nobody."""
    state = await endpoint(client, org, endpoint_id)
    assert state["enabled"] is False
    assert why in state["disabled_reason"]
    audit = await client.get(
        f"/v1/orgs/{org.id}/audit", headers=org.owner, params={"action": "webhook.disabled"}
    )
    [record] = audit.json()["items"]
    assert (record["row_key"], record["actor_kind"]) == ({"id": endpoint_id}, "system")
    async with owner_connection(settings) as connection:
        mailed = await connection.fetch(
            "SELECT recipient, body FROM orgbase.outbox"
            " WHERE org_id = $1 AND kind = 'webhook_disabled'",
            uuid.UUID(org.id),
        )
        admins = await connection.fetch(
            "SELECT u.email FROM orgbase.memberships m JOIN orgbase.users u ON u.id = m.user_id"
            " WHERE m.org_id = $1 AND m.role IN ('owner', 'admin')",
            uuid.UUID(org.id),
        )
    assert sorted(m["recipient"] for m in mailed) == sorted(a["email"] for a in admins)
    assert all(endpoint_id in m["body"] for m in mailed)
    before = len(receiver.received)
    await insert(client, org.owner, "after the owner went")
    await asyncio.sleep(QUIET_SECONDS)
    assert len(receiver.received) == before, "a stopped endpoint received a row"


async def take_over(client: Client, org: Org, endpoint_id: str, receiver: Receiver) -> None:
    """An admin in person at aal2 enables it again: they own it, and rows flow again."""
    enabled = await client.patch(
        f"/v1/orgs/{org.id}/webhooks/{endpoint_id}", headers=org.owner, json={"enabled": True}
    )
    assert enabled.status_code == 200, enabled.text
    owner_id = (await client.get("/v1/auth/user", headers=org.owner)).json()["id"]
    assert enabled.json()["owner_user_id"] == owner_id
    before = len(receiver.received)
    await insert(client, org.owner, "after the take-over")
    await receiver.wait_for(before + 1)


async def test_removing_the_creator_stops_the_endpoint(client: Client, settings: Settings) -> None:
    org = await org_with_admin(client)
    async with Receiver(Answer()) as receiver:
        endpoint_id = await register(client, org, org.admin["headers"], receiver.url)
        assert (await endpoint(client, org, endpoint_id))["owner_user_id"] == org.admin["user"][
            "id"
        ]
        await insert(client, org.owner, "while the creator is an admin")
        await receiver.wait_for(1)
        removed = await client.delete(
            f"/v1/orgs/{org.id}/members/{org.admin['user']['id']}", headers=org.owner
        )
        assert removed.status_code == 204, removed.text
        await assert_stopped(client, settings, org, endpoint_id, receiver, "left the org")
        await take_over(client, org, endpoint_id, receiver)


async def test_demoting_the_creator_stops_the_endpoint(client: Client, settings: Settings) -> None:
    org = await org_with_admin(client)
    async with Receiver(Answer()) as receiver:
        endpoint_id = await register(client, org, org.admin["headers"], receiver.url)
        demoted = await client.patch(
            f"/v1/orgs/{org.id}/members/{org.admin['user']['id']}",
            headers=org.owner,
            json={"role": "member"},
        )
        assert demoted.status_code == 200, demoted.text
        await assert_stopped(client, settings, org, endpoint_id, receiver, "no longer an admin")
        # Made admin again, they do not get it back by themselves.
        promoted = await client.patch(
            f"/v1/orgs/{org.id}/members/{org.admin['user']['id']}",
            headers=org.owner,
            json={"role": "admin"},
        )
        assert promoted.status_code == 200
        assert (await endpoint(client, org, endpoint_id))["enabled"] is False


async def test_deleting_the_creators_account_stops_the_endpoint(
    client: Client, settings: Settings
) -> None:
    org = await org_with_admin(client)
    async with Receiver(Answer()) as receiver:
        endpoint_id = await register(client, org, org.admin["headers"], receiver.url)
        deleted = await client.request(
            "DELETE", "/v1/auth/user", headers=org.admin["headers"], json={"password": PASSWORD}
        )
        assert deleted.status_code in (200, 204), deleted.text
        await assert_stopped(client, settings, org, endpoint_id, receiver, "deleted")


async def _key_owned_endpoint(
    client: Client, settings: Settings, org: Org, url: str, expires: bool = False
) -> tuple[str, str]:
    """An endpoint an admin API key registered before keys could no longer (made as the
    old code made it, then owned by the key as the migration owns it): (endpoint, key)."""
    key = await client.post(
        f"/v1/orgs/{org.id}/api-keys", headers=org.owner, json={"name": "ci", "role": "admin"}
    )
    assert key.status_code == 201, key.text
    key_id = key.json()["id"]
    async with owner_connection(settings) as connection:
        endpoint_id = await connection.fetchval(
            "INSERT INTO orgbase.webhook_endpoints (org_id, url, events, secret, owner_key_id)"
            " VALUES ($1, $2, '{db.*}', 'whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', $3) RETURNING id",
            uuid.UUID(org.id),
            url,
            uuid.UUID(key_id),
        )
        if expires:
            await connection.execute(
                "UPDATE orgbase.api_keys SET expires_at = now() + interval '2 seconds'"
                " WHERE id = $1",
                uuid.UUID(key_id),
            )
    return str(endpoint_id), key_id


async def test_revoking_the_key_that_made_it_stops_the_endpoint(
    client: Client, settings: Settings
) -> None:
    org = await org_with_admin(client)
    async with Receiver(Answer()) as receiver:
        endpoint_id, key_id = await _key_owned_endpoint(client, settings, org, receiver.url)
        await insert(client, org.owner, "while the key lives")
        await receiver.wait_for(1)
        revoked = await client.delete(f"/v1/orgs/{org.id}/api-keys/{key_id}", headers=org.owner)
        assert revoked.status_code == 204, revoked.text
        await assert_stopped(client, settings, org, endpoint_id, receiver, "API key")
        await take_over(client, org, endpoint_id, receiver)


async def test_an_expired_key_sends_nothing_and_is_disabled(
    client: Client, settings: Settings
) -> None:
    """No event says a key expired: the claim refuses its deliveries, and the dispatcher's
    check disables the endpoint."""
    org = await org_with_admin(client)
    async with Receiver(Answer()) as receiver:
        endpoint_id, _ = await _key_owned_endpoint(
            client, settings, org, receiver.url, expires=True
        )
        await asyncio.sleep(2.5)
        await insert(client, org.owner, "after the key expired")

        async def disabled() -> bool:
            return (await endpoint(client, org, endpoint_id))["enabled"] is False

        await eventually(disabled, within=5, what="the endpoint disabled")
        await assert_stopped(client, settings, org, endpoint_id, receiver, "authority")
        assert receiver.received == []


async def test_an_owner_demoted_around_the_triggers_gets_nothing(
    client: Client, settings: Settings
) -> None:
    """Belt and braces: a membership changed with triggers off (as a restore or a hand edit
    might): the dispatcher still claims nothing for the endpoint, then disables it."""
    org = await org_with_admin(client)
    async with Receiver(Answer()) as receiver:
        endpoint_id = await register(client, org, org.admin["headers"], receiver.url)
        async with owner_connection(settings) as connection, connection.transaction():
            await connection.execute("SET LOCAL session_replication_role = replica")
            await connection.execute(
                "UPDATE orgbase.memberships SET role = 'viewer' WHERE org_id = $1 AND user_id = $2",
                uuid.UUID(org.id),
                uuid.UUID(org.admin["user"]["id"]),
            )
        await insert(client, org.owner, "after a demotion nobody announced")

        async def disabled() -> bool:
            return (await endpoint(client, org, endpoint_id))["enabled"] is False

        await eventually(disabled, within=5, what="the endpoint disabled")
        await asyncio.sleep(QUIET_SECONDS)
        assert receiver.received == []


async def test_deliveries_claimed_before_the_removal_are_not_sent(
    client: Client, settings: Settings
) -> None:
    """Three rows in one write: one claim takes their three deliveries; one at a time goes
    out (max_in_flight 1) to a slow receiver. The creator is removed while the first is on
    its way: it completes, the two still waiting are released unsent and stay pending."""
    org = await org_with_admin(client)
    async with Receiver(Answer(delay=1.5)) as receiver:
        endpoint_id = await register(client, org, org.admin["headers"], receiver.url)
        await insert(client, org.owner, "one", "two", "three")
        await receiver.wait_for(1)
        removed = await client.delete(
            f"/v1/orgs/{org.id}/members/{org.admin['user']['id']}", headers=org.owner
        )
        assert removed.status_code == 204
        await asyncio.sleep(1.5 + 2 * QUIET_SECONDS)
        assert len(receiver.received) == 1
    log = await client.get(
        f"/v1/orgs/{org.id}/webhooks/{endpoint_id}/deliveries", headers=org.owner
    )
    statuses = sorted(d["status"] for d in log.json()["items"])
    assert statuses == ["delivered", "pending", "pending"]
