"""supabase-js's auth.admin and signInAnonymously(), unchanged, on a real gateway process
that has a platform service key (tests/supabase_js/admin.mjs)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devstack import LocalStack
from orgbase.core.settings import Settings
from tests.support.http import PASSWORD, add_member, bearer, create_org, new_user, sign_in
from tests.support.processes import free_port, start_server, stop_server
from tests.support.stack import STATE_DIR, server_env
from tests.support.supabase_js import need_node, run_script

SERVICE_KEY = "obsvc_" + secrets.token_urlsafe(32)


@pytest.fixture(scope="module")
def gateway(stack: LocalStack, settings: Settings) -> Iterator[str]:
    del settings  # the test database, migrated
    port = free_port()
    env = server_env(stack, ORGBASE_AUTH_SERVICE_KEY=SERVICE_KEY)
    process = start_server(env, port, log_file=STATE_DIR / "gotrue_admin_server.log")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_server(process)


async def org_and_key(http: httpx.AsyncClient) -> dict[str, Any]:
    owner, first = await new_user(http)
    org_id = await create_org(http, first, "admin js")
    tokens = await sign_in(http, owner["email"], org_id)
    member, _ = await new_user(http)
    await add_member(http, tokens, org_id, member, "member")
    made = await http.post(
        f"/v1/orgs/{org_id}/api-keys",
        headers=bearer(tokens["access_token"]),
        json={"name": "admin js", "role": "admin"},
    )
    assert made.status_code == 201, made.text
    return {"key": made.json()["key"], "member": member["id"]}


async def test_supabase_js_admin(gateway: str, stack: LocalStack) -> None:
    need_node()
    async with httpx.AsyncClient(base_url=gateway, timeout=15) as http:
        mine = await org_and_key(http)
        stranger, _ = await new_user(http)
    seen = await run_script(
        "admin.mjs",
        URL=gateway,
        ANON_KEY=stack.secrets["publishable"],
        SERVICE_KEY=SERVICE_KEY,
        ORG_KEY=mine["key"],
        MEMBER_ID=mine["member"],
        STRANGER_ID=stranger["id"],
        PASSWORD=PASSWORD,
    )
    assert seen["created"] == {"email": seen["created"]["email"], "confirmed": True, "plan": "pro"}
    assert seen["listed"]["count"] == 1
    assert seen["listed"]["total"] >= 2
    assert seen["listed"]["nextPage"] == 2
    assert seen["fetched"] == seen["created"]["email"]
    assert seen["updated"] == {"plan": "pro", "seats": 3}
    assert seen["link"] == {"type": "magiclink", "otp": True}
    assert seen["linkSignedIn"] is True
    assert seen["deletedGone"] == 404
    assert seen["orgListed"] is True
    assert seen["orgStranger"] == "user_not_found"
    assert seen["orgCreate"] == "service_key_required"
    assert seen["orgAfter"] is False
    assert seen["anonymous"] == "anonymous_provider_disabled"
