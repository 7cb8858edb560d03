"""supabase-js's auth client, unchanged, on a real gateway process
(tests/supabase_js/auth.mjs): getClaims() with the published ES256 keys, and the org flow
of a newcomer from the client alone."""

from __future__ import annotations

import httpx

from devstack import LocalStack
from tests.support.http import PASSWORD, sign_up
from tests.support.supabase_js import run_script


async def test_get_claims_and_the_org_flow(live_server: str, stack: LocalStack) -> None:
    async with httpx.AsyncClient(base_url=live_server, timeout=15) as http:
        user = await sign_up(http)
    seen = await run_script(
        "auth.mjs",
        URL=live_server,
        ANON_KEY=stack.secrets["publishable"],
        EMAIL=user["email"],
        PASSWORD=PASSWORD,
    )
    assert seen["alg"] == "ES256"
    assert seen["signedInOrg"] is None
    assert seen["noOrgRead"] == "no_active_org"
    assert seen["afterCreate"] is True
    assert seen["afterSecond"] is True
    assert seen["readInB"] == []  # the second org sees nothing of the first
    assert seen["switchedBack"] is True
    assert seen["readInA"] == ["in A"]
    assert seen["tamperedError"] == "Invalid JWT signature"
