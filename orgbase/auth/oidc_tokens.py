"""An OpenID provider as seen from here: its discovery document and keys (cached), and
the strict check of the ID tokens it signs.

ID tokens are refused unless signed with an asymmetric algorithm the provider announces
(never ``none`` or an HMAC one), by a key of its JWKS, for our client (``aud``, and
``azp`` when there are several audiences), by its issuer, unexpired, and carrying the
nonce this sign-in sent; and its claims must fit where they are stored (``check_claims``:
a subject of 1 to 255 printable characters, times that are numbers).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import msgspec

from orgbase.core import destinations
from orgbase.core.errors import BadGateway, Forbidden, Invalid, Unavailable

ASYMMETRIC = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"}
)
# The key type each algorithm family signs with: a token whose ``alg`` does not fit its
# key is refused before PyJWT is handed the mismatch.
KEY_TYPES = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}
CACHE_SECONDS = 300.0
LEEWAY_SECONDS = 30
MAX_SUBJECT_LENGTH = 255
"""A subject is stored (``orgbase.identities.subject``: 1 to 255 characters)."""
MAX_EMAIL_LENGTH = 320
"""The longest address an account may have (``orgbase.users.email``)."""
TIME_CLAIMS = ("exp", "iat", "nbf", "auth_time")
FETCHED_URLS = ("token_endpoint", "jwks_uri", "userinfo_endpoint")
"""The discovery document's URLs the gateway itself fetches."""


class ProviderConfig(msgspec.Struct, frozen=True, kw_only=True):
    """One OpenID provider: the operator's (a file of them) or an org's (its SSO)."""

    name: str
    issuer: str
    client_id: str
    client_secret: str
    label: str | None = None
    scopes: str = "openid email profile"


def refused(message: str, code: str = "oidc_id_token_invalid") -> Forbidden:
    return Forbidden(message, code=code)


def unavailable(message: str) -> Unavailable:
    """The provider did not answer, or answered an error: it may work again soon."""
    return Unavailable(message, code="oidc_provider_unavailable")


def bad_answer(message: str) -> BadGateway:
    """The provider answered, but not in OpenID's terms (not JSON, not an object): the
    provider's fault, not the caller's; a 502, never a 500."""
    return BadGateway(message, code="oidc_provider_bad_answer")


def json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise bad_answer(f"the OpenID provider's {what} is not JSON") from None
    if not isinstance(body, dict):
        raise bad_answer(f"the OpenID provider's {what} is not a JSON object")
    return body


@dataclass
class ProviderMetadata:
    """Discovery and keys of one issuer, fetched at most every CACHE_SECONDS (the keys
    again at once when a token names an unknown key, as rotations do)."""

    issuer: str
    http: httpx.AsyncClient
    check: Callable[[str], Awaitable[None]] | None = None
    """Run on every URL before it is fetched: an org's own provider is a customer's URL."""
    document: dict[str, Any] = field(default_factory=dict)
    keys: dict[str, jwt.PyJWK] = field(default_factory=dict)
    fetched_at: float = 0.0

    async def _get(self, url: str) -> dict[str, Any]:
        if self.check is not None:
            await self.check(url)
        try:
            response = await self.http.get(url)
        except httpx.HTTPError as exc:
            raise unavailable(f"the OpenID provider did not answer: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise unavailable(f"the OpenID provider answered {response.status_code}")
        return json_object(response, "answer")

    async def load(self, *, keys_again: bool = False) -> dict[str, Any]:
        if self.document and not keys_again and time.monotonic() - self.fetched_at < CACHE_SECONDS:
            return self.document
        document = await self._get(self.issuer.rstrip("/") + "/.well-known/openid-configuration")
        if document.get("issuer") != self.issuer:
            raise unavailable("the discovery document names another issuer")
        for needed in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(document.get(needed), str):
                raise unavailable(f"the discovery document has no {needed}")
        await self._check_urls(document)
        jwks = await self._get(document["jwks_uri"])
        keys: dict[str, jwt.PyJWK] = {}
        for raw in jwks.get("keys", []):
            if not isinstance(raw, dict) or raw.get("use", "sig") != "sig":
                continue
            try:
                key = jwt.PyJWK(raw)
            except (jwt.PyJWKError, jwt.InvalidKeyError):
                continue  # a key type we do not use
            keys[str(raw.get("kid", ""))] = key
        self.document, self.keys, self.fetched_at = document, keys, time.monotonic()
        return document

    async def _check_urls(self, document: dict[str, Any]) -> None:
        """The whole document before any of it is used: browsers are sent to the
        authorization endpoint (an http(s) URL, never ``javascript:``), and every URL the
        gateway will fetch passes ``check`` (an org's provider: public addresses only)."""
        try:
            destinations.parse_url(document["authorization_endpoint"])
        except Invalid:
            raise bad_answer("the authorization_endpoint is not an http(s) URL") from None
        if self.check is None:
            return
        for name in FETCHED_URLS:
            url = document.get(name)
            if isinstance(url, str):  # (a userinfo_endpoint that is not one is not used)
                await self.check(url)

    def algorithms(self) -> list[str]:
        announced = self.document.get("id_token_signing_alg_values_supported") or ["RS256"]
        return [alg for alg in announced if alg in ASYMMETRIC]

    async def verify_id_token(self, token: str, client_id: str, nonce: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise refused("the ID token is not a JWT") from None
        alg = header.get("alg")
        if alg not in self.algorithms():
            raise refused("the ID token's algorithm is not one the provider signs with")
        kid = str(header.get("kid", ""))
        if kid not in self.keys:
            await self.load(keys_again=True)
        key = self.keys.get(kid)
        if key is None:
            raise refused("the ID token is signed by a key the provider does not publish")
        if KEY_TYPES.get(str(alg)[:2]) != key.key_type:
            raise refused("the ID token's algorithm does not fit its key's type")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=client_id,
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["iss", "sub", "aud", "exp", "iat"]},
            )
        except jwt.ExpiredSignatureError:
            raise refused("the ID token has expired") from None
        except jwt.InvalidAudienceError:
            raise refused("the ID token is for another client") from None
        except jwt.InvalidIssuerError:
            raise refused("the ID token comes from another issuer") from None
        except (jwt.InvalidTokenError, jwt.PyJWKError, TypeError, ValueError) as exc:
            # (A key PyJWT cannot use with the algorithm raises TypeError or ValueError.)
            raise refused(f"the ID token is invalid ({type(exc).__name__})") from None
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != client_id:
            raise refused("the ID token is for several clients but not authorized for us")
        if claims.get("nonce") != nonce:
            raise refused("the ID token's nonce is not this sign-in's", code="oidc_nonce_mismatch")
        check_claims(claims)
        return claims


def check_claims(claims: dict[str, Any]) -> None:
    """What a provider says is stored and compared here: a subject of 1 to 255 printable
    characters (not blank), times that are numbers (PyJWT reads ``"1893456000"`` as one),
    an email no longer than an address may be. Anything else is the provider's error."""
    sub = claims.get("sub")
    if (
        not isinstance(sub, str)
        or not 0 < len(sub) <= MAX_SUBJECT_LENGTH
        or not sub.isprintable()
        or not sub.strip()
    ):
        raise refused(f"the subject (sub) is not 1 to {MAX_SUBJECT_LENGTH} printable characters")
    for name in TIME_CLAIMS:
        value = claims.get(name)
        if name in claims and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise refused(f"the ID token's {name} is not a number")
    email = claims.get("email")
    if email is not None and (not isinstance(email, str) or len(email) > MAX_EMAIL_LENGTH):
        raise refused(f"the email is not an address of at most {MAX_EMAIL_LENGTH} characters")


def load_providers(path: str | None) -> dict[str, ProviderConfig]:
    if not path:
        return {}
    with open(path) as handle:
        raw = json.load(handle)
    providers = msgspec.convert(raw, list[ProviderConfig])
    return {p.name: p for p in providers}
