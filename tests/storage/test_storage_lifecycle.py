"""Storage inside an org's life: its limits (storage_bytes, max_object_bytes; lowering
refuses growth and deletes nothing), its usage, its audit trail and webhook outbox, its
realtime channel, and its deletion (files and rows go)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from orgbase.core.settings import Settings
from tests.storage.conftest import Client, S, make_bucket, org_person, put_object
from tests.support.data import make_platform_admin
from tests.support.http import bearer, new_user, next_sse_data
from tests.support.waiting import eventually


@pytest.fixture(scope="module")
async def platform_admin(client: Client, settings: Settings) -> dict[str, str]:
    user, tokens = await new_user(client)
    await make_platform_admin(settings, user["id"])
    return bearer(tokens["access_token"])


async def set_limits(client: Client, admin: dict[str, str], org: str, **limits: int) -> None:
    answer = await client.put(f"/v1/platform/orgs/{org}/limits", headers=admin, json=limits)
    assert answer.status_code == 200, answer.text


async def _quota_applies(client: Client, owner: dict[str, Any], bucket: str, status: int) -> bool:
    probe = await put_object(client, owner["headers"], bucket, f"p-{uuid.uuid4().hex}", b"x" * 700)
    if probe.status_code == 200:
        await client.request(
            "DELETE",
            f"{S}/object/{bucket}",
            headers=owner["headers"],
            json={"prefixes": [probe.json()["Key"].split("/", 1)[1]]},
        )
    return probe.status_code == status


async def test_quota_refuses_growth_and_deletes_nothing(
    client: Client, platform_admin: dict[str, str]
) -> None:
    owner = await org_person(client)
    h, org = owner["headers"], owner["org"]
    bucket = await make_bucket(client, h)
    await set_limits(client, platform_admin, org, storage_bytes=1000, max_object_bytes=800)
    assert (await put_object(client, h, bucket, "a", b"x" * 600)).status_code == 200
    await eventually(lambda: _quota_applies(client, owner, bucket, 409), what="quota")
    full = await put_object(client, h, bucket, "b", b"x" * 600)
    assert full.status_code == 409
    assert full.json()["code"] == "storage_quota_exceeded"
    too_big = await put_object(client, h, bucket, "c", b"x" * 801)
    assert too_big.status_code == 413
    assert too_big.json()["details"]["which"] == "max_object_bytes"
    # Lowered below what is stored: growth is refused, shrinking and deleting still work.
    await set_limits(client, platform_admin, org, storage_bytes=100)
    await eventually(lambda: _quota_applies(client, owner, bucket, 409), what="lower quota")
    shrink = await put_object(client, h, bucket, "a", b"x" * 300, **{"x-upsert": "true"})
    assert shrink.status_code == 200
    kept = await client.get(f"{S}/object/{bucket}/a", headers=h)
    assert kept.content == b"x" * 300
    grow = await put_object(client, h, bucket, "a", b"x" * 400, **{"x-upsert": "true"})
    assert grow.status_code == 409
    assert (await client.get(f"{S}/object/{bucket}/a", headers=h)).content == b"x" * 300


async def test_usage_counts_bytes_stored_and_moved(client: Client) -> None:
    owner = await org_person(client)
    h, org = owner["headers"], owner["org"]
    bucket = await make_bucket(client, h, public=True)
    await put_object(client, h, bucket, "u", b"y" * 5000)
    await client.get(f"{S}/object/{bucket}/u", headers=h)
    # A public link (no credential) counts against the org too, once the object is found.
    assert (await client.get(f"{S}/org/{org}/object/public/{bucket}/u")).status_code == 200
    missing = await client.get(f"{S}/org/{uuid.uuid4()}/object/public/{bucket}/u")
    assert missing.status_code == 404
    answer = await client.get(f"/v1/orgs/{org}/usage?granularity=day", headers=h)
    usage = answer.json()["usage"][0]
    assert usage["storage_bytes_in"] == 5000
    assert usage["storage_bytes_out"] == 10000
    assert usage["storage_bytes"] == 5000
    assert usage["requests_storage"] >= 4


async def test_changes_are_audited_and_reach_the_webhook_outbox(
    client: Client, admin_connection: asyncpg.Connection
) -> None:
    owner = await org_person(client)
    h, org = owner["headers"], owner["org"]
    await admin_connection.execute(
        "INSERT INTO orgbase.webhook_endpoints (org_id, url, events, secret, owner_user_id)"
        " VALUES ($1, 'https://hooks.example.test/', '{storage.*}', 'whsec_x', $2)",
        uuid.UUID(org),
        uuid.UUID(owner["user"]["id"]),
    )
    bucket = await make_bucket(client, h)
    await put_object(client, h, bucket, "w.txt", b"hook", "text/plain")
    await put_object(client, h, bucket, "w.txt", b"hook2", "text/plain", **{"x-upsert": "true"})
    await client.request("DELETE", f"{S}/object/{bucket}", headers=h, json={"prefixes": ["w.txt"]})
    audit = (await client.get(f"/v1/orgs/{org}/audit", headers=h)).json()
    actions = [event["action"] for event in audit["items"]]
    for action in (
        "storage.bucket.created",
        "storage.object.created",
        "storage.object.updated",
        "storage.object.deleted",
    ):
        assert action in actions
    rows = await admin_connection.fetch(
        "SELECT event_type, payload FROM orgbase.webhook_deliveries WHERE org_id = $1 ORDER BY id",
        uuid.UUID(org),
    )
    assert [r["event_type"] for r in rows] == [
        "storage.bucket.created",
        "storage.object.created",
        "storage.object.updated",
        "storage.object.deleted",
    ]


async def test_realtime_hears_object_changes(client: Client, live_server: str) -> None:
    owner = await org_person(client)
    h = owner["headers"]
    bucket = await make_bucket(client, h)
    async with (
        httpx.AsyncClient(base_url=live_server, timeout=10) as http,
        http.stream(
            "GET", "/v1/realtime/sse", params={"channels": f"storage:{bucket}"}, headers=h
        ) as stream,
    ):
        lines = stream.aiter_lines()
        assert (await next_sse_data(lines))["type"] == "subscribed"
        await http.post(
            f"{S}/object/{bucket}/rt.txt",
            headers={**h, "content-type": "text/plain"},
            content=b"rt",
        )
        message = await next_sse_data(lines)
    assert message["channel"] == f"storage:{bucket}"
    assert message["event"] == "created"
    assert message["payload"]["name"] == "rt.txt"
    refused = await client.post(
        f"/v1/realtime/storage:{bucket}", headers=h, json={"event": "fake", "payload": 1}
    )
    assert refused.status_code == 400


async def test_org_deletion_removes_its_files(client: Client, settings: Settings) -> None:
    owner = await org_person(client)
    h, org = owner["headers"], owner["org"]
    bucket = await make_bucket(client, h)
    await put_object(client, h, bucket, "gone.bin", b"z" * 1000)
    folder = Path(settings.storage.root) / "objects" / org
    assert any(folder.rglob("*"))
    deleted = await client.delete(f"/v1/orgs/{org}", headers=h)
    assert deleted.status_code == 204, deleted.text
    await eventually(lambda: not folder.exists(), what="the org's blobs removed")

    async def rows() -> int:
        connection = await asyncpg.connect(settings.database.migration_url)
        try:
            return int(
                await connection.fetchval(
                    "SELECT (SELECT count(*) FROM storage.objects WHERE org_id = $1)"
                    " + (SELECT count(*) FROM storage.buckets WHERE org_id = $1)",
                    uuid.UUID(org),
                )
            )
        finally:
            await connection.close()

    assert await rows() == 0
