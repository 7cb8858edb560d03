"""``current_password`` checks had no attempt limit: with a session alone (a stolen token,
an unlocked laptop), ``PUT /auth/v1/user`` and ``PATCH /v1/auth/user`` checked guesses of
the password as fast as they came.

They share the sign-in lockout now: the same counter per account, reserved before each
check, so guesses sent in parallel through both routes are checked at most
``lockout_failures`` times, and the password then stops signing in too until the lock
ends. The guesses go to a real gateway process over real connections."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest

from devstack import LocalStack
from orgbase.core.settings import Settings
from tests.security.test_lockout_race import FAILURES, STRICT
from tests.support.data import flush_redis_db
from tests.support.http import PASSWORD, bearer, unique_email
from tests.support.processes import serving
from tests.support.stack import server_env

pytestmark = pytest.mark.slow

GUESSES = 12


async def test_current_password_guesses_share_the_sign_in_lockout(
    stack: LocalStack, settings: Settings
) -> None:
    del settings
    await flush_redis_db(stack, 4)
    env = server_env(stack, ORGBASE_REDIS_DB="4", **STRICT)
    with serving(env) as base:
        email = unique_email("guessed")
        headers = {"apikey": stack.secrets["publishable"]}
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as http:
            made = await http.post("/v1/auth/signup", json={"email": email, "password": PASSWORD})
            assert made.status_code == 201
            grant = {"grant_type": "password", "email": email, "password": PASSWORD}
            session = (await http.post("/v1/auth/token", json=grant)).json()
            auth = bearer(session["access_token"])

            async def guess(n: int) -> int:
                body = {"password": "a new passphrase 123", "current_password": f"guess {n:03}"}
                if n % 2:
                    answer = await http.put("/auth/v1/user", headers=auth, json=body)
                else:
                    answer = await http.patch("/v1/auth/user", headers=auth, json=body)
                return answer.status_code

            statuses = Counter(await asyncio.gather(*(guess(n) for n in range(GUESSES))))
            right = await http.patch(
                "/v1/auth/user",
                headers=auth,
                json={"display_name": "x", "email": unique_email(), "current_password": PASSWORD},
            )
            signed_in = await http.post("/v1/auth/token", json=grant)
    assert statuses[403] <= FAILURES, statuses
    assert statuses[429] == GUESSES - statuses[403], statuses
    assert (right.status_code, right.json()["code"]) == (429, "account_locked")
    assert (signed_in.status_code, signed_in.json()["code"]) == (429, "account_locked")
