"""The invocation log: per org and function, what ran and how it ended; an org's admins see
their org's (without tracebacks), the operator (platform admins) every org's with them;
sql/rls/0032_function_invocations.sql on the old layout."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from orgbase.core.settings import Settings
from orgbase.platform.migrations import migrate
from tests.functions.conftest import Client, F, person
from tests.support.data import make_platform_admin, migrations_before
from tests.support.http import bearer, new_user

NUMBER = 32


async def test_an_orgs_admins_read_its_invocations_without_tracebacks(
    fclient: Client, functions_settings: Settings
) -> None:
    alice, bob = await person(fclient), await person(fclient)
    assert (await fclient.get(f"{F}/count_items", headers=alice["headers"])).status_code == 200
    failed = await fclient.post(f"{F}/oops", headers=alice["headers"])
    assert failed.status_code == 500
    assert (await fclient.post(f"{F}/whoami", headers=bob["headers"])).status_code == 200

    seen = await fclient.get(f"/v1/orgs/{alice['org']}/functions", headers=alice["headers"])
    assert seen.status_code == 200, seen.text
    body = seen.json()
    assert {"whoami", "count_items"} <= {f["name"] for f in body["functions"]}
    rows = body["invocations"]
    assert [(r["function"], r["status"], r["outcome"]) for r in rows] == [
        ("oops", 500, "exception"),
        ("count_items", 200, "ok"),
    ]
    assert all(r["org_id"] == alice["org"] for r in rows)
    assert rows[0]["error"] is None  # the traceback is the operator's
    assert rows[0]["request_id"] == failed.headers["x-request-id"]
    assert rows[0]["logs"] == [{"level": "info", "message": "about to fail", "step": "1"}]
    assert rows[1]["logs"][0]["message"] == "items counted"

    stranger = await fclient.get(f"/v1/orgs/{alice['org']}/functions", headers=bob["headers"])
    assert stranger.status_code in (403, 404)

    operator, tokens = await new_user(fclient)
    await make_platform_admin(functions_settings, operator["id"])
    everything = await fclient.get(
        f"/v1/platform/functions?org={alice['org']}&failed=true",
        headers=bearer(tokens["access_token"]),
    )
    assert everything.status_code == 200, everything.text
    failures = everything.json()["invocations"]
    assert [r["function"] for r in failures] == ["oops"]
    assert "division by zero in the invoice total" in failures[0]["error"]
    assert everything.json()["workers"]["live"] >= 1
    broken = {f["name"]: f["error"] for f in everything.json()["functions"]}
    assert "ImportError" in broken["badimport"]
    assert "access" in broken["badconfig"]
    refused = await fclient.get("/v1/platform/functions", headers=alice["headers"])
    assert refused.status_code == 403


async def test_the_invocation_log_migration_on_the_old_layout(scratch: str, tmp_path: Path) -> None:
    await migrate(scratch, migrations_before(NUMBER, tmp_path))
    connection = await asyncpg.connect(scratch)
    try:
        org = await connection.fetchval(
            "INSERT INTO orgbase.orgs (name) VALUES ('old') RETURNING id"
        )
    finally:
        await connection.close()
    applied = await migrate(scratch)
    assert any(name.startswith(f"00{NUMBER}_") for name in applied)
    connection = await asyncpg.connect(scratch)
    try:
        await connection.execute(
            "INSERT INTO orgbase.function_invocations"
            " (org_id, function, kind, status, outcome, duration_ms)"
            " VALUES ($1, 'f', 'http', 200, 'ok', 3)",
            org,
        )
        row = await connection.fetchrow("SELECT org_id, function FROM orgbase.function_invocations")
        assert row is not None
        assert (row["org_id"], row["function"]) == (org, "f")
        await connection.execute("DELETE FROM orgbase.orgs WHERE id = $1", org)
        assert await connection.fetchval("SELECT count(*) FROM orgbase.function_invocations") == 0

    finally:
        await connection.close()
