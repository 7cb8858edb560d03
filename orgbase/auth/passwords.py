"""Passwords: rules, and argon2id hashing off the event loop.

Hashing runs in a small dedicated thread pool (argon2 releases the GIL), so a burst of
sign-ins uses at most ``hash_concurrency`` cores and never stalls the event loop. An
unknown email is verified against a dummy hash with the same parameters: the same work
and the same answer as a wrong password.
"""

from __future__ import annotations

import asyncio
import secrets
from concurrent.futures import ThreadPoolExecutor

import bcrypt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from orgbase.core.errors import Invalid
from orgbase.core.settings import AuthSettings

MAX_PASSWORD_LENGTH = 256

# A small built-in list of the most common passwords (all at least 8 characters; shorter
# ones fail the length rule anyway). Compared case-insensitively.
COMMON_PASSWORDS = frozenset(
    (
        "password",
        "password1",
        "password12",
        "password123",
        "password1234",
        "passw0rd",
        "p@ssw0rd",
        "p@ssword",
        "12345678",
        "123456789",
        "1234567890",
        "12345678910",
        "0123456789",
        "987654321",
        "9876543210",
        "11111111",
        "111111111",
        "1111111111",
        "00000000",
        "0000000000",
        "88888888",
        "12341234",
        "123123123",
        "1q2w3e4r",
        "1q2w3e4r5t",
        "1qaz2wsx",
        "1qaz2wsx3edc",
        "qwertyuiop",
        "qwerty123",
        "qwerty1234",
        "qwertyui",
        "asdfghjkl",
        "asdfasdf",
        "zxcvbnm123",
        "abcd1234",
        "abc12345",
        "abcdefgh",
        "abcdefg1",
        "iloveyou",
        "iloveyou1",
        "sunshine",
        "princess",
        "football",
        "baseball",
        "basketball",
        "superman",
        "batman123",
        "starwars",
        "trustno1",
        "letmein1",
        "letmein123",
        "welcome1",
        "welcome123",
        "welcome2024",
        "welcome2025",
        "welcome2026",
        "admin123",
        "admin1234",
        "administrator",
        "changeme",
        "changeme1",
        "changeme123",
        "default1",
        "secret123",
        "monkey123",
        "dragon123",
        "master123",
        "shadow123",
        "michael1",
        "jennifer",
        "charlie1",
        "computer",
        "internet",
        "whatever",
        "freedom1",
        "loveme123",
        "hello123",
        "hello1234",
        "football1",
        "mustang1",
        "jordan23",
        "harley123",
        "ranger123",
        "q1w2e3r4",
        "q1w2e3r4t5",
        "zaq12wsx",
        "zaq1zaq1",
        "passpass",
        "mypassword",
        "mypassword1",
        "orgbase123",
        "summer2024",
        "summer2025",
        "summer2026",
        "winter2024",
        "winter2025",
        "winter2026",
        "spring2026",
        "autumn2026",
    )
)


def check_password_rules(password: str, email: str | None, min_length: int) -> None:
    """Raise Invalid(code="weak_password") listing what is wrong."""
    problems = []
    if len(password) < min_length:
        problems.append(f"at least {min_length} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        problems.append(f"at most {MAX_PASSWORD_LENGTH} characters")
    lowered = password.lower()
    if lowered in COMMON_PASSWORDS:
        problems.append("not a commonly used password")
    if len(set(password)) < 4:
        problems.append("more than three distinct characters")
    if email and lowered in {email.lower(), email.split("@", 1)[0].lower()}:
        problems.append("not your email address")
    if problems:
        raise Invalid(
            "the password does not meet the rules",
            code="weak_password",
            details={"rules": problems},
        )


BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")


def is_bcrypt(stored_hash: str) -> bool:
    """A bcrypt hash (users imported from Supabase keep theirs until their next sign-in,
    which rehashes the password with argon2id: ``needs_rehash`` is true for them)."""
    return stored_hash.startswith(BCRYPT_PREFIXES)


def _bcrypt_verify(stored_hash: str, password: str) -> bool:
    try:
        return bcrypt.checkpw(password.encode(), stored_hash.encode())
    except ValueError:  # a malformed hash, or a password past bcrypt's 72 bytes
        return False


class Passwords:
    def __init__(self, settings: AuthSettings) -> None:
        self.hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )
        self._pool = ThreadPoolExecutor(
            max_workers=settings.hash_concurrency, thread_name_prefix="argon2"
        )
        self._dummy_hash: str | None = None

    async def prepare(self) -> None:
        """Compute the dummy hash at start, so the first unknown email costs the usual."""
        if self._dummy_hash is None:
            self._dummy_hash = await self.hash(secrets.token_urlsafe(24))

    async def _run(self, function: object, *args: str) -> object:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, function, *args)  # type: ignore[arg-type]

    async def hash(self, password: str) -> str:
        return str(await self._run(self.hasher.hash, password))

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """Check a password; with no stored hash, do the same work and return False."""
        if stored_hash is None:
            await self.prepare()
            assert self._dummy_hash is not None
            await self._run(self._verify, self._dummy_hash, password)
            return False
        return bool(await self._run(self._verify, stored_hash, password))

    def _verify(self, stored_hash: str, password: str) -> bool:
        if is_bcrypt(stored_hash):
            return _bcrypt_verify(stored_hash, password)
        try:
            return self.hasher.verify(stored_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        try:
            return self.hasher.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return True

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def new_hasher(time_cost: int = 3, memory_cost_kib: int = 65536) -> PasswordHasher:
    """A hasher with explicit parameters, for tools that run outside the gateway."""
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_cost_kib, parallelism=1)
