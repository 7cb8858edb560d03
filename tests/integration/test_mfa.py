"""TOTP second factors and the org policy "members must use MFA": enrolment, challenge,
verification (aal2), single-use codes, dead challenges after N wrong guesses, recovery
codes, and no way around the policy through refresh, API keys, the data API, RLS or an
impersonation."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pyotp
import pytest
from litestar.testing import AsyncTestClient

from devstack import LocalStack
from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp, create_app
from tests.integration.test_platform_admin import cli_admin_create
from tests.support.http import add_member, bearer, create_org, new_user, sign_in, unique_email
from tests.support.stack import with_overrides

Client = AsyncTestClient[OrgbaseApp]
ATTEMPTS = 3
NOTES = """
CREATE TABLE IF NOT EXISTS api.mfa_notes (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    body text NOT NULL
);
SELECT orgbase.enable_tenancy('api.mfa_notes');
DROP POLICY IF EXISTS needs_aal2 ON api.mfa_notes;
CREATE POLICY needs_aal2 ON api.mfa_notes AS RESTRICTIVE FOR ALL TO orgbase_api
    USING (orgbase.current_aal() = 'aal2') WITH CHECK (orgbase.current_aal() = 'aal2');
"""


@pytest.fixture(scope="module")
async def mfa_client(settings: Settings, stack: LocalStack) -> AsyncIterator[Client]:
    connection = await asyncpg.connect(settings.database.migration_url)
    try:
        await connection.execute(NOTES)
    finally:
        await connection.close()
    # The per-factor and per-user locks across challenges are tested in
    # tests/security/test_mfa_attacks.py; here a challenge's own limit is.
    configured = with_overrides(
        settings,
        auth={
            "code_attempts": ATTEMPTS,
            "mfa_lockout_failures": 100,
            "mfa_user_lockout_failures": 100,
        },
    )
    headers = {"apikey": stack.secrets["publishable"]}
    async with AsyncTestClient(app=create_app(configured)) as client:
        client.headers.update(headers)
        yield client


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


async def enroll(client: Client, token: str) -> tuple[str, pyotp.TOTP]:
    answer = await client.post(
        "/auth/v1/factors", headers=bearer(token), json={"factor_type": "totp"}
    )
    assert answer.status_code == 200, answer.text
    factor = answer.json()
    assert factor["totp"]["uri"].startswith("otpauth://totp/")
    assert factor["totp"]["qr_code"].startswith("<svg")
    return factor["id"], pyotp.TOTP(factor["totp"]["secret"])


async def verify(
    client: Client, token: str, factor_id: str, code: str
) -> tuple[int, dict[str, Any]]:
    challenge = await client.post(
        f"/auth/v1/factors/{factor_id}/challenge", headers=bearer(token), json={}
    )
    assert challenge.status_code == 200, challenge.text
    answer = await client.post(
        f"/auth/v1/factors/{factor_id}/verify",
        headers=bearer(token),
        json={"challenge_id": challenge.json()["id"], "code": code},
    )
    return answer.status_code, answer.json()


async def step_up(client: Client, tokens: dict[str, Any]) -> dict[str, Any]:
    """Enroll and verify a factor: the session's new (aal2) tokens."""
    factor_id, totp = await enroll(client, tokens["access_token"])
    status, session = await verify(client, tokens["access_token"], factor_id, totp.now())
    assert status == 200, session
    assert claims(session["access_token"])["aal"] == "aal2"
    return session


async def test_totp_codes_are_single_use_and_challenges_die(mfa_client: Client) -> None:
    client = mfa_client
    _, tokens = await new_user(client)
    token = tokens["access_token"]
    factor_id, totp = await enroll(client, token)
    code = totp.now()
    status, session = await verify(client, token, factor_id, code)
    assert status == 200
    assert len(session["recovery_codes"]) == 10
    amr = [entry["method"] for entry in claims(session["access_token"])["amr"]]
    assert amr == ["password", "mfa/totp"]
    # The same code again (a replay within its 30 s window): refused.
    status, refused = await verify(client, token, factor_id, code)
    assert status == 403
    assert refused["code"] == "mfa_verification_failed"

    # Parallel wrong guesses on one challenge: after ATTEMPTS the challenge is dead, the
    # right code then fails too.
    challenge = await client.post(
        f"/auth/v1/factors/{factor_id}/challenge", headers=bearer(token), json={}
    )
    challenge_id = challenge.json()["id"]
    wrong = [f"{(int(totp.now()) + n) % 1_000_000:06d}" for n in range(50, 60)]

    async def guess(guessed: str) -> int:
        answer = await client.post(
            f"/auth/v1/factors/{factor_id}/verify",
            headers=bearer(token),
            json={"challenge_id": challenge_id, "code": guessed},
        )
        return answer.status_code

    statuses = await asyncio.gather(*(guess(g) for g in wrong))
    assert statuses.count(403) <= ATTEMPTS
    assert set(statuses) <= {403, 404}
    # Dead: even a right answer (a recovery code) is not looked at.
    assert await guess(session["recovery_codes"][0]) == 404

    # A recovery code works once, in a fresh challenge.
    status, _ = await verify(client, token, factor_id, session["recovery_codes"][0])
    assert status == 200
    status, _ = await verify(client, token, factor_id, session["recovery_codes"][0])
    assert status == 403
    for bad in ("\uff11\uff12\uff13\uff14\uff15\uff16", "", "x" * 64):
        status, _ = await verify(client, token, factor_id, bad)
        assert status in (400, 403), bad


async def test_unenrolling_a_verified_factor_needs_aal2(mfa_client: Client) -> None:
    client = mfa_client
    user, tokens = await new_user(client)
    session = await step_up(client, tokens)
    factor_id = (await client.get("/auth/v1/user", headers=bearer(tokens["access_token"]))).json()[
        "factors"
    ][0]["id"]
    # A fresh password session (aal1) cannot remove the factor.
    aal1 = await sign_in(client, user["email"])
    refused = await client.delete(
        f"/auth/v1/factors/{factor_id}", headers=bearer(aal1["access_token"])
    )
    assert refused.status_code == 403
    assert refused.json()["code"] == "insufficient_aal"
    removed = await client.delete(
        f"/auth/v1/factors/{factor_id}", headers=bearer(session["access_token"])
    )
    assert removed.status_code == 200


async def test_org_requiring_mfa_refuses_aal1_everywhere(
    mfa_client: Client, stack: LocalStack
) -> None:
    client = mfa_client
    owner, owner_tokens = await new_user(client)
    org_id = await create_org(client, owner_tokens, "mfa org")
    member, _ = await new_user(client)
    await add_member(client, owner_tokens, org_id, member, "member")
    owner_in_org = await sign_in(client, owner["email"], org_id)

    # Requiring MFA needs the admin's own aal2.
    policy = f"/v1/orgs/{org_id}/auth-policy"
    refused = await client.put(
        policy, headers=bearer(owner_in_org["access_token"]), json={"mfa_required": True}
    )
    assert refused.status_code == 403
    assert refused.json()["code"] == "insufficient_aal"
    owner_aal2 = await step_up(client, owner_in_org)
    assert claims(owner_aal2["access_token"])["org"] == org_id
    turned_on = await client.put(
        policy, headers=bearer(owner_aal2["access_token"]), json={"mfa_required": True}
    )
    assert turned_on.status_code == 200, turned_on.text
    key = await client.post(
        f"/v1/orgs/{org_id}/api-keys",
        headers=bearer(owner_aal2["access_token"]),
        json={"name": "server", "role": "member"},
    )
    assert key.status_code == 201, key.text

    # The member's password session: refused on org routes, the data API, after a refresh.
    member_tokens = await sign_in(client, member["email"], org_id)
    auth = bearer(member_tokens["access_token"])
    for path in (f"/v1/orgs/{org_id}/members", "/v1/db/items", "/rest/v1/items", policy):
        answer = await client.get(path, headers=auth)
        assert answer.status_code == 403, path
        assert answer.json()["code"] == "mfa_required", path
    inserted = await client.post("/v1/db/items", headers=auth, json={"title": "x"})
    assert inserted.status_code == 403
    refreshed = await client.post(
        "/v1/auth/token",
        json={"grant_type": "refresh_token", "refresh_token": member_tokens["refresh_token"]},
    )
    assert claims(refreshed.json()["access_token"])["aal"] == "aal1"
    again = await client.get("/v1/db/items", headers=bearer(refreshed.json()["access_token"]))
    assert again.status_code == 403
    # A token that claims aal2 but was not signed by us: refused as a token.
    header, _, signature = member_tokens["access_token"].split(".")
    forged_claims = {**claims(member_tokens["access_token"]), "aal": "aal2"}
    forged_payload = base64.urlsafe_b64encode(json.dumps(forged_claims).encode()).rstrip(b"=")
    forged = f"{header}.{forged_payload.decode()}.{signature}"
    assert (await client.get("/v1/db/items", headers=bearer(forged))).status_code == 401

    # The org's API key (made by an aal2 admin) still works: server-to-server.
    with_key = await client.get("/v1/db/items", headers=bearer(key.json()["key"]))
    assert with_key.status_code == 200

    # The member steps up: the same session now reaches the org.
    member_aal2 = await step_up(client, refreshed.json())
    ok = await client.get("/v1/db/items", headers=bearer(member_aal2["access_token"]))
    assert ok.status_code == 200
    members = await client.get(
        f"/v1/orgs/{org_id}/members", headers=bearer(member_aal2["access_token"])
    )
    assert members.status_code == 200

    # A platform admin's password session cannot impersonate into the org: refused when
    # asked for, as its use would be.
    operator_email = unique_email("mfa-operator")
    assert cli_admin_create(stack, operator_email).returncode == 0
    operator = await sign_in(client, operator_email)
    imp = await client.post(
        f"/v1/platform/orgs/{org_id}/impersonate",
        headers=bearer(operator["access_token"]),
        json={"reason": "ticket #7"},
    )
    assert (imp.status_code, imp.json()["code"]) == (403, "mfa_required"), imp.text


async def test_rls_reads_the_assurance_level(mfa_client: Client) -> None:
    client = mfa_client
    owner, tokens = await new_user(client)
    org_id = await create_org(client, tokens, "aal notes")
    in_org = await sign_in(client, owner["email"], org_id)
    aal1 = bearer(in_org["access_token"])
    refused = await client.post("/v1/db/mfa_notes", headers=aal1, json={"body": "secret"})
    assert refused.status_code in (401, 403), refused.text
    aal2_session = await step_up(client, in_org)
    aal2 = bearer(aal2_session["access_token"])
    written = await client.post("/v1/db/mfa_notes", headers=aal2, json={"body": "secret"})
    assert written.status_code == 201, written.text
    assert len((await client.get("/v1/db/mfa_notes", headers=aal2)).json()) == 1
    # Another (aal1) session of the same user in the same org sees nothing.
    other = await sign_in(client, owner["email"], org_id)
    assert (
        await client.get("/v1/db/mfa_notes", headers=bearer(other["access_token"]))
    ).json() == []
