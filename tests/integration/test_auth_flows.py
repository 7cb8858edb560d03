"""Accounts, sign-in, sessions, logout scopes, refresh rotation, password changes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp, create_app
from tests.support.data import make_org, owner_connection
from tests.support.http import (
    PASSWORD,
    assert_revoked,
    bearer,
    new_user,
    password_grant,
    sign_in,
    sign_up,
    unique_email,
    user_status,
)
from tests.support.redis_modes import both_modes_client, both_modes_settings  # noqa: F401 (fixtures)
from tests.support.stack import with_overrides


async def test_sign_up_normalises_and_hides_duplicates(
    client: AsyncTestClient[OrgbaseApp], admin_connection: asyncpg.Connection
) -> None:
    email = unique_email("Mixed.Case")
    user = await sign_up(client, "  " + email.upper() + " ")
    assert user["email"] == email.lower()
    assert "password" not in str(user).lower()
    # A second sign-up looks like a first one (a stand-in user), changes nothing, and
    # mails the address's owner instead.
    again = await client.post(
        "/v1/auth/signup", json={"email": email, "password": "another passphrase"}
    )
    assert again.status_code == 201
    assert again.json().keys() == user.keys()
    assert again.json()["email"] == email.lower()
    assert again.json()["id"] != user["id"]
    await sign_in(client, email)
    subjects = await admin_connection.fetch(
        "SELECT subject FROM orgbase.outbox WHERE recipient = $1 ORDER BY id", email.lower()
    )
    assert [r["subject"] for r in subjects] == [
        "Confirm your email address",
        "You already have an account",
    ]


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("short1!", "at least"),
        ("password123", "commonly used"),
        ("aaaaaaaaaaaaaaa", "distinct"),
    ],
)
async def test_weak_passwords_are_refused(
    client: AsyncTestClient[OrgbaseApp], password: str, rule: str
) -> None:
    response = await client.post(
        "/v1/auth/signup", json={"email": unique_email(), "password": password}
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "weak_password"
    assert any(rule in text for text in body["details"]["rules"])


async def test_the_email_cannot_be_the_password(client: AsyncTestClient[OrgbaseApp]) -> None:
    email = unique_email()
    response = await client.post("/v1/auth/signup", json={"email": email, "password": email})
    assert response.json()["code"] == "weak_password"


@pytest.mark.parametrize("email", ["not-an-email", "a@b", "two@@example.test", "x" * 330])
async def test_bad_emails_are_refused(client: AsyncTestClient[OrgbaseApp], email: str) -> None:
    response = await client.post("/v1/auth/signup", json={"email": email, "password": PASSWORD})
    assert response.status_code == 400
    assert response.json()["code"] in {"invalid_email", "validation_failed"}


async def test_unknown_fields_and_missing_fields_are_400(
    client: AsyncTestClient[OrgbaseApp],
) -> None:
    extra = await client.post(
        "/v1/auth/signup", json={"email": unique_email(), "password": PASSWORD, "admin": True}
    )
    assert extra.status_code == 400
    missing = await client.post("/v1/auth/token", json={"grant_type": "password"})
    assert missing.status_code == 400
    assert missing.json()["code"] == "validation_failed"
    assert "email" in missing.json()["details"][0]["message"]
    unknown_grant = await client.post("/v1/auth/token", json={"grant_type": "magic"})
    assert unknown_grant.status_code == 400


async def test_sign_in_and_read_the_user(client: AsyncTestClient[OrgbaseApp]) -> None:
    user, tokens = await new_user(client)
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == 900
    me = await client.get("/v1/auth/user", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200
    assert me.json()["id"] == user["id"]


async def test_wrong_password_and_unknown_email_look_the_same(
    client: AsyncTestClient[OrgbaseApp],
) -> None:
    user = await sign_up(client)
    wrong = await client.post(
        "/v1/auth/token",
        json={"grant_type": "password", "email": user["email"], "password": "not the password"},
    )
    unknown = await client.post(
        "/v1/auth/token",
        json={"grant_type": "password", "email": unique_email(), "password": PASSWORD},
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["code"] == unknown.json()["code"] == "invalid_credentials"
    assert wrong.json()["message"] == unknown.json()["message"]


async def test_logout_takes_effect_on_the_next_request(client: AsyncTestClient[OrgbaseApp]) -> None:
    _, tokens = await new_user(client)
    headers = bearer(tokens["access_token"])
    assert await user_status(client, headers) == 200
    assert (await client.post("/v1/auth/logout", headers=headers)).status_code == 204
    await assert_revoked(client, headers)
    refreshed = await client.post(
        "/v1/auth/token",
        json={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert refreshed.status_code == 401


async def test_logout_scopes(client: AsyncTestClient[OrgbaseApp]) -> None:
    user, first = await new_user(client)
    second = await sign_in(client, user["email"])
    third = await sign_in(client, user["email"])
    others = await client.post(
        "/v1/auth/logout", headers=bearer(first["access_token"]), json={"scope": "others"}
    )
    assert others.status_code == 204
    assert await user_status(client, bearer(first["access_token"])) == 200
    for tokens in (second, third):
        assert await user_status(client, bearer(tokens["access_token"])) == 401
    fourth = await sign_in(client, user["email"])
    everywhere = await client.post(
        "/v1/auth/logout", headers=bearer(fourth["access_token"]), json={"scope": "global"}
    )
    assert everywhere.status_code == 204
    for tokens in (first, fourth):
        assert await user_status(client, bearer(tokens["access_token"])) == 401


async def test_sessions_list_and_revoke(client: AsyncTestClient[OrgbaseApp]) -> None:
    user, first = await new_user(client)
    second = await sign_in(client, user["email"])
    listed = await client.get("/v1/auth/sessions", headers=bearer(first["access_token"]))
    assert listed.status_code == 200
    sessions = listed.json()
    assert len(sessions) == 2
    assert sum(1 for s in sessions if s["current"]) == 1
    other = next(s for s in sessions if not s["current"])
    revoked = await client.delete(
        f"/v1/auth/sessions/{other['id']}", headers=bearer(first["access_token"])
    )
    assert revoked.status_code == 204
    assert await user_status(client, bearer(second["access_token"])) == 401
    # Someone else's session id is "not found", and nothing changes.
    _, stranger = await new_user(client)
    current = next(s for s in sessions if s["current"])
    attempt = await client.delete(
        f"/v1/auth/sessions/{current['id']}", headers=bearer(stranger["access_token"])
    )
    assert attempt.status_code == 404
    assert await user_status(client, bearer(first["access_token"])) == 200


async def test_refresh_rotates_the_token(client: AsyncTestClient[OrgbaseApp]) -> None:
    _, tokens = await new_user(client)
    response = await client.post(
        "/v1/auth/token",
        json={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert response.status_code == 200
    rotated = response.json()
    assert rotated["refresh_token"] != tokens["refresh_token"]
    assert await user_status(client, bearer(rotated["access_token"])) == 200


async def test_two_concurrent_refreshes_both_succeed(client: AsyncTestClient[OrgbaseApp]) -> None:
    _, tokens = await new_user(client)
    body = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    first, second = await asyncio.gather(
        client.post("/v1/auth/token", json=body), client.post("/v1/auth/token", json=body)
    )
    assert (first.status_code, second.status_code) == (200, 200)
    for response in (first, second):
        access = response.json()["access_token"]
        assert await user_status(client, bearer(access)) == 200


@pytest.fixture(scope="module")
async def no_grace_client(settings: Settings) -> AsyncIterator[AsyncTestClient[OrgbaseApp]]:
    strict = with_overrides(settings, auth={"refresh_grace_seconds": 0})
    async with AsyncTestClient(app=create_app(strict)) as client:
        yield client


async def test_reusing_a_rotated_refresh_token_ends_the_session(
    no_grace_client: AsyncTestClient[OrgbaseApp],
) -> None:
    client = no_grace_client
    _, tokens = await new_user(client)
    body = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    rotated = (await client.post("/v1/auth/token", json=body)).json()
    # No wait: with no grace, any later use of the rotated token is a reuse (it is compared
    # with rotated_at to the microsecond).
    replay = await client.post("/v1/auth/token", json=body)
    assert replay.status_code == 401
    assert replay.json()["code"] == "refresh_token_reused"
    # The whole session is gone: the legitimate holder's tokens stop working too.
    assert await user_status(client, bearer(rotated["access_token"])) == 401
    followup = await client.post(
        "/v1/auth/token",
        json={"grant_type": "refresh_token", "refresh_token": rotated["refresh_token"]},
    )
    assert followup.status_code == 401


async def test_garbage_refresh_tokens_are_401(client: AsyncTestClient[OrgbaseApp]) -> None:
    for token in ("x", "y" * 40, "é" * 30, "' OR 1=1 --" * 3):
        response = await client.post(
            "/v1/auth/token", json={"grant_type": "refresh_token", "refresh_token": token}
        )
        assert response.status_code == 401, token
        assert response.json()["code"] == "invalid_refresh_token"


async def test_password_change_ends_the_other_sessions(client: AsyncTestClient[OrgbaseApp]) -> None:
    user, first = await new_user(client)
    second = await sign_in(client, user["email"])
    new_password = "a much better passphrase 42"
    wrong = await client.patch(
        "/v1/auth/user",
        headers=bearer(first["access_token"]),
        json={"password": new_password, "current_password": "not it at all"},
    )
    assert wrong.status_code == 403
    changed = await client.patch(
        "/v1/auth/user",
        headers=bearer(first["access_token"]),
        json={"password": new_password, "current_password": PASSWORD, "display_name": " Ada  L "},
    )
    assert changed.status_code == 200
    assert changed.json()["display_name"] == "Ada L"
    assert await user_status(client, bearer(first["access_token"])) == 200
    assert await user_status(client, bearer(second["access_token"])) == 401
    old = await client.post(
        "/v1/auth/token",
        json={"grant_type": "password", "email": user["email"], "password": PASSWORD},
    )
    assert old.status_code == 401
    new = await client.post(
        "/v1/auth/token",
        json={"grant_type": "password", "email": user["email"], "password": new_password},
    )
    assert new.status_code == 200


async def test_a_deleted_user_is_signed_out(client: AsyncTestClient[OrgbaseApp]) -> None:
    user, tokens = await new_user(client)
    headers = bearer(tokens["access_token"])
    refused = await client.request(
        "DELETE", "/v1/auth/user", headers=headers, json={"password": "wrong password!"}
    )
    assert refused.status_code == 403
    deleted = await client.request(
        "DELETE", "/v1/auth/user", headers=headers, json={"password": PASSWORD}
    )
    assert deleted.status_code == 204
    assert await user_status(client, headers) == 401
    again = await client.post(
        "/v1/auth/token",
        json={"grant_type": "password", "email": user["email"], "password": PASSWORD},
    )
    assert again.status_code == 401


async def test_sign_in_rehashes_when_parameters_change(
    settings: Settings, client: AsyncTestClient[OrgbaseApp]
) -> None:
    user = await sign_up(client)
    stronger = with_overrides(settings, auth={"argon2_time_cost": 2})
    async with AsyncTestClient(app=create_app(stronger)) as other:
        await sign_in(other, user["email"])
    async with owner_connection(settings) as connection:
        stored = await connection.fetchval(
            "SELECT password_hash FROM orgbase.users WHERE email = $1", user["email"]
        )
    assert ",t=2," in stored


async def test_signing_in_to_an_org_needs_membership(
    settings: Settings, client: AsyncTestClient[OrgbaseApp]
) -> None:
    member, _ = await new_user(client)
    outsider, _ = await new_user(client)
    org_id = await make_org(settings, {member["id"]: "member"})
    tokens = await sign_in(client, member["email"], org_id)
    assert tokens["org_id"] == org_id
    response = await client.post(
        "/v1/auth/token",
        json=password_grant(outsider["email"], org_id),
    )
    assert response.status_code == 403
    assert response.json()["code"] == "not_a_member"


async def test_the_jwks_publishes_public_keys_only(client: AsyncTestClient[OrgbaseApp]) -> None:
    keys = (await client.get("/.well-known/jwks.json")).json()["keys"]
    assert keys
    for key in keys:
        assert key["alg"] in ("ES256", "EdDSA")
        assert key["kid"]
        assert "d" not in key
    assert (await client.get("/auth/v1/.well-known/jwks.json")).json()["keys"] == keys


async def test_gotrue_health_answers_without_a_key(client: AsyncTestClient[OrgbaseApp]) -> None:
    health = await client.get("/auth/v1/health")
    assert health.status_code == 200
    assert health.json()["name"] == "GoTrue"
    # Other GoTrue routes still want the apikey.
    assert (await client.get("/auth/v1/settings")).json()["code"] == "apikey_invalid"
