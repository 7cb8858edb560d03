"""Browser sign-in (cookie + CSRF), and the listings the studio reads: tables, collections."""

from __future__ import annotations

import uuid

from litestar.testing import AsyncTestClient

from orgbase.platform.app import OrgbaseApp
from tests.support.http import PASSWORD, bearer, create_org, new_user, sign_in

Client = AsyncTestClient[OrgbaseApp]


async def test_browser_session_cookie_csrf_switch_and_sign_out(client: Client) -> None:
    user, tokens = await new_user(client)
    first = await create_org(client, tokens, "first")
    second = await create_org(client, tokens, "second")
    client.cookies.clear()
    signed_in = await client.post(
        "/v1/auth/browser/sign-in",
        json={"email": user["email"], "password": PASSWORD, "org_id": first},
    )
    assert signed_in.status_code == 200, signed_in.text
    body = signed_in.json()
    assert "refresh_token" not in body
    assert body["org_id"] == first
    cookies = signed_in.headers.get_list("set-cookie")
    refresh_cookie = next(c for c in cookies if c.startswith("orgbase_refresh="))
    assert "HttpOnly" in refresh_cookie
    assert "samesite=strict" in refresh_cookie.lower()
    assert "Path=/v1/auth/browser" in refresh_cookie
    csrf = body["csrf_token"]
    assert client.cookies.get("orgbase_csrf") == csrf

    # Without the header, or with a wrong one, the cookie alone does nothing.
    for headers in ({}, {"X-CSRF-Token": "guess"}):
        refused = await client.post("/v1/auth/browser/refresh", headers=headers)
        assert (refused.status_code, refused.json()["code"]) == (403, "csrf_failed")

    switched = await client.post(
        "/v1/auth/browser/refresh", headers={"X-CSRF-Token": csrf}, json={"org_id": second}
    )
    assert switched.status_code == 200, switched.text
    assert switched.json()["org_id"] == second
    access = switched.json()["access_token"]
    assert (await client.get("/v1/auth/session", headers=bearer(access))).json()["org_id"] == second

    # An org the user is not in cannot be switched to.
    stranger_org = await create_org(client, (await new_user(client))[1], "not mine")
    client.cookies.set("orgbase_csrf", csrf)
    foreign = await client.post(
        "/v1/auth/browser/refresh", headers={"X-CSRF-Token": csrf}, json={"org_id": stranger_org}
    )
    assert foreign.status_code in (403, 404)

    out = await client.post(
        "/v1/auth/browser/sign-out", headers={**bearer(access), "X-CSRF-Token": csrf}
    )
    assert out.status_code == 204
    assert (await client.get("/v1/auth/session", headers=bearer(access))).status_code == 401
    again = await client.post("/v1/auth/browser/refresh", headers={"X-CSRF-Token": csrf})
    assert again.status_code in (401, 403)
    client.cookies.clear()


async def test_table_listing_needs_an_org_and_shows_types(client: Client) -> None:
    assert (await client.get("/v1/db")).status_code == 401
    assert (await client.get("/v1/db", headers=bearer("forged.token.value"))).status_code == 401
    user, tokens = await new_user(client)
    org = await create_org(client, tokens)
    scoped = await sign_in(client, user["email"], org)
    listing = await client.get("/v1/db", headers=bearer(scoped["access_token"]))
    assert listing.status_code == 200
    tasks = next(t for t in listing.json()["tables"] if t["name"] == "tasks")
    columns = {c["name"]: c for c in tasks["columns"]}
    assert tasks["primary_key"] == ["id"]
    assert columns["id"]["identity"] is True
    assert columns["title"]["identity"] is False
    assert columns["title"]["nullable"] is False
    assert columns["data"]["json"] is True
    assert columns["tags"]["type"] == "text[]"
    assert {"columns": ["owner_id"], "table": "people", "references": ["id"]} in tasks[
        "foreign_keys"
    ]


async def test_collection_names_do_not_leak_between_orgs(client: Client) -> None:
    orgs = []
    for name in ("one", "two"):
        user, tokens = await new_user(client)
        org = await create_org(client, tokens, name)
        orgs.append((await sign_in(client, user["email"], org))["access_token"])
    secret = f"plans_{uuid.uuid4().hex[:8]}"
    for n in range(2):
        inserted = await client.post(
            f"/v1/docs/{secret}", headers=bearer(orgs[0]), json={"step": n}
        )
        assert inserted.status_code == 201, inserted.text
    mine = (await client.get("/v1/docs", headers=bearer(orgs[0]))).json()
    assert {"name": secret, "count": 2} in mine
    theirs = (await client.get("/v1/docs", headers=bearer(orgs[1]))).json()
    assert secret not in {c["name"] for c in theirs}
