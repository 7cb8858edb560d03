"""Second factors, attacked with the password alone.

- A password raised itself to aal2: an aal1 session of an account with a verified factor
  enrolled a new factor, verified it, read an MFA-required org's data, deleted the
  victim's factor and replaced the recovery codes. Now (as GoTrue) enrolling, removing a
  verified factor and replacing the recovery codes need aal2 once a factor is verified;
  a recovery session or an impersonation enrols nothing; an unfinished enrolment is
  replaced by the next (one unverified factor per user), so none is left to finish later.
- TOTP guessing was unbounded across challenges (5 per challenge, new challenges free).
  Now every verification is a guess reserved against the factor's and the user's
  counters, race-free, which lock after 5 and 10 wrong codes.
- One code verified 4 times in parallel from 4 sessions. Now a time step is used once per
  factor (the factor's row is locked while the code is checked).

The attacks go to a real gateway process (``live_server``), in parallel where it counts.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pyotp
import pytest

from devstack import LocalStack
from orgbase.core.settings import Settings
from tests.support.data import make_platform_admin
from tests.support.http import PASSWORD, bearer, claims_of, password_grant, unique_email
from tests.support.mail import code_in
from tests.support.processes import serving
from tests.support.stack import server_env

Tokens = dict[str, Any]


@pytest.fixture
async def http(live_server: str, stack: LocalStack) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"apikey": stack.secrets["publishable"]}
    async with httpx.AsyncClient(base_url=live_server, headers=headers, timeout=60) as client:
        yield client


async def new_person(http: httpx.AsyncClient) -> tuple[str, Tokens]:
    email = unique_email("mfa")
    made = await http.post("/v1/auth/signup", json={"email": email, "password": PASSWORD})
    assert made.status_code == 201, made.text
    return email, await sign_in(http, email)


async def sign_in(http: httpx.AsyncClient, email: str, org_id: str | None = None) -> Tokens:
    answer = await http.post("/v1/auth/token", json=password_grant(email, org_id))
    assert answer.status_code == 200, answer.text
    tokens: Tokens = answer.json()
    return tokens


async def enroll(http: httpx.AsyncClient, token: str) -> httpx.Response:
    return await http.post("/auth/v1/factors", headers=bearer(token), json={})


async def verify(http: httpx.AsyncClient, token: str, factor_id: str, code: str) -> httpx.Response:
    challenge = await http.post(f"/auth/v1/factors/{factor_id}/challenge", headers=bearer(token))
    if challenge.status_code != 200:
        return challenge
    return await http.post(
        f"/auth/v1/factors/{factor_id}/verify",
        headers=bearer(token),
        json={"challenge_id": challenge.json()["id"], "code": code},
    )


async def step_up(http: httpx.AsyncClient, token: str) -> tuple[str, pyotp.TOTP, Tokens]:
    """Enrol and verify a factor: (factor id, its TOTP, the session's aal2 tokens)."""
    made = await enroll(http, token)
    assert made.status_code == 200, made.text
    totp = pyotp.TOTP(made.json()["totp"]["secret"])
    verified = await verify(http, token, made.json()["id"], totp.now())
    assert verified.status_code == 200, verified.text
    tokens: Tokens = verified.json()
    return made.json()["id"], totp, tokens


def refused(answer: httpx.Response, status: int, code: str) -> bool:
    return (answer.status_code, answer.json().get("code")) == (status, code)


async def test_a_password_alone_cannot_raise_itself(http: httpx.AsyncClient) -> None:
    email, victim = await new_person(http)
    factor_id, _, aal2 = await step_up(http, victim["access_token"])
    codes = aal2["recovery_codes"]
    org = await http.post(
        "/v1/orgs", headers=bearer(aal2["access_token"]), json={"name": "needs mfa"}
    )
    in_org = await http.post(
        "/v1/auth/token",
        json={
            "grant_type": "refresh_token",
            "refresh_token": aal2["refresh_token"],
            "org_id": org.json()["id"],
        },
    )
    policy = await http.put(
        f"/v1/orgs/{org.json()['id']}/auth-policy",
        headers=bearer(in_org.json()["access_token"]),
        json={"mfa_required": True},
    )
    assert policy.status_code == 200, policy.text

    attacker = (await sign_in(http, email, org.json()["id"]))["access_token"]
    assert refused(await enroll(http, attacker), 403, "insufficient_aal")
    removed = await http.delete(f"/auth/v1/factors/{factor_id}", headers=bearer(attacker))
    assert refused(removed, 403, "insufficient_aal")
    replaced = await http.post("/auth/v1/factors/recovery-codes", headers=bearer(attacker))
    assert refused(replaced, 403, "insufficient_aal")
    assert refused(await http.get("/v1/db/items", headers=bearer(attacker)), 403, "mfa_required")
    # Nothing changed: the victim's factor and recovery codes still work.
    user = (await http.get("/auth/v1/user", headers=bearer(attacker))).json()
    assert [(f["id"], f["status"]) for f in user["factors"]] == [(factor_id, "verified")]
    again = (await sign_in(http, email))["access_token"]
    assert (await verify(http, again, factor_id, codes[0])).status_code == 200


async def refresh(http: httpx.AsyncClient, tokens: Tokens, org_id: str) -> Tokens:
    answer = await http.post(
        "/v1/auth/token",
        json={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "org_id": org_id,
        },
    )
    assert answer.status_code == 200, answer.text
    refreshed: Tokens = answer.json()
    return refreshed


async def test_removing_the_last_factor_ends_aal2(http: httpx.AsyncClient) -> None:
    """An aal2 member removed their only factor; refreshes kept minting aal2 and an
    MFA-required org kept answering. Now every session of the account drops to aal1: a
    refresh says aal1, the org refuses it, and the data API (which reads the session row)
    refuses even the access token issued before the removal."""
    email, person = await new_person(http)
    factor_id, _, aal2 = await step_up(http, person["access_token"])
    org = await http.post("/v1/orgs", headers=bearer(aal2["access_token"]), json={"name": "m"})
    org_id = org.json()["id"]
    mine = await refresh(http, aal2, org_id)
    policy = await http.put(
        f"/v1/orgs/{org_id}/auth-policy",
        headers=bearer(mine["access_token"]),
        json={"mfa_required": True},
    )
    assert policy.status_code == 200, policy.text
    # A second session, raised with a recovery code.
    other = await sign_in(http, email, org_id)
    raised = await verify(http, other["access_token"], factor_id, aal2["recovery_codes"][0])
    assert raised.status_code == 200, raised.text
    other = await refresh(http, raised.json(), org_id)

    removed = await http.delete(
        f"/auth/v1/factors/{factor_id}", headers=bearer(mine["access_token"])
    )
    assert removed.status_code == 200, removed.text
    assert refused(
        await http.get("/v1/db/items", headers=bearer(mine["access_token"])), 403, "mfa_required"
    )
    for tokens in (mine, other):
        again = await refresh(http, tokens, org_id)
        assert claims_of(again["access_token"])["aal"] == "aal1"
        members = await http.get(
            f"/v1/orgs/{org_id}/members", headers=bearer(again["access_token"])
        )
        assert refused(members, 403, "mfa_required")


async def test_an_unfinished_enrolment_cannot_be_finished_later(http: httpx.AsyncClient) -> None:
    """The attacker (the password, no factor yet) starts an enrolment and keeps its
    secret; the victim then enrols a factor of their own."""
    email, victim = await new_person(http)
    attacker = (await sign_in(http, email))["access_token"]
    planted = (await enroll(http, attacker)).json()
    await step_up(http, victim["access_token"])
    kept = await verify(http, attacker, planted["id"], pyotp.TOTP(planted["totp"]["secret"]).now())
    assert refused(kept, 404, "mfa_factor_not_found")
    assert refused(await enroll(http, attacker), 403, "insufficient_aal")


async def test_enrolling_twice_leaves_one_unverified_factor(http: httpx.AsyncClient) -> None:
    _, person = await new_person(http)
    token = person["access_token"]
    first = (await enroll(http, token)).json()
    second = (await enroll(http, token)).json()
    factors = (await http.get("/auth/v1/user", headers=bearer(token))).json()["factors"]
    assert [(f["id"], f["status"]) for f in factors] == [(second["id"], "unverified")]
    stale = await verify(http, token, first["id"], pyotp.TOTP(first["totp"]["secret"]).now())
    assert refused(stale, 404, "mfa_factor_not_found")


async def test_no_one_reaches_a_factor_not_theirs_nor_one_no_id_names(
    http: httpx.AsyncClient,
) -> None:
    """Another account's factor, and an id that is no UUID, are the same 404 on every
    factor route (never a 500, nothing changed)."""
    _, victim = await new_person(http)
    factor_id, _, _ = await step_up(http, victim["access_token"])
    _, attacker = await new_person(http)
    token = attacker["access_token"]
    for target in (factor_id, "not-a-uuid", "'; DROP TABLE x; --"):
        challenged = await http.post(f"/auth/v1/factors/{target}/challenge", headers=bearer(token))
        assert refused(challenged, 404, "mfa_factor_not_found"), challenged.text
        verified = await http.post(
            f"/auth/v1/factors/{target}/verify",
            headers=bearer(token),
            json={"challenge_id": factor_id, "code": "123456"},
        )
        assert refused(verified, 404, "mfa_factor_not_found"), verified.text
        removed = await http.delete(f"/auth/v1/factors/{target}", headers=bearer(token))
        assert refused(removed, 404, "mfa_factor_not_found"), removed.text
    user = (await http.get("/auth/v1/user", headers=bearer(victim["access_token"]))).json()
    assert [(f["id"], f["status"]) for f in user["factors"]] == [(factor_id, "verified")]


async def test_recovery_sessions_and_impersonations_enrol_nothing(
    http: httpx.AsyncClient, admin_connection: asyncpg.Connection, settings: Settings
) -> None:
    email, _ = await new_person(http)
    assert (await http.post("/auth/v1/recover", json={"email": email})).status_code == 200

    async def mailed() -> str:
        for _ in range(100):
            body = await admin_connection.fetchval(
                "SELECT body FROM orgbase.outbox WHERE recipient = $1"
                " AND subject = 'Reset your password' ORDER BY id DESC LIMIT 1",
                email,
            )
            if body:
                return str(body)
            await asyncio.sleep(0.1)
        raise AssertionError("no recovery mail in the outbox")

    code = code_in({"body": await mailed()})
    recovered = await http.post(
        "/auth/v1/verify", json={"type": "recovery", "email": email, "token": code}
    )
    assert recovered.status_code == 200, recovered.text
    assert refused(
        await enroll(http, recovered.json()["access_token"]), 403, "reauthentication_needed"
    )

    admin_email, admin = await new_person(http)
    await make_platform_admin(settings, admin["user"]["id"])
    admin_token = (await sign_in(http, admin_email))["access_token"]
    org = await http.post("/v1/orgs", headers=bearer(admin_token), json={"name": "looked at"})
    looked = await http.post(
        f"/v1/platform/orgs/{org.json()['id']}/impersonate",
        headers=bearer(admin_token),
        json={"reason": "support ticket 7"},
    )
    assert looked.status_code == 201, looked.text
    impersonation = looked.json()["access_token"]
    assert refused(await enroll(http, impersonation), 403, "impersonation_read_only")
    changed = await http.put(
        "/auth/v1/user", headers=bearer(impersonation), json={"data": {"a": 1}}
    )
    assert refused(changed, 403, "impersonation_read_only")


async def wrong_guesses(
    http: httpx.AsyncClient, tokens: list[str], factor_id: str, totp: pyotp.TOTP, count: int
) -> Counter[int]:
    """``count`` wrong codes at once, each in a fresh challenge, spread over sessions."""
    right = {totp.at(time.time() + drift) for drift in (-30, 0, 30)}
    wrong = [c for c in (f"{n:06d}" for n in range(100000, 200000, 7)) if c not in right]

    async def one(n: int) -> int:
        answer = await verify(http, tokens[n % len(tokens)], factor_id, wrong[n])
        return answer.status_code

    return Counter(await asyncio.gather(*(one(n) for n in range(count))))


async def test_totp_guessing_locks_across_challenges_and_sessions(
    http: httpx.AsyncClient,
) -> None:
    email, victim = await new_person(http)
    factors = []
    aal2 = victim
    for _ in range(3):
        factor_id, totp, aal2 = await step_up(http, aal2["access_token"])
        factors.append((factor_id, totp))
    sessions = [(await sign_in(http, email))["access_token"] for _ in range(3)]
    first = await wrong_guesses(http, sessions, *factors[0], count=12)
    assert first[403] <= 5, first
    assert first[429] == 12 - first[403], first
    # The factor is locked: its right code too.
    locked = await verify(http, sessions[0], factors[0][0], factors[0][1].now())
    assert refused(locked, 429, "mfa_locked")
    # Per user across factors: 5 more on the second, then the third is locked untried.
    second = await wrong_guesses(http, sessions, *factors[1], count=5)
    assert second[403] + second[429] == 5, second
    untried = await verify(http, sessions[1], factors[2][0], factors[2][1].now())
    assert refused(untried, 429, "mfa_locked")


async def test_one_code_verifies_once_across_parallel_sessions(http: httpx.AsyncClient) -> None:
    email, victim = await new_person(http)
    factor_id, totp, _ = await step_up(http, victim["access_token"])
    sessions = [(await sign_in(http, email))["access_token"] for _ in range(4)]
    challenges = [
        (await http.post(f"/auth/v1/factors/{factor_id}/challenge", headers=bearer(t))).json()
        for t in sessions
    ]
    code = totp.at(time.time() + 30)  # the next step: not used by the enrolment

    async def use(token: str, challenge: dict[str, Any]) -> int:
        answer = await http.post(
            f"/auth/v1/factors/{factor_id}/verify",
            headers=bearer(token),
            json={"challenge_id": challenge["id"], "code": code},
        )
        return answer.status_code

    statuses = Counter(
        await asyncio.gather(*(use(t, c) for t, c in zip(sessions, challenges, strict=True)))
    )
    assert statuses == Counter({200: 1, 403: 3}), statuses


@pytest.mark.slow
async def test_without_redis_postgresql_keeps_the_count(
    fault_stack: LocalStack, fault_settings: Settings
) -> None:
    """The reservation falls back to PostgreSQL (as the sign-in lockout's does)."""
    del fault_settings
    env = server_env(fault_stack, fault_stack.layout.database)
    with serving(env) as base:
        headers = {"apikey": fault_stack.secrets["publishable"]}
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as http:
            email, victim = await new_person(http)
            factor_id, totp, _ = await step_up(http, victim["access_token"])
            sessions = [(await sign_in(http, email))["access_token"] for _ in range(2)]
            await asyncio.to_thread(fault_stack.redis.stop_nodes)
            try:
                guessed = await wrong_guesses(http, sessions, factor_id, totp, count=12)
                locked = await verify(http, sessions[0], factor_id, totp.now())
            finally:
                await asyncio.to_thread(fault_stack.redis.start)
    assert guessed[403] <= 5, guessed
    assert refused(locked, 429, "mfa_locked")
