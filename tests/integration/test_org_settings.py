"""Versioned settings: If-Match concurrency, history, rollback, limits."""

from __future__ import annotations

from litestar.testing import AsyncTestClient

from orgbase.platform.app import OrgbaseApp
from tests.support.http import bearer, org_with_roles


async def test_versions_concurrency_and_rollback(client: AsyncTestClient[OrgbaseApp]) -> None:
    org_id, people = await org_with_roles(client, ("member",))
    headers = bearer(people["owner"][1]["access_token"])
    url = f"/v1/orgs/{org_id}/settings"
    first = await client.get(url, headers=headers)
    assert first.headers["etag"] == '"1"'
    assert first.json()["settings"] == {}
    v2 = await client.put(
        url, headers={**headers, "If-Match": '"1"'}, json={"settings": {"theme": "dark"}}
    )
    assert v2.status_code == 200
    assert (v2.json()["version"], v2.json()["settings"]) == (2, {"theme": "dark"})
    stale = await client.put(
        url, headers={**headers, "If-Match": "1"}, json={"settings": {"theme": "light"}}
    )
    assert (stale.status_code, stale.json()["code"]) == (412, "version_conflict")
    assert stale.json()["details"] == {"current_version": 2}
    missing = await client.put(url, headers=headers, json={"settings": {"a": 1}})
    assert (missing.status_code, missing.json()["code"]) == (428, "if_match_required")
    garbled = await client.put(url, headers={**headers, "If-Match": "two"}, json={"settings": {}})
    assert garbled.status_code == 400
    v3 = await client.put(
        url, headers={**headers, "If-Match": "2"}, json={"settings": {"theme": "blue", "n": 3}}
    )
    assert v3.json()["version"] == 3
    rolled = await client.post(f"{url}/rollback/2", headers=headers)
    assert rolled.status_code == 200
    assert (rolled.json()["version"], rolled.json()["settings"]) == (4, {"theme": "dark"})
    versions = (await client.get(f"{url}/versions", headers=headers)).json()
    assert [v["version"] for v in versions] == [4, 3, 2, 1]
    assert versions[1]["settings"] == {"theme": "blue", "n": 3}
    nowhere = await client.post(f"{url}/rollback/99", headers=headers)
    assert (nowhere.status_code, nowhere.json()["code"]) == (404, "version_not_found")
    stale_rollback = await client.post(f"{url}/rollback/1", headers={**headers, "If-Match": "3"})
    assert stale_rollback.status_code == 412
    assert (await client.get(url, headers=headers)).json()["version"] == 4


async def test_who_may_change_settings(client: AsyncTestClient[OrgbaseApp]) -> None:
    org_id, people = await org_with_roles(client, ("member",))
    url = f"/v1/orgs/{org_id}/settings"
    member = bearer(people["member"][1]["access_token"])
    assert (await client.get(url, headers=member)).status_code == 200
    refused = await client.put(
        url, headers={**member, "If-Match": "1"}, json={"settings": {"x": 1}}
    )
    assert (refused.status_code, refused.json()["code"]) == (403, "role_too_low")
    assert (await client.post(f"{url}/rollback/1", headers=member)).status_code == 403


async def test_bad_settings_bodies(client: AsyncTestClient[OrgbaseApp]) -> None:
    org_id, people = await org_with_roles(client, ())
    url = f"/v1/orgs/{org_id}/settings"
    headers = {**bearer(people["owner"][1]["access_token"]), "If-Match": "1"}
    bodies: list[dict[str, object]] = [{"settings": [1, 2]}, {"settings": "x"}, {"other": {}}, {}]
    for body in bodies:
        response = await client.put(url, headers=headers, json=body)
        assert response.status_code == 400, body
    huge = await client.put(url, headers=headers, json={"settings": {"blob": "x" * 70000}})
    assert huge.status_code == 413
    assert (await client.get(url, headers=headers)).json()["version"] == 1
