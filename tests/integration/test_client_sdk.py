"""The Python SDK against the real gateway: async in-process, sync over a real socket."""

from __future__ import annotations

import time
from pathlib import Path

import jwt
import pytest
from litestar.testing import AsyncTestClient

from orgbase.auth.keys import KeySet
from orgbase.client import (
    AsyncOrgbase,
    AuthError,
    NotFoundError,
    Orgbase,
    ValidationError,
)
from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp
from tests.support.http import PASSWORD, unique_email


async def test_async_sdk_end_to_end(
    client: AsyncTestClient[OrgbaseApp], settings: Settings
) -> None:
    ob = AsyncOrgbase("http://testserver.local", http_client=client)
    email = unique_email("sdk")
    first = await ob.auth.sign_up(email, PASSWORD, display_name="SDK User")
    # A known address answers like a new one (a stand-in: sign-up reveals no account).
    stand_in = await ob.auth.sign_up(email, PASSWORD)
    assert stand_in["email"] == first["email"]
    assert stand_in["id"] != first["id"]
    with pytest.raises(AuthError) as wrong:
        await ob.auth.sign_in(email, "definitely not it")
    assert wrong.value.code == "invalid_credentials"
    await ob.auth.sign_in(email, PASSWORD)
    assert (await ob.auth.user())["display_name"] == "SDK User"
    first = await ob.orgs.create("SDK Org")
    second = await ob.orgs.create("Other Org")
    await ob.auth.switch_org(first["id"])
    assert ob.state.org_id == first["id"]
    tasks = ob.db.table("tasks")
    inserted = await tasks.insert(
        [{"title": "open one", "points": 1}, {"title": "done one", "points": 2}]
    ).execute()
    assert inserted.status == 201
    rows = (
        await ob.db.table("tasks")
        .select("id,title")
        .eq("title", "open one")
        .order("id")
        .limit(20)
        .execute()
    )
    assert [r["title"] for r in rows.data] == ["open one"]
    counted = (
        await ob.db.table("tasks").select("title", count="exact").in_("points", [1, 2]).execute()
    )
    assert counted.count == 2
    one = await ob.db.table("tasks").select("points").eq("title", "done one").single().execute()
    assert one.data == {"points": 2}
    updated = await ob.db.table("tasks").update({"done": True}).eq("title", "open one").execute()
    assert updated.data[0]["done"] is True
    deleted = await ob.db.table("tasks").delete().gte("points", 1).execute()
    assert len(deleted.data) == 2
    # Switching org switches what the data API sees.
    await ob.auth.switch_org(second["id"])
    assert (await ob.db.table("tasks").select("id").execute()).data == []
    with pytest.raises(ValidationError) as bad:
        await ob.db.table("tasks").filter("points", "near", 3).execute()
    assert bad.value.code == "PGRST100"
    with pytest.raises(NotFoundError):
        await ob.db.table("no_such_table").select().execute()
    await ob.auth.sign_out()
    with pytest.raises(AuthError):
        await ob.auth.user()


async def test_async_sdk_refreshes_on_its_own(
    client: AsyncTestClient[OrgbaseApp], settings: Settings
) -> None:
    ob = AsyncOrgbase("http://testserver.local", http_client=client)
    email = unique_email("refresh")
    await ob.auth.sign_up(email, PASSWORD)
    await ob.auth.sign_in(email, PASSWORD)
    # Near expiry: refreshed before the call (refresh tokens rotate on every refresh).
    before = ob.state.refresh_token
    ob.state.expires_at = time.time() + 5
    await ob.auth.user()
    assert ob.state.refresh_token != before
    # Already expired on the server's side: the 401 triggers one refresh and a retry.
    assert settings.auth.signing_keys_file is not None
    keys = KeySet.from_file(Path(settings.auth.signing_keys_file), settings.auth.jwt_algorithm)
    claims = jwt.decode(str(ob.state.access_token), options={"verify_signature": False})
    old = int(time.time()) - 3600
    expired = jwt.encode(
        {**claims, "iat": old, "nbf": old, "exp": old + 60},
        keys.active.signing_key,
        algorithm=keys.active.algorithm,
        headers={"kid": keys.active.kid},
    )
    ob.state.access_token = expired
    ob.state.expires_at = time.time() + 3600
    before = ob.state.refresh_token
    assert (await ob.auth.user())["email"] == email
    assert ob.state.access_token != expired
    assert ob.state.refresh_token != before


def test_sync_sdk_over_a_real_socket(live_server: str) -> None:
    with Orgbase(live_server) as ob:
        email = unique_email("sync")
        ob.auth.sign_up(email, PASSWORD)
        ob.auth.sign_in(email, PASSWORD)
        org = ob.orgs.create("Sync Org")
        ob.auth.switch_org(org["id"])
        ob.db.table("tasks").insert({"title": "from sync", "points": 4}, returning=False).execute()
        rows = ob.db.table("tasks").select("title,points").eq("points", 4).execute()
        assert rows.data == [{"title": "from sync", "points": 4}]
        assert [o["id"] for o in ob.orgs.mine()] == [org["id"]]
        ob.auth.sign_out()
