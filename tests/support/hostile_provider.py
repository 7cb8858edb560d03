"""An OpenID provider that answers as a test tells it to, on loopback: what a certified
provider (tests/oidc, oidc-provider) will never do, an org's own provider may: answer
its token endpoint with HTML or a JSON array, sign an ID token with an algorithm its key
cannot make, split the email and its verification between the ID token and userinfo,
name internal or ``javascript:`` URLs in its discovery document.

It speaks real HTTP (the gateway fetches it as any provider) and signs real JWTs; only
the answers are chosen. The authorization endpoint signs in at once (no login page).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.oidc_provider import new_rsa_jwk

KID = "hostile-key-1"


@dataclass
class Script:
    """What the provider answers next (tests change it between sign-ins)."""

    sub: str = "someone"
    id_token_claims: dict[str, Any] = field(default_factory=dict)
    """Claims of the ID token besides iss/sub/aud/iat/exp/nonce."""
    userinfo: dict[str, Any] | None = None
    """userinfo's JSON (its ``sub`` is added); None: an HTML page instead."""
    token_body: bytes | None = None
    """The token endpoint's whole answer (200) instead of real tokens."""
    alg: str = "RS256"
    """The ID token's ``alg`` header: ES256 is signed with an EC key under the RSA kid."""
    discovery: dict[str, str] = field(default_factory=dict)
    """URLs of the discovery document replaced (``token_endpoint``: an internal one)."""


class HostileProvider:
    def __init__(self, port: int) -> None:
        self.issuer = f"http://127.0.0.1:{port}"
        self.port = port
        self.key, jwk = new_rsa_jwk(KID)
        self.public_jwk = {k: v for k, v in jwk.items() if k in ("kty", "n", "e", "kid", "use")}
        self.script = Script()
        self.nonces: dict[str, str] = {}

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "jwks_uri": f"{self.issuer}/jwks",
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            **self.script.discovery,
        }

    def id_token(self, client_id: str, nonce: str) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": self.script.sub,
            "aud": client_id,
            "iat": now,
            "exp": now + 300,
            "nonce": nonce,
            **self.script.id_token_claims,
        }
        headers = {"kid": KID}
        if self.script.alg == "ES256":
            return jwt.encode(
                claims, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256", headers=headers
            )
        return jwt.encode(claims, self.key, algorithm="RS256", headers=headers)


def _handler(provider: HostileProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            del format, args  # quiet

        def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("content-type", kind)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/.well-known/openid-configuration":
                self._send(200, json.dumps(provider.discovery()).encode())
            elif url.path == "/jwks":
                self._send(200, json.dumps({"keys": [provider.public_jwk]}).encode())
            elif url.path == "/authorize":
                code = secrets.token_urlsafe(16)
                provider.nonces[code] = f"{query['client_id']} {query['nonce']}"
                back = (
                    f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}"
                )
                self.send_response(302)
                self.send_header("location", back)
                self.send_header("content-length", "0")
                self.end_headers()
            elif url.path == "/userinfo":
                info = provider.script.userinfo
                if info is None:
                    self._send(200, b"<html>maintenance</html>", "text/html")
                else:
                    self._send(200, json.dumps({"sub": provider.script.sub, **info}).encode())
            else:
                self._send(404, b"{}")

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            if provider.script.token_body is not None:
                self._send(200, provider.script.token_body)
                return
            client_id, nonce = provider.nonces.pop(form.get("code", ""), " ").split(" ", 1)
            tokens = {
                "access_token": secrets.token_urlsafe(16),
                "token_type": "Bearer",
                "id_token": provider.id_token(client_id, nonce),
            }
            self._send(200, json.dumps(tokens).encode())

    return Handler


@contextmanager
def running_hostile_provider(port: int) -> Iterator[HostileProvider]:
    provider = HostileProvider(port)
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(provider))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
