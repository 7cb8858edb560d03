"""One-time codes mailed to an address: sign-up confirmation, recovery, magic links and
email changes. Each mail carries a 6-digit code and a link; both are stored hashed, work
once, expire (``auth.code_seconds``), and die after ``auth.code_attempts`` wrong guesses.
A guess locks the code's row (``FOR UPDATE``), so parallel guesses are counted one by one.
Mail goes through the outbox, in the transaction that made the code.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlencode
from uuid import UUID

from orgbase.auth.ratelimit import RateLimiter
from orgbase.core.errors import Forbidden
from orgbase.core.mail import Mail, Outbox
from orgbase.core.postgres import Connection
from orgbase.core.settings import AuthSettings

Purpose = Literal["signup", "recovery", "magiclink", "email_change"]
CODE_DIGITS = 6

_SUBJECTS: dict[str, str] = {
    "signup": "Confirm your email address",
    "recovery": "Reset your password",
    "magiclink": "Your sign-in code",
    "email_change": "Confirm your new email address",
}
_INSERT = """
INSERT INTO orgbase.auth_codes
    (id, user_id, purpose, email, code_hash, link_hash, expires_at)
VALUES ($7, $1, $2, $3, $4, $5, now() + make_interval(secs => $6))
"""
_BY_CODE = """
SELECT id, user_id, email, purpose, code_hash, attempts FROM orgbase.auth_codes
WHERE email = $1 AND purpose = ANY($2::text[]) AND used_at IS NULL AND expires_at > now()
ORDER BY created_at DESC LIMIT 1
FOR UPDATE
"""
_BY_LINK = """
SELECT id, user_id, email, purpose FROM orgbase.auth_codes
WHERE link_hash = $1 AND used_at IS NULL AND expires_at > now()
FOR UPDATE
"""


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


def _code_hash(code_id: UUID | str, code: str) -> bytes:
    # Bound to the row: the same code of two rows hashes differently.
    return _digest(f"{code_id}:{code}")


@dataclass(frozen=True)
class Notice:
    subject: str
    lead: str


async def limit_mail_to(limiter: RateLimiter, settings: AuthSettings, email: str) -> None:
    """Mail to one address is limited per hour, whoever asks (the limiter tags each
    bucket: one slot per address)."""
    address = hashlib.sha256(email.encode()).hexdigest()[:32]
    await limiter.hit(f"mail:addr:{address}", settings.mail_per_address_per_hour, 3600)


def expired_code() -> Forbidden:
    # GoTrue's code and wording: the same answer for wrong, used, expired and dead codes.
    return Forbidden("the code has expired or is invalid", code="otp_expired")


@dataclass(frozen=True)
class Verified:
    user_id: UUID
    email: str
    purpose: str


@dataclass(frozen=True)
class CodeFor:
    """Who a code is for: the account, what the code does, the address it is mailed to,
    and where its link leads back to."""

    user_id: UUID
    purpose: Purpose
    email: str
    redirect_to: str | None = None


@dataclass(frozen=True)
class IssuedCode:
    code: str
    link_token: str
    """What the link carries (GoTrue's ``token_hash``)."""
    link: str


@dataclass
class CodeBook:
    settings: AuthSettings
    public_url: str
    outbox: Outbox

    async def mail(
        self, connection: Connection, kind: str, to: str, subject: str, body: str
    ) -> None:
        """Queue a mail (sent after the caller's transaction commits)."""
        await self.outbox.queue(connection, Mail(kind, to, subject, body))

    async def issue(self, connection: Connection, to: CodeFor) -> IssuedCode:
        """A new code for (user, purpose), for the address; earlier ones stop working."""
        await connection.execute(
            "UPDATE orgbase.auth_codes SET used_at = now()"
            " WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL",
            to.user_id,
            to.purpose,
        )
        code_id = await connection.fetchval("SELECT gen_random_uuid()")
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        link_token = secrets.token_urlsafe(32)
        await connection.execute(
            _INSERT,
            to.user_id,
            to.purpose,
            to.email,
            _code_hash(code_id, code),
            _digest(link_token),
            float(self.settings.code_seconds),
            code_id,
        )
        query = {"token": link_token, "type": to.purpose}
        if to.redirect_to:
            query["redirect_to"] = to.redirect_to
        link = f"{self.public_url.rstrip('/')}/auth/v1/verify?{urlencode(query)}"
        return IssuedCode(code, link_token, link)

    async def send(
        self, connection: Connection, to: CodeFor, *, notice: Notice | None = None
    ) -> None:
        """``issue``, mailed to the address. ``notice``: another subject, and a paragraph
        before the code (why it was sent)."""
        issued = await self.issue(connection, to)
        minutes = self.settings.code_seconds // 60
        body = (f"{notice.lead}\n\n" if notice else "") + (
            f"Your code: {issued.code}\n\nOr open this link: {issued.link}\n\n"
            f"Both work once, for {minutes} minutes. If you did not ask for this, ignore it.\n"
        )
        subject = notice.subject if notice else _SUBJECTS[to.purpose]
        await self.mail(connection, f"auth.{to.purpose}", to.email, subject, body)

    async def check_code(
        self, connection: Connection, email: str, purposes: tuple[str, ...], code: str
    ) -> Verified:
        """Use the live code of (email, purpose); a wrong guess counts against it (in its
        own transaction: the count stays when the caller's request fails)."""
        async with connection.transaction():
            row = await connection.fetchrow(_BY_CODE, email, list(purposes))
            if row is None:
                raise expired_code()
            well_formed = len(code) == CODE_DIGITS and code.isascii() and code.isdigit()
            right = well_formed and hmac.compare_digest(
                row["code_hash"], _code_hash(row["id"], code)
            )
            await connection.execute(
                "UPDATE orgbase.auth_codes SET attempts = attempts + $2,"
                " used_at = CASE WHEN $3 OR attempts + $2 >= $4 THEN now() END WHERE id = $1",
                row["id"],
                0 if right else 1,
                right,
                self.settings.code_attempts,
            )
        if not right:
            raise expired_code()
        return Verified(row["user_id"], row["email"], row["purpose"])

    async def check_link(self, connection: Connection, token: str) -> Verified:
        async with connection.transaction():
            row = await connection.fetchrow(_BY_LINK, _digest(token))
            if row is None:
                raise expired_code()
            await connection.execute(
                "UPDATE orgbase.auth_codes SET used_at = now() WHERE id = $1", row["id"]
            )
        return Verified(row["user_id"], row["email"], row["purpose"])
