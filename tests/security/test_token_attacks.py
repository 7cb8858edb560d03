"""Forged, tampered, expired and misdirected tokens: every one is a 401 with a clear code."""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from litestar.testing import AsyncTestClient

from orgbase.auth.keys import KeySet, generate_jwk
from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp
from tests.support.http import bearer, new_user


@pytest.fixture(scope="module")
def keys(settings: Settings) -> KeySet:
    assert settings.auth.signing_keys_file is not None
    return KeySet.from_file(Path(settings.auth.signing_keys_file), settings.auth.jwt_algorithm)


@pytest.fixture
async def victim(client: AsyncTestClient[OrgbaseApp]) -> dict[str, Any]:
    user, tokens = await new_user(client)
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    return {"user": user, "tokens": tokens, "claims": claims}


def claims_for(victim: dict[str, Any], **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "sub": victim["user"]["id"],
        "sid": victim["claims"]["sid"],
        "aud": "orgbase",
        "iss": "orgbase",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "ssec": victim["claims"]["ssec"],
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def sign(keys: KeySet, claims: dict[str, Any], **header: Any) -> str:
    key = keys.active
    return jwt.encode(
        claims, key.signing_key, algorithm=key.algorithm, headers={"kid": key.kid, **header}
    )


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def assert_refused(client: AsyncTestClient[OrgbaseApp], token: str, code: str) -> None:
    response = await client.get("/v1/auth/user", headers=bearer(token))
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["code"] == code, body
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_the_genuine_token_works(
    client: AsyncTestClient[OrgbaseApp], keys: KeySet, victim: dict[str, Any]
) -> None:
    response = await client.get("/v1/auth/user", headers=bearer(sign(keys, claims_for(victim))))
    assert response.status_code == 200


async def test_no_credentials(client: AsyncTestClient[OrgbaseApp]) -> None:
    response = await client.get("/v1/auth/user")
    assert response.status_code == 401
    assert response.json()["code"] == "auth_required"


@pytest.mark.parametrize(
    "header",
    ["Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc", "Bearer not.a.jwt", "Bearer a.b"],
)
async def test_garbled_headers(client: AsyncTestClient[OrgbaseApp], header: str) -> None:
    response = await client.get("/v1/auth/user", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json()["code"] in {"token_malformed", "token_unknown_key"}


async def test_oversized_and_non_ascii_tokens(client: AsyncTestClient[OrgbaseApp]) -> None:
    for token in ("x" * 5000, "ünïcode.tøken.here"):
        response = await client.get(
            "/v1/auth/user", headers=[(b"authorization", f"Bearer {token}".encode())]
        )
        assert response.status_code == 401
        assert response.json()["code"] == "token_malformed"


async def test_expired(
    client: AsyncTestClient[OrgbaseApp], keys: KeySet, victim: dict[str, Any]
) -> None:
    old = int(time.time()) - 3600
    token = sign(keys, claims_for(victim, iat=old, nbf=old, exp=old + 60))
    await assert_refused(client, token, "token_expired")


async def test_not_yet_valid(
    client: AsyncTestClient[OrgbaseApp], keys: KeySet, victim: dict[str, Any]
) -> None:
    future = int(time.time()) + 3600
    token = sign(keys, claims_for(victim, iat=future, nbf=future, exp=future + 600))
    await assert_refused(client, token, "token_not_yet_valid")


async def test_alg_none(
    client: AsyncTestClient[OrgbaseApp], keys: KeySet, victim: dict[str, Any]
) -> None:
    header = b64(json.dumps({"alg": "none", "typ": "JWT", "kid": keys.active.kid}).encode())
    payload = b64(json.dumps(claims_for(victim)).encode())
    for token in (f"{header}.{payload}.", f"{header}.{payload}"):
        response = await client.get("/v1/auth/user", headers=bearer(token))
        assert response.status_code == 401
        assert response.json()["code"] in {"token_bad_algorithm", "token_malformed"}


async def test_signed_with_another_key(
    client: AsyncTestClient[OrgbaseApp], keys: KeySet, victim: dict[str, Any]
) -> None:
    key = keys.active
    rogue = jwt.PyJWK(generate_jwk(key.algorithm)).key
    token = jwt.encode(claims_for(victim), rogue, algorithm=key.algorithm, headers={"kid": key.kid})
    await assert_refused(client, token, "token_invalid_signature")


async def test_hs256_signed_with_the_public_key(
    client: AsyncTestClient[OrgbaseApp], keys: KeySet, victim: dict[str, Any]
) -> None:
    public_pem = keys.active.verifying_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": keys.active.kid}).encode())
    payload = b64(json.dumps(claims_for(victim)).encode())
    import hashlib
    import hmac

    signature = b64(hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest())
    await assert_refused(client, f"{header}.{payload}.{signature}", "token_bad_algorithm")


async def test_unknown_kid(
    client: AsyncTestClient[OrgbaseApp], keys: KeySet, victim: dict[str, Any]
) -> None:
    await assert_refused(
        client, sign(keys, claims_for(victim), kid="retired-key"), "token_unknown_key"
    )
    key = keys.active
    no_kid = jwt.encode(claims_for(victim), key.signing_key, algorithm=key.algorithm)
    await assert_refused(client, no_kid, "token_unknown_key")


async def test_wrong_audience_and_issuer(
    client: AsyncTestClient[OrgbaseApp], keys: KeySet, victim: dict[str, Any]
) -> None:
    await assert_refused(
        client, sign(keys, claims_for(victim, aud="other-app")), "token_invalid_audience"
    )
    await assert_refused(client, sign(keys, claims_for(victim, iss="evil")), "token_invalid_issuer")


async def test_missing_and_malformed_claims(
    client: AsyncTestClient[OrgbaseApp], keys: KeySet, victim: dict[str, Any]
) -> None:
    await assert_refused(client, sign(keys, claims_for(victim, sid=None)), "token_invalid")
    await assert_refused(client, sign(keys, claims_for(victim, exp=None)), "token_invalid")
    await assert_refused(client, sign(keys, claims_for(victim, sub="admin")), "token_invalid")


async def test_time_claims_given_as_strings(
    client: AsyncTestClient[OrgbaseApp], keys: KeySet, victim: dict[str, Any]
) -> None:
    """PyJWT reads ``"exp": "1893456000"`` as a number and the claims were converted:
    a token whose times are strings (or booleans, or fractions) was accepted. Times are
    JSON integers, as the gateway writes them; anything else is refused, on every path
    (the data API reads the claims without the session lookup)."""
    now = int(time.time())
    odd: list[dict[str, Any]] = [
        {"exp": str(now + 600)},
        {"iat": str(now)},
        {"nbf": str(now)},
        {"exp": now + 600.5},
        {"iat": True},
        {"exp": "soon"},
    ]
    for changes in odd:
        token = sign(keys, claims_for(victim, **changes))
        await assert_refused(client, token, "token_invalid")
        data = await client.get("/v1/db/items", headers=bearer(token))
        assert (data.status_code, data.json()["code"]) == (401, "token_invalid"), changes


async def test_tampered_payload(
    client: AsyncTestClient[OrgbaseApp], victim: dict[str, Any]
) -> None:
    _, other = await new_user(client)
    header, _, signature = victim["tokens"]["access_token"].split(".")
    other_claims = jwt.decode(other["access_token"], options={"verify_signature": False})
    forged_payload = b64(json.dumps({**victim["claims"], "sub": other_claims["sub"]}).encode())
    await assert_refused(
        client, f"{header}.{forged_payload}.{signature}", "token_invalid_signature"
    )


async def test_someone_elses_session_id(
    client: AsyncTestClient[OrgbaseApp], keys: KeySet, victim: dict[str, Any]
) -> None:
    """A validly signed token pairing my user with another user's session is refused."""
    _, other = await new_user(client)
    other_sid = jwt.decode(other["access_token"], options={"verify_signature": False})["sid"]
    await assert_refused(client, sign(keys, claims_for(victim, sid=other_sid)), "session_revoked")
    await assert_refused(
        client, sign(keys, claims_for(victim, sid=str(uuid.uuid4()))), "session_revoked"
    )


async def test_a_token_without_its_secret(
    client: AsyncTestClient[OrgbaseApp], keys: KeySet, victim: dict[str, Any]
) -> None:
    """Tokens from before session secrets (or forged without one) are refused as tokens."""
    await assert_refused(client, sign(keys, claims_for(victim, ssec=None)), "token_invalid")


async def test_revoked_session(client: AsyncTestClient[OrgbaseApp], victim: dict[str, Any]) -> None:
    token = victim["tokens"]["access_token"]
    assert (await client.post("/v1/auth/logout", headers=bearer(token))).status_code == 204
    await assert_refused(client, token, "session_revoked")
