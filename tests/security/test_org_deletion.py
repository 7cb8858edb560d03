"""Finding 1: an API key outlived its org. Owner makes org C and an admin key, uses it,
deletes C (204); afterwards the key read and wrote rows, cache keys and documents of the
deleted org, listed its members, and adding one was a 500 (a foreign key violation).

Deleting an org must end every credential scoped to it, at once and on every replica, and
leave nothing of it in PostgreSQL, MongoDB or Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from devstack import LocalStack
from orgbase.core import keys
from orgbase.core.cache import TOMBSTONE
from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp
from orgbase.platform.gateway import build_gateway
from tests.support.data import owner_connection
from tests.support.http import bearer, create_org, join, new_user, sign_in
from tests.support.stack import TEST_REDIS_DB

Client = AsyncTestClient[OrgbaseApp]


@pytest.fixture
async def redis(stack: LocalStack) -> AsyncIterator[Redis]:
    port = stack.redis.primary_port()
    assert port is not None
    client = Redis(
        host="127.0.0.1", port=port, password=stack.secrets["redis"], db=int(TEST_REDIS_DB)
    )
    yield client
    await client.aclose()


async def doomed_org(client: Client) -> dict[str, Any]:
    """Org C with data everywhere: a row, a cache key, a document, settings, a member, an
    invitation, an admin key used once; the owner's token is scoped to C."""
    owner, first = await new_user(client)
    org_id = await create_org(client, first, "doomed")
    owner_headers = bearer((await sign_in(client, owner["email"], org_id))["access_token"])
    member, _ = await new_user(client)
    await join(client, owner_headers, org_id, member["email"], "member")
    for path, body in (
        (f"/v1/orgs/{org_id}/invitations", {"email": "guest@doomed.test"}),
        ("/v1/db/items", {"title": "doomed row"}),
        ("/v1/docs/notes", {"text": "doomed document"}),
    ):
        response = await client.post(path, headers=owner_headers, json=body)
        assert response.status_code == 201, response.text
    assert (
        await client.put("/v1/kv/doomed", headers=owner_headers, json={"value": 1})
    ).status_code == 200
    key = await client.post(
        f"/v1/orgs/{org_id}/api-keys", headers=owner_headers, json={"name": "k", "role": "admin"}
    )
    assert key.status_code == 201
    apikey = {"apikey": key.json()["key"]}
    for use in (
        client.get("/v1/db/items", headers=apikey),
        client.get("/v1/kv/doomed", headers=apikey),
        client.get(f"/v1/orgs/{org_id}/members", headers=apikey),
    ):
        assert (await use).status_code == 200  # the key is cached now
    return {"org": org_id, "owner": owner_headers, "apikey": apikey, "key": key.json()}


async def delete(client: Client, org: dict[str, Any]) -> None:
    response = await client.delete(f"/v1/orgs/{org['org']}", headers=org["owner"])
    assert response.status_code == 204, response.text


async def test_an_api_key_ends_with_its_org(client: Client) -> None:
    org = await doomed_org(client)
    await delete(client, org)
    org_id, apikey = org["org"], org["apikey"]
    as_bearer = {"Authorization": f"Bearer {org['key']['key']}"}
    for headers in (apikey, as_bearer):
        attempts = [
            client.get("/v1/db/items", headers=headers),
            client.post("/v1/db/items", headers=headers, json={"title": "ghost"}),
            client.put("/v1/kv/x", headers=headers, json={"value": 1}),
            client.post("/v1/docs/x", headers=headers, json={"a": 1}),
            client.get(f"/v1/orgs/{org_id}/members", headers=headers),
            client.post(
                f"/v1/orgs/{org_id}/members",
                headers=headers,
                json={"email": "someone@example.test", "role": "member"},
            ),
        ]
        for attempt in attempts:
            response = await attempt
            assert (response.status_code, response.json()["code"]) == (401, "api_key_invalid")


async def test_every_credential_scoped_to_the_org_ends(client: Client) -> None:
    org = await doomed_org(client)
    await delete(client, org)
    # The owner's token still names C: nothing of C answers any more.
    for attempt in (
        client.get("/v1/db/items", headers=org["owner"]),
        client.get("/v1/kv/doomed", headers=org["owner"]),
        client.get("/v1/docs/notes", headers=org["owner"]),
        client.get(f"/v1/orgs/{org['org']}", headers=org["owner"]),
    ):
        response = await attempt
        assert (response.status_code, response.json()["code"]) == (404, "org_not_found")


async def test_the_key_stays_refused_when_its_cache_entry_expires(
    client: Client, redis: Redis
) -> None:
    """The tombstone gone (expired), the key is looked up again: never found for a gone org."""
    org = await doomed_org(client)
    await delete(client, org)
    cached = [k async for k in redis.scan_iter(match="akey:*") if await redis.get(k) == TOMBSTONE]
    assert cached, "deleting the org should tombstone its key in the cache"
    await redis.delete(*cached)
    response = await client.get("/v1/kv/doomed", headers=org["apikey"])
    assert (response.status_code, response.json()["code"]) == (401, "api_key_invalid")


async def test_nothing_of_the_org_is_left(settings: Settings, client: Client, redis: Redis) -> None:
    org = await doomed_org(client)
    org_id = uuid.UUID(org["org"])
    await delete(client, org)
    async with owner_connection(settings) as connection:
        left = {
            table: await connection.fetchval(
                f"SELECT count(*) FROM {table} WHERE org_id = $1",
                org_id,
            )
            for table in (
                "api.items",
                "orgbase.memberships",
                "orgbase.api_keys",
                "orgbase.invitations",
                "orgbase.org_settings",
                "orgbase.org_settings_history",
                "orgbase.impersonations",
                "orgbase.refresh_tokens",
                "orgbase.outbox",
                "orgbase.webhook_endpoints",
                "orgbase.webhook_deliveries",
            )
        }
        assert left == dict.fromkeys(left, 0)
        assert (
            await connection.fetchval("SELECT count(*) FROM orgbase.orgs WHERE id = $1", org_id)
            == 0
        )
        # Of its audit trail (which held its rows' values) one record stays: the deletion.
        trail = await connection.fetch(
            "SELECT action FROM orgbase.audit_events WHERE org_id = $1", org_id
        )
        assert [r["action"] for r in trail] == ["org.deleted"]
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo.url)
    try:
        names = await mongo[settings.mongo.database].list_collection_names()
        assert not [n for n in names if org_id.hex in n]
    finally:
        await mongo.close()
    for pattern in (
        keys.org_pattern(org_id),
        keys.kv_stats_pattern(str(org_id)),
        keys.hot_keys_pattern(str(org_id)),
        keys.slo_pattern(str(org_id)),
    ):
        assert [k async for k in redis.scan_iter(match=pattern)] == [], pattern


async def test_a_member_added_while_the_org_is_deleted_is_a_404_not_a_500(
    settings: Settings, client: Client
) -> None:
    """The race of the finding, without the cached key: the org closes between the request's
    authentication and its write."""
    org = await doomed_org(client)
    someone, _ = await new_user(client)
    connection = await asyncpg.connect(settings.database.migration_url)
    try:
        await connection.execute(
            "UPDATE orgbase.orgs SET deleted_at = now() WHERE id = $1", uuid.UUID(org["org"])
        )
        # The membership cache still says the owner is a member: the write must notice.
        response = await client.post(
            f"/v1/orgs/{org['org']}/members",
            headers=org["owner"],
            json={"email": someone["email"], "role": "member"},
        )
        assert response.status_code == 404, response.text
        assert response.json()["code"] == "org_not_found"
    finally:
        await connection.execute(
            "UPDATE orgbase.orgs SET deleted_at = NULL WHERE id = $1", uuid.UUID(org["org"])
        )
        await connection.close()


async def test_a_deletion_cut_short_is_finished_at_the_next_start(
    settings: Settings, client: Client
) -> None:
    """A gateway died after closing the org: the next one to start finishes the job."""
    org = await doomed_org(client)
    org_id = uuid.UUID(org["org"])
    async with owner_connection(settings) as connection:
        await connection.execute(
            "UPDATE orgbase.orgs SET deleted_at = now() - interval '1 hour' WHERE id = $1", org_id
        )
        gateway = build_gateway(settings)  # what the next gateway to start runs
        await gateway.resources.open()
        try:
            assert await gateway.tenancy.orgs.resume_deletions() >= 1
        finally:
            await gateway.resources.close()
        assert (
            await connection.fetchval("SELECT count(*) FROM orgbase.orgs WHERE id = $1", org_id)
            == 0
        )
        assert (
            await connection.fetchval("SELECT count(*) FROM api.items WHERE org_id = $1", org_id)
            == 0
        )
