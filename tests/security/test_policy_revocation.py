"""An org's sign-in policy changes travel like revocations.

Open WebSockets and event streams of a password-only (aal1) member kept receiving after
the org turned ``mfa_required`` on (until the periodic re-check, 30 s), and every gateway
process kept its copy of the policy for up to 2 s. Now the change is published on the
revocation path: on every replica the policy copy is dropped and the org's sockets of
sessions short of the new policy close at once (4403), while an aal2 member's stay open.
The sockets are held by one gateway process (``live_server``) and the change is made
through another (the in-process ``client``), so it can only arrive through Redis. (The
read replicas' half is in tests/integration/test_read_replicas.py.)
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from devstack import LocalStack
from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp, create_app
from tests.integration.test_mfa import step_up
from tests.integration.test_platform_admin import cli_admin_create
from tests.security.test_socket_revocation import AT_ONCE, closed_with, connect, publish
from tests.support.http import (
    add_member,
    admin_at_aal2,
    bearer,
    create_org,
    new_user,
    next_sse_data,
    sign_in,
    sign_up,
    unique_email,
)
from tests.support.waiting import eventually

Client = AsyncTestClient[OrgbaseApp]
POLICY_COPY_SECONDS = 2.0
"""How long a gateway process trusted its copy of an org's policy without a notice."""


@pytest.fixture(scope="module")
async def client(settings: Settings, stack: LocalStack) -> AsyncIterator[Client]:
    """The gateway the changes are made through (sending the publishable key, which
    GoTrue's routes want: factors are enrolled there)."""
    async with AsyncTestClient(app=create_app(settings)) as gateway:
        gateway.headers.update({"apikey": stack.secrets["publishable"]})
        yield gateway


@pytest.fixture
async def http(live_server: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server, timeout=10) as client:
        yield client


async def mfa_org(client: Client) -> dict[str, Any]:
    """An org whose owner is at aal2 and whose member signed in with a password (aal1)."""
    owner, owner_tokens = await new_user(client)
    org_id = await create_org(client, owner_tokens, "policy org")
    member, _ = await new_user(client)
    await add_member(client, owner_tokens, org_id, member, "member")
    owner_aal2 = await step_up(client, await sign_in(client, owner["email"], org_id))
    member_tokens = await sign_in(client, member["email"], org_id)
    return {
        "id": org_id,
        "owner": owner_aal2["access_token"],
        "member": member_tokens["access_token"],
    }


async def require_mfa(client: Client, org: dict[str, Any]) -> None:
    answer = await client.put(
        f"/v1/orgs/{org['id']}/auth-policy",
        headers=bearer(org["owner"]),
        json={"mfa_required": True},
    )
    assert answer.status_code == 200, answer.text


async def test_requiring_mfa_closes_aal1_sockets_at_once(
    live_server: str, http: httpx.AsyncClient, client: Client
) -> None:
    org = await mfa_org(client)
    member_socket = await connect(live_server, org["member"])
    owner_socket = await connect(live_server, org["owner"])
    async with http.stream(
        "GET", "/v1/realtime/sse", params={"channels": "chat"}, headers=bearer(org["member"])
    ) as stream:
        lines = stream.aiter_lines()
        assert (await next_sse_data(lines))["type"] == "subscribed"
        assert (await publish(owner_socket))["type"] == "published"
        assert (await next_sse_data(lines))["type"] == "message"

        await require_mfa(client, org)
        assert await closed_with(member_socket) == 4403
        # The stream ends, and what is published after the change never reaches it.
        assert (await publish(owner_socket))["type"] == "published"
        ended = await next_sse_data(lines, within=AT_ONCE)
        assert ended["type"] == "closed", ended
        assert "second factor" in ended["reason"]
    # The aal2 owner's socket stays open and keeps working.
    assert (await publish(owner_socket))["type"] == "published"
    await owner_socket.close()


async def test_every_gateway_drops_its_copy_of_the_policy_at_once(
    http: httpx.AsyncClient, client: Client
) -> None:
    org = await mfa_org(client)
    members = f"/v1/orgs/{org['id']}/members"
    # The other process now holds a copy of the org's policy (no MFA).
    assert (await http.get(members, headers=bearer(org["member"]))).status_code == 200
    await require_mfa(client, org)

    async def refused() -> bool:
        answer = await http.get(members, headers=bearer(org["member"]))
        return answer.status_code == 403 and answer.json()["code"] == "mfa_required"

    # Well before the copy would have expired by itself.
    await eventually(refused, within=POLICY_COPY_SECONDS / 2, interval=0.05, what="refused")


async def test_verifying_an_sso_domain_closes_its_password_sessions_sockets(
    live_server: str, client: Client, stack: LocalStack
) -> None:
    """Once the org's domain is verified, its users must come through the org's SSO: a
    member of that domain signed in with a password loses their open socket at once; a
    member of another domain keeps theirs."""
    domain = f"{uuid.uuid4().hex[:12]}.test"
    owner, owner_tokens = await new_user(client)
    org_id = await create_org(client, owner_tokens, "sso policy org")
    bound = await sign_up(client, f"member@{domain}")
    other, _ = await new_user(client)
    for user in (bound, other):
        await add_member(client, owner_tokens, org_id, user, "member")
    bound_socket = await connect(
        live_server, (await sign_in(client, bound["email"], org_id))["access_token"]
    )
    other_socket = await connect(
        live_server, (await sign_in(client, other["email"], org_id))["access_token"]
    )
    # Claiming a domain takes an owner at aal2.
    owner_in_org = (await admin_at_aal2(client, await sign_in(client, owner["email"], org_id)))[
        "access_token"
    ]
    claimed = await client.post(
        f"/v1/orgs/{org_id}/sso/domains", headers=bearer(owner_in_org), json={"domain": domain}
    )
    assert claimed.status_code in (200, 201), claimed.text
    operator_email = unique_email("sso-operator")
    assert cli_admin_create(stack, operator_email).returncode == 0
    operator = (await sign_in(client, operator_email))["access_token"]
    verified = await client.post(
        f"/v1/platform/sso-domains/{domain}/claims/{org_id}/verify", headers=bearer(operator)
    )
    assert verified.status_code in (200, 201), verified.text
    assert await closed_with(bound_socket) == 4403
    await other_socket.send(json.dumps({"type": "ping"}))
    assert json.loads(await asyncio.wait_for(other_socket.recv(), AT_ONCE))["type"] == "pong"
    await other_socket.close()


async def test_relaxing_the_policy_closes_nothing(live_server: str, client: Client) -> None:
    org = await mfa_org(client)
    await require_mfa(client, org)
    socket = await connect(live_server, org["owner"])
    turned_off = await client.put(
        f"/v1/orgs/{org['id']}/auth-policy",
        headers=bearer(org["owner"]),
        json={"mfa_required": False},
    )
    assert turned_off.status_code == 200
    # Still open after the notice went round: it answers, and publishes.
    await asyncio.sleep(0.3)
    assert (await publish(socket))["type"] == "published"
    await socket.close()
