"""Metrics, SLOs, the Redis dashboard, readiness details, and logs without secrets."""

from __future__ import annotations

import asyncio
import io
import json
import re

import httpx
import pytest
import structlog
from litestar.testing import AsyncTestClient

from devstack import LocalStack
from orgbase.core.settings import Settings
from orgbase.observability.logging import configure_logging
from orgbase.platform.app import OrgbaseApp, create_app
from tests.support.data import make_platform_admin
from tests.support.http import (
    PASSWORD,
    bearer,
    member_tokens,
    new_user,
    org_member,
    sign_in,
    unique_email,
)
from tests.support.processes import serving
from tests.support.stack import server_env
from tests.support.waiting import eventually

Client = AsyncTestClient[OrgbaseApp]


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one series in Prometheus text (0 when absent)."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_metrics_move_with_requests(client: Client) -> None:
    before = (await client.get("/metrics")).text
    for _ in range(3):
        await client.get("/health/live")
    await client.get("/v1/no/such/route")
    _, tokens = await new_user(client)
    org = (
        await client.post("/v1/orgs", headers=bearer(tokens["access_token"]), json={"name": "m"})
    ).json()
    await client.get(f"/v1/orgs/{org['id']}", headers=bearer(tokens["access_token"]))
    after_response = await client.get("/metrics")
    assert after_response.headers["content-type"].startswith("text/plain")
    after = after_response.text
    live = {"route": "/health/live", "method": "GET", "status": "200"}
    assert (
        sample(after, "orgbase_http_requests_total", **live)
        - sample(before, "orgbase_http_requests_total", **live)
        == 3
    )
    assert sample(after, "orgbase_http_requests_total", route="unmatched", status="404") >= 1
    assert sample(after, "orgbase_http_request_duration_seconds_count", route="/health/live") >= 3
    # Route templates, never raw paths or ids, are labels.
    assert 'route="/v1/orgs/{org_id}"' in after
    assert org["id"] not in after
    assert sample(after, "orgbase_auth_outcomes_total", outcome="signin") >= 1
    assert sample(after, "orgbase_circuit_breaker_state", dependency="redis") == 0
    assert sample(after, "orgbase_pool_connections", pool="postgres_api", state="size") >= 1
    assert "orgbase_http_requests_in_flight" in after


async def test_two_workers_report_combined_figures(stack: LocalStack, settings: Settings) -> None:
    with serving(server_env(stack), workers=2) as base:

        async def live_total() -> float:
            # A new connection each time, so either worker may answer.
            async with httpx.AsyncClient(base_url=base) as http:
                text = (await http.get("/metrics")).text
            return sample(text, "orgbase_http_requests_total", route="/health/live", status="200")

        baseline = await live_total()
        requests = 40
        for _ in range(requests):
            async with httpx.AsyncClient(base_url=base) as http:
                assert (await http.get("/health/live")).status_code == 200

        async def all_counted() -> bool:
            return await live_total() >= baseline + requests

        # A request is counted as its answer goes out, so the last may still be on its way.
        await eventually(all_counted, what="the combined count")
        totals = {await live_total() for _ in range(6)}
        # Whichever worker answers the scrape, it reports both workers' requests.
        assert totals == {baseline + requests}, totals


async def test_platform_figures_are_for_platform_admins(settings: Settings, client: Client) -> None:
    org_id, tokens = await member_tokens(client, ("admin", "member"))
    for url in ("/v1/platform/slo", "/v1/platform/redis"):
        response = await client.get(url, headers=bearer(tokens["admin"]))
        assert (response.status_code, response.json()["code"]) == (403, "platform_admin_required")
    for url in (f"/v1/orgs/{org_id}/slo", f"/v1/orgs/{org_id}/redis"):
        assert (await client.get(url, headers=bearer(tokens["member"]))).status_code == 403
        assert (await client.get(url, headers=bearer(tokens["admin"]))).status_code == 200
    operator, operator_tokens = await new_user(client)
    await make_platform_admin(settings, operator["id"])
    dashboard = (
        await client.get("/v1/platform/redis", headers=bearer(operator_tokens["access_token"]))
    ).json()
    assert dashboard["status"] == "ok"
    assert dashboard["replication"]["role"] == "master"
    assert len(dashboard["replication"]["replicas"]) == 2
    assert {s["status"] for s in dashboard["sentinels"]} == {"ok"}
    assert {"used_memory", "maxmemory"} <= set(dashboard["memory"])
    assert {"p50_ms", "p95_ms", "p99_ms"} <= set(dashboard["latency"])
    assert len(dashboard["hit_rate"]) == 60
    slo = (
        await client.get("/v1/platform/slo", headers=bearer(operator_tokens["access_token"]))
    ).json()
    assert set(slo["windows"]) == {"1h", "24h", "30d"}
    assert slo["objectives"]["availability"] == 0.999
    assert slo["windows"]["1h"]["requests"] > 0


async def test_readiness_details(client: Client) -> None:
    body = (await client.get("/health/ready")).json()
    for name in ("postgres", "redis", "mongo"):
        assert "errors_24h" in body["checks"][name]
        assert body["checks"][name]["latency_ms"] >= 0
    assert body["checks"]["redis"]["breaker"] == "closed"
    assert "pool" in body["checks"]["mongo"]
    assert body["checks"]["postgres"]["pools"]["api"]["max"] >= 1


@pytest.mark.slow
async def test_slo_moves_when_a_dependency_fails(
    fault_stack: LocalStack, fault_settings: Settings
) -> None:
    async with AsyncTestClient(app=create_app(fault_settings)) as client:
        org_id, tokens = await member_tokens(client, ())
        headers = bearer(tokens["owner"])
        for _ in range(10):
            await client.get("/health/live")
        before = (await client.get(f"/v1/orgs/{org_id}/slo", headers=headers)).json()["windows"][
            "1h"
        ]
        assert before["errors"] == 0
        assert before["availability"]["budget_remaining"] == 1.0
        await asyncio.to_thread(fault_stack.mongo.stop)
        try:
            for _ in range(5):
                assert (await client.get("/v1/docs/things", headers=headers)).status_code == 503
        finally:
            await asyncio.to_thread(fault_stack.mongo.start)
        after = (await client.get(f"/v1/orgs/{org_id}/slo", headers=headers)).json()["windows"][
            "1h"
        ]
        assert after["errors"] == 5
        assert after["availability"]["measured"] < 1
        assert after["availability"]["burn_rate"] > 1
        assert after["availability"]["budget_remaining"] < 1
        assert after["availability"]["seconds_to_exhaustion"] is not None
        ready = (await client.get("/health/ready")).json()
        assert ready["checks"]["mongo"]["errors_24h"] >= 5


async def test_secrets_never_reach_the_logs(settings: Settings) -> None:
    buffer = io.StringIO()
    configure_logging(settings.log, stream=buffer)
    try:
        async with AsyncTestClient(app=create_app(settings, configure_logs=False)) as client:
            email = unique_email("secret")
            await client.post("/v1/auth/signup", json={"email": email, "password": PASSWORD})
            wrong = await client.post(
                "/v1/auth/token",
                json={"grant_type": "password", "email": email, "password": "wrong-" + PASSWORD},
            )
            assert wrong.status_code == 401
            tokens = await sign_in(client, email)
            org = (
                await client.post(
                    "/v1/orgs", headers=bearer(tokens["access_token"]), json={"name": "s"}
                )
            ).json()
            key = (
                await client.post(
                    f"/v1/orgs/{org['id']}/api-keys",
                    headers=bearer(tokens["access_token"]),
                    json={"name": "k"},
                )
            ).json()["key"]
            await client.get("/v1/auth/user", headers={"apikey": key})
            refreshed = (
                await client.post(
                    "/v1/auth/token",
                    json={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                )
            ).json()
            await client.get("/v1/auth/user", headers=bearer("garbage." + tokens["access_token"]))
            structlog.get_logger("test").warning(
                "a careless message",
                url=settings.database.api_url,
                password="hunter2-hunter2",
                note=f"Authorization: Bearer {tokens['access_token']}",
            )
        output = buffer.getvalue()
    finally:
        configure_logging(settings.log)
    assert '"event":"request"' in output, "the requests were logged"
    db_password = re.search(r"://[^:]+:([^@]+)@", settings.database.api_url)
    assert db_password is not None
    for secret in (
        PASSWORD,
        tokens["access_token"],
        tokens["refresh_token"],
        key,
        refreshed["access_token"],
        refreshed["refresh_token"],
        "hunter2-hunter2",
        db_password.group(1),
    ):
        assert secret not in output, f"a secret leaked into the logs: {secret[:12]}..."
    assert "[redacted]" in output


async def test_the_access_log_names_the_caller_on_every_route(settings: Settings) -> None:
    """The request-auth component records who called; every kind of route logs it alike."""
    buffer = io.StringIO()
    configure_logging(settings.log, stream=buffer)
    try:
        async with AsyncTestClient(app=create_app(settings, configure_logs=False)) as client:
            user, org_id, headers = await org_member(client, "logs")
            key = (
                await client.post(
                    f"/v1/orgs/{org_id}/api-keys", headers=headers, json={"name": "logs"}
                )
            ).json()
            calls = {
                "/v1/auth/user": headers,
                f"/v1/orgs/{org_id}/members": headers,
                "/v1/db/items": headers,
                "/v1/docs/notes": headers,
                "/v1/kv/missing": {"apikey": key["key"]},
            }
            for path, with_headers in calls.items():
                await client.get(path, headers={**with_headers, "X-Request-ID": _rid(path)})
        output = buffer.getvalue()
    finally:
        configure_logging(settings.log)
    lines = {
        line["request_id"]: line
        for line in (json.loads(raw) for raw in output.splitlines() if raw.startswith("{"))
        if line.get("event") == "request"
    }
    for path, with_headers in calls.items():
        line = lines[_rid(path)]
        if "apikey" in with_headers:
            assert (line["auth"], line["key_id"], line["org_id"]) == ("api_key", key["id"], org_id)
            assert "user_id" not in line
        else:
            assert (line["auth"], line["user_id"]) == ("user", user["id"]), path
            if path != "/v1/auth/user":
                assert line["org_id"] == org_id, path


def _rid(path: str) -> str:
    return "who" + path.replace("/", ".")
