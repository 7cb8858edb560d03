"""Signing keys: a JWK set file whose first key of the configured algorithm signs and whose
other keys still verify.

Rotation: ``orgbase keys rotate`` puts a new key first (new tokens use it, tokens signed
by the old one stay valid); once the old tokens have expired, ``orgbase keys retire KID``
removes the old key and with it every token it signed. A set may hold keys of several
algorithms (moving from EdDSA to ES256 is a rotation); each key names its own ``alg`` and
verifies only tokens of that algorithm: the key a token's ``kid`` names pins the
algorithm, tokens never choose it.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from jwt.algorithms import ECAlgorithm, HMACAlgorithm, OKPAlgorithm

ALGORITHMS = ("EdDSA", "ES256", "HS256")
DEFAULT_ALGORITHM = "ES256"
"""What Supabase's clients verify (supabase-py's decoder and supabase-js ``getClaims()`` know
RS256/ES256/HS256; EdDSA stays an option)."""


class KeyError_(ValueError):
    """The key set is missing, unreadable or inconsistent."""


@dataclass(frozen=True)
class SigningKey:
    kid: str
    algorithm: str
    signing_key: Any
    verifying_key: Any
    public_jwk: dict[str, Any] | None
    """None for HS256: a shared secret is never published."""


def generate_jwk(algorithm: str) -> dict[str, Any]:
    """A new private JWK with ``kid``, ``alg`` and ``use``."""
    kid = secrets.token_hex(8)
    if algorithm == "EdDSA":
        jwk = OKPAlgorithm.to_jwk(ed25519.Ed25519PrivateKey.generate(), as_dict=True)
    elif algorithm == "ES256":
        jwk = ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP256R1()), as_dict=True)
    elif algorithm == "HS256":
        jwk = HMACAlgorithm.to_jwk(secrets.token_bytes(32), as_dict=True)
    else:
        raise KeyError_(f"unsupported algorithm {algorithm!r}; use one of {ALGORITHMS}")
    return {**jwk, "kid": kid, "alg": algorithm, "use": "sig"}


def _load_key(jwk: Any) -> SigningKey:
    if not isinstance(jwk, dict):
        raise KeyError_("every key is a JWK object")
    kid = jwk.get("kid")
    if not isinstance(kid, str) or not kid:
        raise KeyError_("every key needs a kid")
    algorithm = jwk.get("alg")
    if algorithm not in ALGORITHMS:
        raise KeyError_(f"key {kid} is {algorithm!r}: every key names its alg, one of {ALGORITHMS}")
    try:
        parsed = jwt.PyJWK(jwk, algorithm)
    except jwt.PyJWKError as exc:
        raise KeyError_(f"key {kid} cannot be read: {exc}") from exc
    if algorithm == "HS256":
        return SigningKey(kid, algorithm, parsed.key, parsed.key, None)
    private = parsed.key
    if not hasattr(private, "public_key"):
        raise KeyError_(f"key {kid} has no private part; the set must hold signing keys")
    public = private.public_key()
    algorithm_impl = OKPAlgorithm() if algorithm == "EdDSA" else ECAlgorithm(ECAlgorithm.SHA256)
    public_jwk = {
        **algorithm_impl.to_jwk(public, as_dict=True),
        "kid": kid,
        "alg": algorithm,
        "use": "sig",
    }
    return SigningKey(kid, algorithm, private, public, public_jwk)


class KeySet:
    def __init__(self, keys: Iterable[SigningKey], algorithm: str) -> None:
        self.keys = list(keys)
        if not self.keys:
            raise KeyError_("the key set is empty")
        signing = [key for key in self.keys if key.algorithm == algorithm]
        if not signing:
            raise KeyError_(
                f"the key set has no {algorithm} key to sign with: `orgbase keys rotate FILE"
                f" --algorithm {algorithm}` adds one in front (the others keep verifying), or"
                f" set ORGBASE_AUTH_JWT_ALGORITHM={self.keys[0].algorithm}"
            )
        self.active = signing[0]
        self.by_kid = {key.kid: key for key in self.keys}
        if len(self.by_kid) != len(self.keys):
            raise KeyError_("two keys share a kid")

    @classmethod
    def from_jwks(cls, document: dict[str, Any], algorithm: str) -> KeySet:
        """``algorithm``: the one that signs (its first key in the set does)."""
        entries = document.get("keys")
        if not isinstance(entries, list):
            raise KeyError_('a key set is {"keys": [...]}')
        return cls((_load_key(entry) for entry in entries), algorithm)

    @classmethod
    def from_file(cls, path: Path, algorithm: str) -> KeySet:
        try:
            document = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise KeyError_(f"cannot read signing keys from {path}: {exc}") from exc
        return cls.from_jwks(document, algorithm)

    @classmethod
    def ephemeral(cls, algorithm: str) -> KeySet:
        return cls.from_jwks({"keys": [generate_jwk(algorithm)]}, algorithm)

    def public_jwks(self) -> dict[str, list[dict[str, Any]]]:
        return {"keys": [k.public_jwk for k in self.keys if k.public_jwk is not None]}


def write_keys_file(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(document, handle, indent=2)
    temporary.replace(path)


def rotate_keys_file(path: Path, algorithm: str = DEFAULT_ALGORITHM) -> str:
    """Put a new key first (creating the file if needed); return its kid."""
    document: dict[str, Any] = {"keys": []}
    if path.exists():
        document = json.loads(path.read_text())
    new = generate_jwk(algorithm)
    document["keys"] = [new, *document.get("keys", [])]
    KeySet.from_jwks(document, algorithm)  # refuse to write a set the server cannot load
    write_keys_file(path, document)
    return str(new["kid"])


def ensure_signing_key(path: Path, algorithm: str = DEFAULT_ALGORITHM) -> str | None:
    """Make sure the set has a key of ``algorithm`` (a rotation when it has none, so the
    keys it holds keep verifying); the new key's kid, or None when one was there."""
    if path.exists():
        document = json.loads(path.read_text())
        if any(isinstance(k, dict) and k.get("alg") == algorithm for k in document.get("keys", [])):
            return None
    return rotate_keys_file(path, algorithm)


def retire_key(path: Path, kid: str) -> None:
    document = json.loads(path.read_text())
    keys = [k for k in document.get("keys", []) if k.get("kid") != kid]
    if len(keys) == len(document.get("keys", [])):
        raise KeyError_(f"no key {kid} in {path}")
    if not keys:
        raise KeyError_("cannot retire the only key")
    write_keys_file(path, {**document, "keys": keys})
