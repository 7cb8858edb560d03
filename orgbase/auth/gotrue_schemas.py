"""Request bodies of GoTrue's API (/auth/v1), as Supabase's clients send them.

Unknown fields are ignored, not refused: the clients send fields orgbase does not use
(``gotrue_meta_security``, ``code_challenge``...)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from orgbase.auth.schemas import Email, Password, RefreshToken

Metadata = dict[str, Any]
Code = Annotated[str, Meta(min_length=1, max_length=64)]
LinkToken = Annotated[str, Meta(min_length=1, max_length=200)]


class GoTrueSignUp(msgspec.Struct):
    email: Email
    password: Password
    data: Metadata | None = None


class GoTruePassword(msgspec.Struct):
    email: Email
    password: Password


class GoTrueRefresh(msgspec.Struct):
    refresh_token: RefreshToken


class GoTrueUserUpdate(msgspec.Struct):
    email: Email | None = None
    password: Password | None = None
    data: Metadata | None = None
    current_password: Password | None = None
    nonce: str | None = None


class EmailOnly(msgspec.Struct):
    email: Email


class GoTrueOtp(msgspec.Struct):
    email: Email
    create_user: bool = True
    data: Metadata | None = None


class GoTrueResend(msgspec.Struct):
    type: Literal["signup", "email_change"]
    email: Email


VerifyType = Literal["signup", "email", "recovery", "magiclink", "email_change", "invite"]


class GoTrueVerify(msgspec.Struct):
    type: VerifyType
    email: Email | None = None
    token: Code | None = None
    token_hash: LinkToken | None = None


class FactorEnroll(msgspec.Struct):
    factor_type: Literal["totp"] = "totp"
    friendly_name: Annotated[str, Meta(max_length=200)] | None = None
    issuer: Annotated[str, Meta(max_length=200)] | None = None


class FactorVerify(msgspec.Struct):
    challenge_id: str
    code: Code


class SsoStart(msgspec.Struct):
    domain: Annotated[str, Meta(max_length=253)] | None = None
    provider_id: Annotated[str, Meta(max_length=200)] | None = None
    redirect_to: Annotated[str, Meta(max_length=2000)] | None = None
