"""Signing keys: ES256 by default, EdDSA as an option, and a move from one to the other by
rotation, through real gateways (apps on the real stack). Tokens signed before a rotation
keep verifying until their key is retired; a key set of two algorithms lets no token
choose its algorithm (each key verifies only its own), and forged or mislabelled tokens
are refused."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import jwt
import pytest
from litestar.testing import AsyncTestClient

from orgbase.auth.keys import KeyError_, KeySet, generate_jwk, retire_key, rotate_keys_file
from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp, create_app
from tests.support.http import bearer, claims_of, new_user, sign_in
from tests.support.stack import with_overrides

Client = AsyncTestClient[OrgbaseApp]


@asynccontextmanager
async def gateway(settings: Settings, keys: Path, algorithm: str) -> AsyncIterator[Client]:
    changed = with_overrides(
        settings, auth={"signing_keys_file": str(keys), "jwt_algorithm": algorithm}
    )
    async with AsyncTestClient(app=create_app(changed)) as client:
        yield client


def header_of(token: str) -> dict[str, Any]:
    return jwt.get_unverified_header(token)


def relabelled(token: str, **header: Any) -> str:
    """The same token (payload and signature) under another header."""
    _, payload, signature = token.split(".")
    raw = json.dumps({**header_of(token), **header}).encode()
    return f"{base64.urlsafe_b64encode(raw).rstrip(b'=').decode()}.{payload}.{signature}"


async def refused(client: Client, token: str) -> str:
    answer = await client.get("/v1/auth/user", headers=bearer(token))
    assert answer.status_code == 401, answer.text
    return str(answer.json()["code"])


async def test_es256_by_default(client: Client, settings: Settings) -> None:
    assert settings.auth.jwt_algorithm == "ES256"
    _, tokens = await new_user(client)
    header = header_of(tokens["access_token"])
    assert header["alg"] == "ES256"
    published = (await client.get("/auth/v1/.well-known/jwks.json")).json()["keys"]
    (key,) = [k for k in published if k["kid"] == header["kid"]]
    assert (key["kty"], key["crv"], key["alg"]) == ("EC", "P-256", "ES256")
    assert "d" not in key
    # What supabase-js's getClaims() does with it: verify with the published key alone.
    public = jwt.PyJWK(key)
    claims = jwt.decode(
        tokens["access_token"], public.key, algorithms=["ES256"], audience="orgbase"
    )
    assert claims["sub"] == tokens["user"]["id"]


async def test_eddsa_to_es256_by_rotation(settings: Settings, tmp_path: Path) -> None:
    keys = tmp_path / "jwks.json"
    rotate_keys_file(keys, "EdDSA")
    async with gateway(settings, keys, "EdDSA") as before:
        user, old = await new_user(before)
    old_token = old["access_token"]
    assert header_of(old_token)["alg"] == "EdDSA"
    new_kid = rotate_keys_file(keys)  # ES256 by default, in front
    async with gateway(settings, keys, "ES256") as after:
        assert (await after.get("/v1/auth/user", headers=bearer(old_token))).status_code == 200
        fresh = await sign_in(after, user["email"])
        assert header_of(fresh["access_token"]) == {"alg": "ES256", "kid": new_kid, "typ": "JWT"}
        published = (await after.get("/auth/v1/.well-known/jwks.json")).json()["keys"]
        assert {k["alg"] for k in published} == {"ES256", "EdDSA"}
        # The refresh token made under EdDSA gives an ES256 token now.
        refreshed = await after.post(
            "/v1/auth/token",
            json={"grant_type": "refresh_token", "refresh_token": old["refresh_token"]},
        )
        assert header_of(refreshed.json()["access_token"])["alg"] == "ES256"
    # EdDSA stays an option: the same set signs EdDSA when told to, ES256 tokens verify.
    async with gateway(settings, keys, "EdDSA") as option:
        again = await sign_in(option, user["email"])
        assert header_of(again["access_token"])["alg"] == "EdDSA"
        ok = await option.get("/v1/auth/user", headers=bearer(fresh["access_token"]))
        assert ok.status_code == 200
    retire_key(keys, header_of(old_token)["kid"])
    async with gateway(settings, keys, "ES256") as retired:
        assert await refused(retired, again["access_token"]) == "token_unknown_key"


async def test_two_algorithms_let_no_token_choose(settings: Settings, tmp_path: Path) -> None:
    keys = tmp_path / "jwks.json"
    rotate_keys_file(keys, "EdDSA")
    rotate_keys_file(keys, "ES256")
    loaded = KeySet.from_file(keys, "ES256")
    es256 = loaded.active
    eddsa = next(k for k in loaded.keys if k.algorithm == "EdDSA")
    async with gateway(settings, keys, "ES256") as client:
        _, tokens = await new_user(client)
        genuine = claims_of(tokens["access_token"])
        by_eddsa = jwt.encode(
            genuine, eddsa.signing_key, algorithm="EdDSA", headers={"kid": eddsa.kid}
        )
        assert (await client.get("/v1/auth/user", headers=bearer(by_eddsa))).status_code == 200
        # An EdDSA signature under the ES256 key's kid, and the other way round.
        assert await refused(client, relabelled(by_eddsa, kid=es256.kid)) == "token_bad_algorithm"
        swapped = relabelled(tokens["access_token"], kid=eddsa.kid)
        assert await refused(client, swapped) == "token_bad_algorithm"
        # The header claiming the other key's algorithm.
        for token, alg in ((by_eddsa, "ES256"), (tokens["access_token"], "EdDSA")):
            assert await refused(client, relabelled(token, alg=alg)) == "token_bad_algorithm"
        # A key of the right algorithm that is not ours.
        rogue = jwt.PyJWK(generate_jwk("ES256")).key
        forged = jwt.encode(genuine, rogue, algorithm="ES256", headers={"kid": es256.kid})
        assert await refused(client, forged) == "token_invalid_signature"


def test_a_set_without_a_key_to_sign_with_is_refused(tmp_path: Path) -> None:
    keys = tmp_path / "jwks.json"
    rotate_keys_file(keys, "EdDSA")
    with pytest.raises(KeyError_, match="no ES256 key"):
        KeySet.from_file(keys, "ES256")
    document = json.loads(keys.read_text())
    document["keys"][0]["alg"] = "RS256"
    keys.write_text(json.dumps(document))
    with pytest.raises(KeyError_, match="every key names its alg"):
        KeySet.from_file(keys, "EdDSA")
