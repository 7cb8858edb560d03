"""Webhooks end to end: real receivers on loopback, real gateways, the outbox in PostgreSQL,
and signatures checked by `standardwebhooks` (PyPI), a verifier nobody here wrote."""

from __future__ import annotations

import asyncio
import datetime
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from litestar.testing import AsyncTestClient
from standardwebhooks.webhooks import Webhook

from orgbase.auth.directory import AccountDirectory
from orgbase.core.destinations import DestinationPolicy
from orgbase.core.resources import Resources
from orgbase.core.settings import Settings
from orgbase.core.tasks import TaskSet
from orgbase.platform.app import OrgbaseApp, create_app
from orgbase.tenants.mail_queue import MailQueue
from orgbase.webhooks.dispatcher import WebhookDispatcher
from tests.support.http import (
    add_member,
    admin_at_aal2,
    bearer,
    member_tokens,
    new_user,
    sign_in,
)
from tests.support.receivers import Answer, Close, FailTimes, Hang, Huge, Receiver, Redirect
from tests.support.stack import with_overrides
from tests.support.waiting import eventually

Client = AsyncTestClient[OrgbaseApp]
FAST = {
    "enabled": True,
    "allowed_hosts": ("127.0.0.1",),
    "retry_schedule": (0.3, 0.6),
    "poll_seconds": 0.05,
    "timeout_seconds": 1.0,
    "breaker_failures": 1000,
    # One at a time per endpoint: deliveries then arrive in the order they were made.
    "max_in_flight": 1,
}


@pytest.fixture(scope="module")
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_app(with_overrides(settings, webhooks=FAST))) as c:
        yield c


async def owner_of_new_org(client: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    """A new org and its owner's headers, at aal2 (endpoints are security settings)."""
    org_id, tokens = await member_tokens(client, ())
    return org_id, bearer(
        (await admin_at_aal2(client, {"access_token": tokens["owner"]}))["access_token"]
    )


async def register(
    client: httpx.AsyncClient, org_id: str, headers: dict[str, str], url: str, events: list[str]
) -> dict[str, Any]:
    response = await client.post(
        f"/v1/orgs/{org_id}/webhooks", headers=headers, json={"url": url, "events": events}
    )
    assert response.status_code == 201, response.text
    endpoint: dict[str, Any] = response.json()
    assert endpoint["secret"].startswith("whsec_")
    return endpoint


async def insert_item(client: httpx.AsyncClient, headers: dict[str, str], title: str) -> None:
    response = await client.post("/v1/db/items", headers=headers, json={"title": title})
    assert response.status_code == 201, response.text


async def deliveries(
    client: httpx.AsyncClient, org_id: str, headers: dict[str, str], endpoint_id: str, **params: Any
) -> list[dict[str, Any]]:
    response = await client.get(
        f"/v1/orgs/{org_id}/webhooks/{endpoint_id}/deliveries", headers=headers, params=params
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def verified(secret: str, request: Any) -> dict[str, Any]:
    payload: dict[str, Any] = Webhook(secret).verify(request.body, request.headers)
    return payload


async def test_a_row_insert_reaches_the_receiver_signed(client: Client) -> None:
    org_id, headers = await owner_of_new_org(client)
    async with Receiver(Answer()) as receiver:
        endpoint = await register(client, org_id, headers, receiver.url, ["db.items.*"])
        await insert_item(client, headers, "first")
        (request,) = await receiver.wait_for(1)
    payload = verified(endpoint["secret"], request)
    assert payload["type"] == "db.items.insert"
    assert payload["data"]["org_id"] == org_id
    assert payload["data"]["table"] == "items"
    assert payload["data"]["row"]["title"] == "first"
    assert request.headers["webhook-id"].startswith("msg_")
    assert request.headers["content-type"] == "application/json"
    # Anyone else's secret does not verify it.
    other = await register(client, org_id, headers, "http://127.0.0.1:9/none", ["member.*"])
    with pytest.raises(Exception, match=r"(?i)signature"):
        verified(other["secret"], request)

    async def logged_as_delivered() -> bool:
        log = await deliveries(client, org_id, headers, endpoint["id"])
        return len(log) == 1 and log[0]["status"] == "delivered"

    await eventually(logged_as_delivered, within=5, what="the delivery logged")
    (entry,) = await deliveries(client, org_id, headers, endpoint["id"])
    assert (entry["attempts"], entry["last_status"], entry["event_type"]) == (
        1,
        200,
        "db.items.insert",
    )
    assert entry["message_id"] == request.headers["webhook-id"]


async def test_a_rolled_back_change_sends_nothing(client: Client, settings: Settings) -> None:
    """The outbox row is written by the change's own transaction: no commit, no event."""
    org_id, headers = await owner_of_new_org(client)
    async with Receiver(Answer()) as receiver:
        endpoint = await register(client, org_id, headers, receiver.url, ["db.items.*"])
        refused = await client.post("/v1/db/items", headers=headers, json={"title": None})
        assert refused.status_code == 400
        await insert_item(client, headers, "after")
        (request,) = await receiver.wait_for(1)
    assert verified(endpoint["secret"], request)["data"]["row"]["title"] == "after"
    # The outbox is written with the change: once the request answered, it is final.
    assert len(await deliveries(client, org_id, headers, endpoint["id"])) == 1


async def test_failures_are_retried_on_schedule_with_the_same_id(client: Client) -> None:
    org_id, headers = await owner_of_new_org(client)
    async with Receiver(FailTimes(2, status=503)) as receiver:
        endpoint = await register(client, org_id, headers, receiver.url, ["db.items.insert"])
        await insert_item(client, headers, "retried")
        first, second, third = await receiver.wait_for(3, within=10)
    assert {r.headers["webhook-id"] for r in (first, second, third)} == {
        first.headers["webhook-id"]
    }
    # The schedule is 0.3 s then 0.6 s, each +-10 %.
    assert second.at - first.at >= 0.25
    assert third.at - second.at >= 0.5

    async def delivered_on_the_third() -> bool:
        (entry,) = await deliveries(client, org_id, headers, endpoint["id"])
        return bool(entry["status"] == "delivered" and entry["attempts"] == 3)

    await eventually(delivered_on_the_third, within=5, what="delivered after two failures")


async def test_a_dead_receiver_is_given_up_and_its_endpoint_disabled(
    client: Client, settings: Settings
) -> None:
    org_id, headers = await owner_of_new_org(client)
    async with Receiver(Answer(status=500)) as receiver:
        endpoint = await register(client, org_id, headers, receiver.url, ["db.items.insert"])
        await insert_item(client, headers, "lost cause")
        await receiver.wait_for(3, within=10)  # the first try and the two retries

        async def disabled() -> bool:
            response = await client.get(
                f"/v1/orgs/{org_id}/webhooks/{endpoint['id']}", headers=headers
            )
            return response.json()["enabled"] is False

        await eventually(disabled, within=5, what="the endpoint disabled")
        (entry,) = await deliveries(client, org_id, headers, endpoint["id"])
        assert (entry["status"], entry["attempts"], entry["last_status"]) == ("failed", 3, 500)
        # Nothing more goes to a disabled endpoint, and the org's admins are told.
        await insert_item(client, headers, "not sent")
        assert len(await deliveries(client, org_id, headers, endpoint["id"])) == 1
        assert len(receiver.received) == 3
    connection = await asyncpg.connect(settings.database.migration_url)
    try:
        audited = await connection.fetchval(
            "SELECT count(*) FROM orgbase.audit_events"
            " WHERE org_id = $1 AND action = 'webhook.disabled'",
            org_id,
        )
        mailed = await connection.fetchval(
            "SELECT count(*) FROM orgbase.outbox WHERE org_id = $1 AND kind = 'webhook_disabled'",
            org_id,
        )
    finally:
        await connection.close()
    assert (audited, mailed) == (1, 1)


async def test_retry_and_replay(client: Client) -> None:
    org_id, headers = await owner_of_new_org(client)
    async with Receiver(Answer()) as receiver:
        endpoint = await register(client, org_id, headers, receiver.url, ["db.items.*"])
        since = datetime.datetime.now(datetime.UTC).isoformat()
        for title in ("one", "two", "three"):
            await insert_item(client, headers, title)
        await receiver.wait_for(3)
        replayed = await client.post(
            f"/v1/orgs/{org_id}/webhooks/{endpoint['id']}/replay",
            headers=headers,
            json={"since": since},
        )
        assert (replayed.status_code, replayed.json()) == (202, {"requeued": 3})
        received = await receiver.wait_for(6)
        titles = [verified(endpoint["secret"], r)["data"]["row"]["title"] for r in received]
        assert titles == ["one", "two", "three"] * 2, "replayed in their original order"
        newest = (await deliveries(client, org_id, headers, endpoint["id"]))[0]
        again = await client.post(
            f"/v1/orgs/{org_id}/webhooks/{endpoint['id']}/deliveries/{newest['id']}/retry",
            headers=headers,
        )
        assert again.status_code == 202, again.text
        seventh = (await receiver.wait_for(7))[6]
        assert seventh.headers["webhook-id"] == newest["message_id"]
        missing = await client.post(
            f"/v1/orgs/{org_id}/webhooks/{endpoint['id']}/deliveries/999999999/retry",
            headers=headers,
        )
        assert (missing.status_code, missing.json()["code"]) == (404, "delivery_not_found")


async def test_the_log_pages_with_a_cursor(client: Client) -> None:
    org_id, headers = await owner_of_new_org(client)
    async with Receiver(Answer()) as receiver:
        endpoint = await register(client, org_id, headers, receiver.url, ["db.items.*"])
        for n in range(5):
            await insert_item(client, headers, f"item {n}")
        await receiver.wait_for(5)
    first = await deliveries(client, org_id, headers, endpoint["id"], limit=2)
    page = await client.get(
        f"/v1/orgs/{org_id}/webhooks/{endpoint['id']}/deliveries",
        headers=headers,
        params={"limit": 2},
    )
    cursor = page.json()["next_cursor"]
    second = await deliveries(client, org_id, headers, endpoint["id"], limit=2, before=cursor)
    ids = [d["id"] for d in first + second]
    assert ids == sorted(ids, reverse=True)
    assert len(set(ids)) == 4


async def test_a_rotated_secret_signs_alongside_the_new_one(client: Client) -> None:
    org_id, headers = await owner_of_new_org(client)
    async with Receiver(Answer()) as receiver:
        endpoint = await register(client, org_id, headers, receiver.url, ["db.items.*"])
        rotated = await client.post(
            f"/v1/orgs/{org_id}/webhooks/{endpoint['id']}/rotate-secret", headers=headers
        )
        assert rotated.status_code == 200, rotated.text
        new_secret = rotated.json()["secret"]
        assert new_secret != endpoint["secret"]
        await insert_item(client, headers, "rotated")
        (request,) = await receiver.wait_for(1)
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    for secret in (endpoint["secret"], new_secret):
        assert verified(secret, request)["data"]["row"]["title"] == "rotated"


async def test_members_settings_keys_and_tests_are_events(client: Client) -> None:
    owner, owner_tokens = await new_user(client)
    created = await client.post(
        "/v1/orgs", headers=bearer(owner_tokens["access_token"]), json={"name": "events"}
    )
    org_id = created.json()["id"]
    headers = bearer(
        (await admin_at_aal2(client, await sign_in(client, owner["email"], org_id)))["access_token"]
    )
    async with Receiver(Answer()) as receiver:
        endpoint = await register(client, org_id, headers, receiver.url, ["*"])
        newcomer, _ = await new_user(client)
        await add_member(client, owner_tokens, org_id, newcomer, "member")
        put = await client.put(
            f"/v1/orgs/{org_id}/settings",
            headers={**headers, "If-Match": '"1"'},
            json={"settings": {"theme": "dark"}},
        )
        assert put.status_code == 200, put.text
        key = await client.post(
            f"/v1/orgs/{org_id}/api-keys", headers=headers, json={"name": "ci", "role": "viewer"}
        )
        assert key.status_code == 201, key.text
        test = await client.post(
            f"/v1/orgs/{org_id}/webhooks/{endpoint['id']}/test", headers=headers
        )
        assert test.status_code == 202, test.text
        received = await receiver.wait_for(6)
    types = [verified(endpoint["secret"], r)["type"] for r in received]
    assert types == [
        "invitation.created",
        "member.added",  # when the newcomer accepted
        "invitation.accepted",
        "settings.updated",
        "api_key.created",
        "webhook.test",
    ]
    member = verified(endpoint["secret"], received[1])["data"]
    assert member["key"] == {"user_id": newcomer["id"]}
    assert member["details"]["role"] == "member"


async def test_only_admins_manage_and_orgs_never_meet(client: Client) -> None:
    org_a, tokens_a = await member_tokens(client, ("admin", "member"))
    org_b, tokens_b = await member_tokens(client, ())
    a = bearer((await admin_at_aal2(client, {"access_token": tokens_a["owner"]}))["access_token"])
    b = bearer(tokens_b["owner"])
    async with Receiver(Answer()) as receiver_a:
        endpoint = await register(client, org_a, a, receiver_a.url, ["*"])
        # A member may not manage webhooks; an admin may.
        for role, status in (("member", 403), ("admin", 200)):
            listed = await client.get(f"/v1/orgs/{org_a}/webhooks", headers=bearer(tokens_a[role]))
            assert listed.status_code == status, (role, listed.text)
        # Org B cannot reach org A's endpoint by id, through its own org or A's.
        for path in (
            f"/v1/orgs/{org_b}/webhooks/{endpoint['id']}",
            f"/v1/orgs/{org_b}/webhooks/{endpoint['id']}/deliveries",
        ):
            assert (await client.get(path, headers=b)).status_code == 404
        foreign = await client.get(f"/v1/orgs/{org_a}/webhooks", headers=b)
        assert foreign.status_code in (403, 404)
        # B's changes never reach A's receiver; A's do.
        await insert_item(client, b, "b's row")
        await insert_item(client, a, "a's row")
        # A's outbox holds only A's change (final once the writes answered), and that is
        # what A's receiver gets.
        (entry,) = await deliveries(client, org_a, a, endpoint["id"])
        assert entry["payload"]["data"]["row"]["title"] == "a's row"
        (request,) = await receiver_a.wait_for(1)
    assert verified(endpoint["secret"], request)["data"]["row"]["title"] == "a's row"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"url": "ftp://example.com/x", "events": ["*"]}, "invalid_webhook_url"),
        ({"url": "http://user:pw@example.com/", "events": ["*"]}, "invalid_webhook_url"),
        ({"url": "http://example.com/", "events": []}, "validation_failed"),
        ({"url": "http://example.com/", "events": ["DROP TABLE"]}, "validation_failed"),
        ({"url": "http://example.com/", "events": ["db.%"]}, "validation_failed"),
        ({"url": "http://example.com/", "events": ["*"], "extra": 1}, "validation_failed"),
    ],
)
async def test_bad_endpoints_are_refused(client: Client, body: dict[str, Any], code: str) -> None:
    org_id, headers = await owner_of_new_org(client)
    response = await client.post(f"/v1/orgs/{org_id}/webhooks", headers=headers, json=body)
    assert (response.status_code, response.json()["code"]) == (400, code), response.text


@pytest.mark.parametrize(
    ("mode", "error"),
    [(Hang(), "timeout"), (Close(), "RemoteProtocolError"), (Redirect("/elsewhere"), "302")],
)
async def test_receivers_that_misbehave(client: Client, mode: Any, error: str) -> None:
    org_id, headers = await owner_of_new_org(client)
    async with Receiver(mode) as receiver:
        endpoint = await register(client, org_id, headers, receiver.url, ["db.items.*"])
        await insert_item(client, headers, "odd")

        async def failed_once() -> bool:
            log = await deliveries(client, org_id, headers, endpoint["id"])
            return bool(log) and log[0]["attempts"] >= 1 and log[0]["last_error"] is not None

        await eventually(failed_once, within=8, what="a failed attempt logged")
        (entry,) = await deliveries(client, org_id, headers, endpoint["id"])
        assert entry["status"] == "pending"
        assert error in entry["last_error"], entry
        # A redirect is never followed.
        assert all(r.path != "/elsewhere" for r in receiver.received)


async def test_only_a_prefix_of_a_huge_answer_is_read(client: Client) -> None:
    org_id, headers = await owner_of_new_org(client)
    async with Receiver(Huge(5_000_000)) as receiver:
        endpoint = await register(client, org_id, headers, receiver.url, ["db.items.*"])
        started = time.monotonic()
        await insert_item(client, headers, "big answer")

        async def delivered() -> bool:
            log = await deliveries(client, org_id, headers, endpoint["id"])
            return bool(log) and log[0]["status"] == "delivered"

        await eventually(delivered, within=5, what="delivered")
        assert time.monotonic() - started < 5
    (entry,) = await deliveries(client, org_id, headers, endpoint["id"])
    assert 0 < len(entry["last_response"]) <= 1024


async def test_document_changes_are_events(client: Client) -> None:
    org_id, headers = await owner_of_new_org(client)
    async with Receiver(Answer()) as receiver:
        endpoint = await register(client, org_id, headers, receiver.url, ["docs.notes.*"])
        stored = await client.post("/v1/docs/notes", headers=headers, json={"text": "hello"})
        assert stored.status_code == 201, stored.text
        document_id = stored.json()["_id"]["$oid"]
        changed = await client.patch(
            f"/v1/docs/notes/{document_id}", headers=headers, json={"$set": {"text": "bye"}}
        )
        assert changed.status_code == 200, changed.text
        gone = await client.delete(f"/v1/docs/notes/{document_id}", headers=headers)
        assert gone.status_code in (200, 204), gone.text
        other = await client.post("/v1/docs/elsewhere", headers=headers, json={"x": 1})
        assert other.status_code == 201
        log = await deliveries(client, org_id, headers, endpoint["id"])
        assert len(log) == 3, "only the subscribed collection's changes are in the outbox"
        received = await receiver.wait_for(3)
    events = [verified(endpoint["secret"], r) for r in received]
    assert [e["type"] for e in events] == [
        "docs.notes.insert",
        "docs.notes.update",
        "docs.notes.delete",
    ], "only the subscribed collection's changes"
    assert all(e["data"]["details"]["ids"] == [document_id] for e in events)


async def test_a_receiver_that_comes_back_gets_everything(client: Client) -> None:
    org_id, headers = await owner_of_new_org(client)
    async with Receiver(Close()) as receiver:
        endpoint = await register(client, org_id, headers, receiver.url, ["db.items.*"])
        for title in ("a", "b", "c"):
            await insert_item(client, headers, title)
        await receiver.wait_for(3)  # the receiver is down: every first attempt fails
        receiver.set_mode(Answer())

        async def all_delivered() -> bool:
            log = await deliveries(client, org_id, headers, endpoint["id"])
            return len(log) == 3 and all(d["status"] == "delivered" for d in log)

        await eventually(all_delivered, within=10, what="every delivery made once it is back")
    log = await deliveries(client, org_id, headers, endpoint["id"])
    assert all(d["attempts"] >= 2 for d in log)
    titles = {
        verified(endpoint["secret"], r)["data"]["row"]["title"]
        for r in receiver.received
        if r.headers.get("webhook-id")
    }
    assert titles == {"a", "b", "c"}


async def test_metrics_and_readiness_show_the_outbox(client: Client) -> None:
    org_id, headers = await owner_of_new_org(client)
    async with Receiver(Answer()) as receiver:
        await register(client, org_id, headers, receiver.url, ["db.items.*"])
        await insert_item(client, headers, "counted")
        await receiver.wait_for(1)

        async def counted() -> bool:
            text = (await client.get("/metrics")).text
            return 'orgbase_webhook_deliveries_total{outcome="delivered"}' in text

        await eventually(counted, within=5, what="deliveries counted")
    metrics = (await client.get("/metrics")).text
    assert "orgbase_webhook_delivery_seconds_bucket" in metrics
    assert org_id not in metrics, "no per-org labels"
    ready = (await client.get("/health/ready")).json()
    assert ready["checks"]["webhooks"]["delivering"] is True
    assert {"due", "oldest_due_seconds"} <= set(ready["checks"]["webhooks"])


async def test_the_log_is_kept_for_its_retention_only(client: Client, settings: Settings) -> None:
    org_id, headers = await owner_of_new_org(client)
    async with Receiver(Answer()) as receiver:
        endpoint = await register(client, org_id, headers, receiver.url, ["db.items.*"])
        for title in ("old", "recent"):
            await insert_item(client, headers, title)
        await receiver.wait_for(2)

        async def both_delivered() -> bool:
            log = await deliveries(client, org_id, headers, endpoint["id"])
            return len(log) == 2 and all(d["status"] == "delivered" for d in log)

        await eventually(both_delivered, within=5, what="both delivered")
    connection = await asyncpg.connect(settings.database.migration_url)
    resources = Resources(with_overrides(settings, webhooks=FAST))
    await resources.open()
    try:
        oldest = min(d["id"] for d in await deliveries(client, org_id, headers, endpoint["id"]))
        await connection.execute(
            "UPDATE orgbase.webhook_deliveries SET created_at = now() - interval '31 days'"
            " WHERE id = $1",
            oldest,
        )
        policy = DestinationPolicy(allowed_hosts=frozenset(), allow_loopback=False)
        outbox = MailQueue(AccountDirectory())
        dispatcher = WebhookDispatcher(
            resources.db, resources.settings.webhooks, policy, outbox, tasks=TaskSet()
        )
        assert await dispatcher.expire_old() >= 1
    finally:
        await resources.close()
        await connection.close()
    log = await deliveries(client, org_id, headers, endpoint["id"])
    assert [d["id"] for d in log] == [max(d["id"] for d in log)]
    assert oldest not in {d["id"] for d in log}


async def test_parallel_registrations_stop_at_the_limit(live_server: str) -> None:
    """Registrations sent at once to a real gateway past the org's limit (20): exactly
    20 succeed, the rest are 409."""
    async with httpx.AsyncClient(base_url=live_server, timeout=30) as http:
        org_id, headers = await owner_of_new_org(http)
        answers = await asyncio.gather(
            *(
                http.post(
                    f"/v1/orgs/{org_id}/webhooks",
                    headers=headers,
                    json={"url": f"http://93.184.216.34/{n}", "events": ["member.*"]},
                )
                for n in range(30)
            )
        )
        listed = await http.get(f"/v1/orgs/{org_id}/webhooks", headers=headers)
    statuses = [answer.status_code for answer in answers]
    assert (statuses.count(201), statuses.count(409)) == (20, 10), statuses
    assert {a.json()["code"] for a in answers if a.status_code == 409} == {"too_many_endpoints"}
    assert len(listed.json()) == 20
