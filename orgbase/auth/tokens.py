"""Access tokens: short-lived JWTs signed with the active key, verified strictly.

The algorithm comes from the key the ``kid`` names, never from the token: ``alg: none``,
HS256 signed with a public key, unknown kids and every claim error are refused with a
401 and a precise code.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from typing import Annotated, Any
from uuid import UUID

import jwt
import msgspec

from orgbase.auth.keys import KeySet
from orgbase.core.context import IssuedToken
from orgbase.core.errors import Unauthorized
from orgbase.core.settings import AuthSettings

MAX_TOKEN_LENGTH = 4096
_REQUIRED = ["exp", "iat", "nbf", "sub", "sid", "aud", "iss", "ssec"]
SECRET_CLAIM = "ssec"  # noqa: S105 - the claim's name, not a secret
"""The token's own secret: what enters its session's org in PostgreSQL (the session id
alone does not). Readable by the token's holder, who is the session; never logged."""


class AccessClaims(msgspec.Struct, frozen=True):
    sub: UUID
    sid: UUID
    exp: int
    iat: int
    ssec: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    org: UUID | None = None
    imp: UUID | None = None
    aal: str = "aal1"
    """The session's assurance level when the token was issued (aal2 after a second factor)."""


_TIME_CLAIMS = ("exp", "iat", "nbf")


def _not_a_time(value: object) -> bool:
    """A time claim that is there and is not a JSON integer (a string, a fraction, a
    boolean)."""
    return value is not None and (isinstance(value, bool) or not isinstance(value, int))


def _claims(payload: dict[str, Any]) -> AccessClaims:
    """A verified token's payload as claims. PyJWT reads ``"exp": "1893456000"`` as a
    number and the conversion would too: the gateway writes times as integers only."""
    if any(_not_a_time(payload.get(name)) for name in _TIME_CLAIMS):
        raise token_error("token_invalid", "the access token's times are not integers")
    try:
        return msgspec.convert(payload, AccessClaims, strict=False)
    except msgspec.ValidationError:
        raise token_error("token_invalid", "the access token's claims are malformed") from None


def token_error(code: str, message: str) -> Unauthorized:
    return Unauthorized(message, code=code, bearer="invalid")


class TokenService:
    def __init__(self, keys: KeySet, settings: AuthSettings, cache_size: int = 8192) -> None:
        self.keys = keys
        self.settings = settings
        # Verified tokens are immutable: remembering them skips the signature check on the
        # next request. Expiry is still checked on every hit; revocation is the session's.
        self._verified: OrderedDict[str, AccessClaims] = OrderedDict()
        self._cache_size = cache_size

    def issue(
        self,
        user_id: UUID,
        session_id: UUID,
        org_id: UUID | None,
        *,
        impersonation_id: UUID | None = None,
        lifetime: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> IssuedToken:
        """``extra``: the claims GoTrue's clients read (role, aal, amr, email, metadata...);
        orgbase's own claims always win. The token carries a new secret of its own, which
        the caller keeps hashed where the token enters (its session row, an impersonation's
        row) before handing the token out."""
        now = int(time.time())
        lifetime = min(
            lifetime or self.settings.access_token_seconds, self.settings.access_token_seconds
        )
        secret = secrets.token_urlsafe(32)
        claims: dict[str, Any] = {
            **(extra or {}),
            "sub": str(user_id),
            "sid": str(session_id),
            "aud": self.settings.audience,
            "iss": self.settings.issuer,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            SECRET_CLAIM: secret,
        }
        if org_id is not None:
            claims["org"] = str(org_id)
        if impersonation_id is not None:
            claims["imp"] = str(impersonation_id)
        key = self.keys.active
        token = jwt.encode(
            claims, key.signing_key, algorithm=key.algorithm, headers={"kid": key.kid}
        )
        # The secret dies when the token does (verification allows the clock skew).
        usable_until = now + lifetime + self.settings.clock_skew_seconds
        return IssuedToken(token, lifetime, secret, usable_until)

    def verify(self, token: str) -> AccessClaims:
        cached = self._verified.get(token)
        if cached is not None:
            if cached.exp + self.settings.clock_skew_seconds < time.time():
                self._verified.pop(token, None)
                raise token_error("token_expired", "the access token has expired")
            return cached
        claims = self._verify_uncached(token)
        if self._cache_size:
            self._verified[token] = claims
            if len(self._verified) > self._cache_size:
                self._verified.popitem(last=False)
        return claims

    def _verify_uncached(self, token: str) -> AccessClaims:
        if len(token) > MAX_TOKEN_LENGTH:
            raise token_error("token_malformed", "the access token is too long")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            # Not a JWT, or a header PyJWT refuses (a kid that is not a string...).
            raise token_error("token_malformed", "the access token is not a JWT") from None
        kid = header.get("kid")
        key = self.keys.by_kid.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise token_error("token_unknown_key", "the access token's signing key is unknown")
        if header.get("alg") != key.algorithm:
            raise token_error("token_bad_algorithm", "the access token uses another algorithm")
        try:
            payload = jwt.decode(
                token,
                key.verifying_key,
                algorithms=[key.algorithm],
                audience=self.settings.audience,
                issuer=self.settings.issuer,
                leeway=self.settings.clock_skew_seconds,
                options={"require": _REQUIRED, "strict_aud": True},
            )
        except jwt.ExpiredSignatureError:
            raise token_error("token_expired", "the access token has expired") from None
        except jwt.ImmatureSignatureError:
            raise token_error("token_not_yet_valid", "the access token is not valid yet") from None
        except jwt.InvalidAudienceError:
            raise token_error(
                "token_invalid_audience", "the access token is for another audience"
            ) from None
        except jwt.InvalidIssuerError:
            raise token_error(
                "token_invalid_issuer", "the access token has another issuer"
            ) from None
        except jwt.InvalidSignatureError:
            raise token_error(
                "token_invalid_signature", "the access token's signature is wrong"
            ) from None
        except jwt.MissingRequiredClaimError as exc:
            raise token_error("token_invalid", f"the access token lacks {exc.claim}") from None
        except jwt.InvalidTokenError:
            raise token_error("token_invalid", "the access token is invalid") from None
        return _claims(payload)
