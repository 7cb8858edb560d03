"""Platform admins: made by the CLI, list orgs and users, read an org only through an
audited, read-only impersonation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from litestar.testing import AsyncTestClient

from devstack import LocalStack
from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp
from tests.support.http import PASSWORD, bearer, org_with_roles, sign_in, unique_email
from tests.support.stack import TEST_DATABASE, TEST_OVERRIDES

ORGBASE = str(Path(sys.executable).parent / "orgbase")


def cli_admin_create(stack: LocalStack, email: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORGBASE_")}
    env.update(stack.env(database=TEST_DATABASE))
    env.update(TEST_OVERRIDES)
    env["ORGBASE_LOCAL_ADMIN_PASSWORD"] = PASSWORD
    return subprocess.run(
        [ORGBASE, "admin", "create", "--email", email],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_platform_admin_and_impersonation(
    stack: LocalStack, settings: Settings, client: AsyncTestClient[OrgbaseApp]
) -> None:
    email = unique_email("operator")
    created = cli_admin_create(stack, email)
    assert created.returncode == 0, created.stderr
    assert "new account" in created.stdout
    again = cli_admin_create(stack, email)
    assert again.returncode == 0
    assert "new account" not in again.stdout
    operator = await sign_in(client, email)
    headers = bearer(operator["access_token"])
    org_id, people = await org_with_roles(client, ("member",))
    orgs = await client.get("/v1/platform/orgs", headers=headers, params={"limit": 500})
    assert orgs.status_code == 200
    assert org_id in {o["id"] for o in orgs.json()}
    users = await client.get("/v1/platform/users", headers=headers)
    assert email in {u["email"] for u in users.json()}
    # Not a member: no access to the org's data without an impersonation.
    assert (await client.get(f"/v1/orgs/{org_id}/members", headers=headers)).status_code == 404
    no_reason = await client.post(
        f"/v1/platform/orgs/{org_id}/impersonate", headers=headers, json={"reason": ""}
    )
    assert no_reason.status_code == 400
    imp = await client.post(
        f"/v1/platform/orgs/{org_id}/impersonate",
        headers=headers,
        json={"reason": "ticket #42: missing rows"},
    )
    assert imp.status_code == 201, imp.text
    imp_headers = bearer(imp.json()["access_token"])
    assert imp.json()["role"] == "viewer"
    members = await client.get(f"/v1/orgs/{org_id}/members", headers=imp_headers)
    assert members.status_code == 200
    # Read-only, and only that org.
    assert (
        await client.patch(f"/v1/orgs/{org_id}", headers=imp_headers, json={"name": "x"})
    ).status_code == 403
    other_org, _ = await org_with_roles(client, ())
    assert (await client.get(f"/v1/orgs/{other_org}", headers=imp_headers)).status_code == 404
    # The org's own admins see who looked and why.
    owner_headers = bearer(people["owner"][1]["access_token"])
    audit = (
        await client.get(
            f"/v1/orgs/{org_id}/audit", headers=owner_headers, params={"action": "platform.*"}
        )
    ).json()["items"]
    assert len(audit) == 1
    assert audit[0]["details"]["reason"] == "ticket #42: missing rows"


async def test_ordinary_users_are_not_platform_admins(client: AsyncTestClient[OrgbaseApp]) -> None:
    org_id, people = await org_with_roles(client, ())
    headers = bearer(people["owner"][1]["access_token"])
    for method, url in (
        ("GET", "/v1/platform/orgs"),
        ("GET", "/v1/platform/users"),
        ("POST", f"/v1/platform/orgs/{org_id}/impersonate"),
    ):
        response = await client.request(
            method, url, headers=headers, json={"reason": "just curious"}
        )
        assert (response.status_code, response.json()["code"]) == (403, "platform_admin_required")
