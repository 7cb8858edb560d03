"""Values PostgreSQL or Redis cannot take are the caller's 400, never a 500 (found by the
API fuzzer): NUL characters in text, escapes jsonb refuses, numbers beyond a column."""

from __future__ import annotations

import pytest
from litestar.testing import AsyncTestClient

from orgbase.platform.app import OrgbaseApp
from tests.support.http import bearer, create_org, new_user, sign_in

Client = AsyncTestClient[OrgbaseApp]


@pytest.fixture
async def owner(client: Client) -> tuple[str, dict[str, str]]:
    user, tokens = await new_user(client)
    org_id = await create_org(client, tokens, "values")
    scoped = await sign_in(client, user["email"], org_id)
    return org_id, bearer(scoped["access_token"])


async def test_nul_characters_in_names_are_400(
    client: Client, owner: tuple[str, dict[str, str]]
) -> None:
    org_id, headers = owner
    for response in (
        await client.post("/v1/orgs", headers=headers, json={"name": "a\u0000b"}),
        await client.patch(f"/v1/orgs/{org_id}", headers=headers, json={"name": "a\u0000b"}),
        await client.post(f"/v1/orgs/{org_id}/api-keys", headers=headers, json={"name": "k\u0000"}),
    ):
        assert response.status_code == 400, response.text
        assert response.json()["code"] in {"invalid_value", "validation_failed"}
    unchanged = await client.get(f"/v1/orgs/{org_id}", headers=headers)
    assert unchanged.json()["name"] == "values"


async def test_settings_jsonb_cannot_hold_nul(
    client: Client, owner: tuple[str, dict[str, str]]
) -> None:
    org_id, headers = owner
    current = (await client.get(f"/v1/orgs/{org_id}/settings", headers=headers)).json()
    response = await client.put(
        f"/v1/orgs/{org_id}/settings",
        headers={**headers, "If-Match": str(current["version"])},
        json={"settings": {"motto": "nul \u0000 here"}},
    )
    assert (response.status_code, response.json()["code"]) == (400, "invalid_value")
    after = (await client.get(f"/v1/orgs/{org_id}/settings", headers=headers)).json()
    assert after["version"] == current["version"]


async def test_numbers_beyond_their_column_are_400(
    client: Client, owner: tuple[str, dict[str, str]]
) -> None:
    org_id, headers = owner
    rollback = await client.post(f"/v1/orgs/{org_id}/settings/rollback/{2**40}", headers=headers)
    assert rollback.status_code == 400
    audit = await client.get(f"/v1/orgs/{org_id}/audit?before={2**70}", headers=headers)
    assert audit.status_code == 400
    increment = await client.post("/v1/kv/n/increment", headers=headers, json={"by": 2**70})
    assert increment.status_code == 400


async def test_nul_in_an_audit_filter_is_400(
    client: Client, owner: tuple[str, dict[str, str]]
) -> None:
    org_id, headers = owner
    response = await client.get(f"/v1/orgs/{org_id}/audit?table=%00", headers=headers)
    assert (response.status_code, response.json()["code"]) == (400, "invalid_value")
