"""What an org's own OpenID provider answers is a customer's doing: attacked through a
real gateway with a provider that answers as told (tests/support/hostile_provider.py).

- The email and whether it is verified come from ONE source: an ID token saying
  ``email_verified: true`` without an email, and userinfo giving an address it says is
  NOT verified, once confirmed that address (the two were merged).
- A token endpoint answering HTML or a JSON array, a userinfo endpoint answering HTML,
  an ID token whose ``alg`` does not fit its key: each a 4xx/502 with a code, never a 500.
- An issuer that is not a URL (``http://[::1``) is a 400, not a 500.
- A discovery document naming internal URLs or a ``javascript:`` authorization endpoint
  is refused when the provider is saved, and again at every fetch.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from devstack import LocalStack
from orgbase.core.settings import Settings
from tests.integration.test_gotrue_clients import gotrue_env
from tests.support.hostile_provider import HostileProvider, Script, running_hostile_provider
from tests.support.processes import free_port, start_server, stop_server
from tests.support.sso import APP, Api, Owner, mark_verified, sso_sign_in
from tests.support.stack import STATE_DIR

CLIENT_ID = "hostile-client"


@dataclass
class World:
    api: Api
    provider: HostileProvider
    owner: Owner
    domain: str


@pytest.fixture(scope="module")
def world(stack: LocalStack, settings: Settings) -> Iterator[World]:
    gateway_port = free_port()
    gateway = f"http://127.0.0.1:{gateway_port}"
    with running_hostile_provider(stack.layout.port_base + 38) as provider:
        env = gotrue_env(
            stack,
            ORGBASE_TENANCY_PUBLIC_URL=gateway,
            ORGBASE_AUTH_ALLOW_UNCONFIRMED_SIGN_IN="true",
        )
        process = start_server(env, gateway_port, log_file=STATE_DIR / "hostile_gateway.log")
        try:
            api = Api(gateway, stack.secrets["publishable"])
            owner = api.org_with_owner("hostile provider org")
            domain = f"hostile-{uuid.uuid4().hex[:8]}.test"
            body = {"issuer": provider.issuer, "client_id": CLIENT_ID, "client_secret": "s"}
            configured = api.call("PUT", f"/v1/orgs/{owner.org_id}/sso", owner.token, json=body)
            assert configured.status_code == 200, configured.text
            claimed = api.call(
                "POST",
                f"/v1/orgs/{owner.org_id}/sso/domains",
                owner.token,
                json={"domain": domain},
            )
            assert claimed.status_code == 201, claimed.text
            asyncio.run(mark_verified(settings, owner.org_id, domain))
            yield World(api, provider, owner, domain)
        finally:
            stop_server(process)


def test_the_email_and_its_verification_come_from_one_source(world: World) -> None:
    address = f"unverified-{uuid.uuid4().hex[:6]}@{world.domain}"
    world.provider.script = Script(
        sub=f"split-{uuid.uuid4().hex[:6]}",
        id_token_claims={"email_verified": True},  # ...but no email in the ID token
        userinfo={"email": address, "email_verified": False},
    )
    answer = sso_sign_in(world.api, world.domain)
    assert answer.status_code == 403, answer.text
    assert answer.json()["code"] == "oidc_email_not_verified"
    # No account was made for the address: it can still be signed up for.
    assert world.api.sign_up(address) == address

    # The same, told consistently by userinfo: signed in.
    verified = f"verified-{uuid.uuid4().hex[:6]}@{world.domain}"
    world.provider.script = Script(
        sub=f"whole-{uuid.uuid4().hex[:6]}",
        id_token_claims={"email_verified": False},
        userinfo={"email": verified, "email_verified": True},
    )
    assert sso_sign_in(world.api, world.domain).status_code == 303


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        (Script(token_body=b"<html>502 Bad Gateway</html>"), (502, "oidc_provider_bad_answer")),
        (Script(token_body=b"[1, 2, 3]"), (502, "oidc_provider_bad_answer")),
        (Script(token_body=b'"a string"'), (502, "oidc_provider_bad_answer")),
        (Script(userinfo=None), (502, "oidc_provider_bad_answer")),
        (
            Script(alg="ES256", id_token_claims={"email": "x@y.test", "email_verified": True}),
            (403, "oidc_id_token_invalid"),
        ),
    ],
    ids=["token html", "token array", "token string", "userinfo html", "alg not the key's"],
)
def test_a_providers_garbage_is_a_clear_answer_never_a_500(
    world: World, script: Script, expected: tuple[int, str]
) -> None:
    world.provider.script = script
    answer = sso_sign_in(world.api, world.domain)
    assert (answer.status_code, answer.json()["code"]) == expected, answer.text


def _signed_in(sub: str, domain: str, **claims: object) -> Script:
    email = f"claims-{uuid.uuid4().hex[:6]}@{domain}"
    return Script(sub=sub, id_token_claims={"email": email, "email_verified": True, **claims})


@pytest.mark.parametrize(
    ("sub", "claims"),
    [
        ("", {}),
        ("   ", {}),
        ("s" * 300, {}),
        ("s" * 1000, {}),
        ("s" * 100_000, {}),
        ("line\nbreak", {}),
        ("string-exp", {"exp": str(int(time.time()) + 3600)}),
        ("string-iat", {"iat": str(int(time.time()))}),
        ("long-email", {"email": "a" * 330 + "@{domain}"}),
    ],
    ids=[
        "empty sub",
        "blank sub",
        "sub of 300",
        "sub of 1000",
        "sub of 100000",
        "sub with a newline",
        "exp as a string",
        "iat as a string",
        "email over 320",
    ],
)
def test_claims_that_cannot_be_stored_or_compared_are_refused(
    world: World, sub: str, claims: dict[str, object]
) -> None:
    """An ID token's subject is stored (1 to 255 characters) and its times compared: a
    subject that is empty, blank, too long or not printable, a time given as a string, an
    email longer than an address may be: each answered 500 (CheckViolationError) or was
    accepted. Each is refused with the provider's error code, never a 500."""
    if "email" in claims:
        claims = {"email": str(claims["email"]).format(domain=world.domain)}
    world.provider.script = _signed_in(sub, world.domain, **claims)
    answer = sso_sign_in(world.api, world.domain)
    assert (answer.status_code, answer.json()["code"]) == (403, "oidc_id_token_invalid"), (
        answer.text
    )


@pytest.mark.parametrize(
    "issuer",
    ["http://[::1", "http://[", "https://[zz]/", "https://idp.example:99999/", "https://idp:x/"],
)
def test_an_issuer_that_is_not_a_url_is_a_400(world: World, issuer: str) -> None:
    body = {"issuer": issuer, "client_id": CLIENT_ID, "client_secret": "s"}
    path = f"/v1/orgs/{world.owner.org_id}/sso"
    answer = world.api.call("PUT", path, world.owner.token, json=body)
    assert (answer.status_code, answer.json()["code"]) == (400, "invalid_issuer"), answer.text
    assert world.api.call("GET", path, world.owner.token).json()["issuer"] == world.provider.issuer


UNUSABLE_DISCOVERY = [
    ({"token_endpoint": "http://10.0.0.1/token"}, (400, "sso_provider_refused")),
    ({"jwks_uri": "http://169.254.169.254/latest/meta-data/"}, (400, "sso_provider_refused")),
    ({"userinfo_endpoint": "http://[fd00::1]/userinfo"}, (400, "sso_provider_refused")),
    ({"token_endpoint": "http://[::ffff:10.0.0.1]/token"}, (400, "sso_provider_refused")),
    ({"token_endpoint": "file:///etc/passwd"}, (400, "sso_provider_refused")),
    ({"authorization_endpoint": "javascript:alert(document.cookie)"}, (502, None)),
    ({"authorization_endpoint": "data:text/html,<script>alert(1)</script>"}, (502, None)),
]
UNUSABLE_IDS = [
    "token 10.x",
    "jwks metadata service",
    "userinfo private v6",
    "token mapped 10.x",
    "token file",
    "authorize javascript",
    "authorize data",
]


@pytest.mark.parametrize(("discovery", "at_use"), UNUSABLE_DISCOVERY, ids=UNUSABLE_IDS)
def test_a_discovery_document_naming_unusable_urls_is_refused_when_saved(
    world: World, discovery: dict[str, str], at_use: tuple[int, str | None]
) -> None:
    """Only the issuer was checked when an org's provider was saved: its discovery document
    could name internal token, key or userinfo endpoints and a ``javascript:`` authorization
    endpoint (refused only when fetched, or not at all: browsers were sent there). The
    document is now checked whole when saved, and nothing is written."""
    del at_use
    world.provider.script = Script(discovery=discovery)
    body = {"issuer": world.provider.issuer, "client_id": CLIENT_ID, "client_secret": "s"}
    path = f"/v1/orgs/{world.owner.org_id}/sso"
    answer = world.api.call("PUT", path, world.owner.token, json=body | {"default_role": "viewer"})
    assert (answer.status_code, answer.json()["code"]) == (400, "sso_provider_refused"), answer.text
    assert world.api.call("GET", path, world.owner.token).json()["default_role"] == "member"
    world.provider.script = Script()
    saved = world.api.call("PUT", path, world.owner.token, json=body)
    assert saved.status_code == 200, saved.text


def test_a_discovery_document_changed_after_saving_is_refused_before_use(
    world: World,
) -> None:
    """Its owner may change the document after saving: each fetch checks it whole again,
    before the browser is sent to the authorization endpoint or the gateway fetches any
    of its URLs (``javascript:`` is the provider's garbage: 502)."""
    with running_hostile_provider(free_port()) as provider:
        owner = world.api.org_with_owner("discovery changes later")
        body = {"issuer": provider.issuer, "client_id": CLIENT_ID, "client_secret": "s"}
        path = f"/v1/orgs/{owner.org_id}/sso"
        saved = world.api.call("PUT", path, owner.token, json=body)
        assert saved.status_code == 200, saved.text
        browser = httpx.Client(base_url=world.api.gateway, timeout=10, follow_redirects=False)
        query = {"provider": f"sso:{owner.org_id}", "redirect_to": APP}
        for discovery, (status, code) in UNUSABLE_DISCOVERY:
            provider.script = Script(discovery=discovery)
            answer = browser.get("/auth/v1/authorize", params=query)
            assert answer.status_code == status, (discovery, answer.text)
            assert answer.json()["code"] == (code or "oidc_provider_bad_answer"), answer.text
            assert "location" not in answer.headers
            start = {"provider_id": f"sso:{owner.org_id}", "redirect_to": APP}
            started = world.api.call("POST", "/auth/v1/sso", json=start)
            assert started.status_code == status, (discovery, started.text)
