"""The test OpenID provider: oidc-provider (npm) run by node from tests/oidc, installed
with `npm ci` from its lock file when missing. Its signing key is made here, so tests can
also mint tokens with the provider's real key (wrong issuer, audience, expiry...)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from devstack import LocalStack
from tests.integration.test_gotrue_clients import gotrue_env
from tests.support.processes import free_port, start_server, stop_server
from tests.support.stack import ROOT, STATE_DIR

PROVIDER_DIR = ROOT / "tests" / "oidc"


def ensure_installed() -> None:
    if (PROVIDER_DIR / "node_modules" / "oidc-provider").exists():
        return
    npm = shutil.which("npm")
    assert npm is not None, "npm is needed for the OIDC tests (scripts/test_packages.sh)"
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"], cwd=PROVIDER_DIR, check=True, timeout=600
    )


def new_rsa_jwk(kid: str) -> tuple[rsa.RSAPrivateKey, dict[str, Any]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(key))
    jwk.update({"kid": kid, "use": "sig", "alg": "RS256"})
    return key, jwk


def client_of(gateway: str, client_id: str, client_secret: str) -> dict[str, Any]:
    """The provider's registration of a gateway as a client (code flow, refresh tokens)."""
    return {
        "client_id": client_id,
        "client_secret": client_secret,
        "redirect_uris": [f"{gateway}/auth/v1/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
    }


@dataclass
class LocalProvider:
    issuer: str
    private_key: rsa.RSAPrivateKey
    kid: str

    def control(self, path: str, body: dict[str, Any]) -> None:
        answer = httpx.post(f"{self.issuer}/test/{path}", json=body, timeout=5)
        assert answer.status_code == 204, answer.text

    def account(self, sub: str, email: str, *, verified: bool = True) -> None:
        self.control("account", {"sub": sub, "email": email, "email_verified": verified})

    def next_login(self, sub: str) -> None:
        self.control("next-login", {"sub": sub})

    def remove(self, sub: str) -> None:
        self.control("remove", {"sub": sub})


@contextmanager
def running_provider(
    port: int, clients: list[dict[str, Any]], log_file: Path
) -> Iterator[LocalProvider]:
    ensure_installed()
    node = shutil.which("node")
    assert node is not None
    key, jwk = new_rsa_jwk("provider-key-1")
    config = json.dumps({"clients": clients, "jwks": {"keys": [jwk]}})
    issuer = f"http://127.0.0.1:{port}"
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            [node, "provider.mjs", str(port)],
            cwd=PROVIDER_DIR,
            env={"CONFIG": config, "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
            stdout=log,
            stderr=log,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=1).is_success:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the OpenID provider did not start (see {log_file})")
            time.sleep(0.1)
        yield LocalProvider(issuer, key, "provider-key-1")
    finally:
        process.terminate()
        process.wait(10)


@contextmanager
def gateway_with_provider(
    stack: LocalStack,
    offset: int,
    name: str,
    client: tuple[str, str],
    *,
    operator_provider: dict[str, str] | None = None,
    **env: str,
) -> Iterator[tuple[LocalProvider, str]]:
    """A real OpenID provider at this stack's port base + ``offset`` (past the replica,
    +20) and a dev-mode gateway process (mail to the stack's catcher) registered with it
    as ``client`` (id, secret); with ``operator_provider`` (name, label...), the gateway
    offers it as one of the operator's providers. Yields (provider, gateway URL)."""
    gateway_port = free_port()
    gateway = f"http://127.0.0.1:{gateway_port}"
    clients = [client_of(gateway, *client)]
    port = stack.layout.port_base + offset
    with (
        running_provider(port, clients, STATE_DIR / f"{name}_provider.log") as provider,
        tempfile.TemporaryDirectory() as scratch,
    ):
        if operator_provider is not None:
            listed = [
                {
                    **operator_provider,
                    "issuer": provider.issuer,
                    "client_id": client[0],
                    "client_secret": client[1],
                }
            ]
            providers = Path(scratch) / "providers.json"
            providers.write_text(json.dumps(listed))
            env = {"ORGBASE_AUTH_OIDC_PROVIDERS_FILE": str(providers), **env}
        settings = gotrue_env(
            stack,
            ORGBASE_TENANCY_PUBLIC_URL=gateway,
            ORGBASE_AUTH_ALLOW_UNCONFIRMED_SIGN_IN="true",
            **env,
        )
        process = start_server(settings, gateway_port, log_file=STATE_DIR / f"{name}_gateway.log")
        try:
            yield provider, gateway
        finally:
            stop_server(process)
