"""The lifecycle matrix: every operation of /schema by every state a credential can be in.

Operations come from the gateway's own OpenAPI document, so a new route is covered by
default. Each state is made for real on a fresh pair of orgs A and B (log out, revoke,
remove, demote, delete, claim, verify or drop an SSO domain, replace the SSO provider,
remove the maker of an API key...), then every operation that needs credentials is called
with the credential in that state, on org A's ids, with the smallest body its schema
accepts (built from the schema). The answer must be the refusal the state calls for (or an
allowed answer where the state still grants something), never a 5xx, and never carry the
other org's canary strings. The WebSocket, which /schema does not describe, is checked for
every refused state as well.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pytest
import schemathesis
import websockets
from litestar.testing import AsyncTestClient
from schemathesis import APIOperation
from schemathesis.core.result import Err

from orgbase.auth.keys import KeySet
from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp
from orgbase.services.postgres.openapi_tables import TABLE_MARK
from tests.support.data import make_platform_admin, owner_connection
from tests.support.http import (
    PASSWORD,
    add_member,
    admin_at_aal2,
    bearer,
    create_org,
    new_user,
    password_grant,
    session_of,
    sign_in,
)

pytestmark = pytest.mark.slow

Client = AsyncTestClient[OrgbaseApp]
AnyOperation = APIOperation[Any, Any, Any, Any]
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
# Routes that act in the credential's active org (the token's org claim, the key's org).
ACTIVE_ORG = ("/v1/db", "/v1/docs", "/v1/kv", "/v1/realtime", "/storage/v1", "/realtime/v1/api")
STREAMS = ("/v1/realtime/sse",)
# Calls that end the caller's own credential or org when they succeed: they go last, and
# what follows them is held only to "no 5xx, no other org's data".
# POSTs that only read (queries with a body).
# (The function called at /v1/db/rpc/{fn} here is count_items, a read; what a viewer's
# writing call gets is tested in tests/integration/test_rpc.py.)
READ_ONLY_POSTS = (
    "/query",
    "/count",
    "/aggregate",
    "/rpc/{fn}",
    "/object/list/{bucket}",
    "/object/sign/{bucket}",
    "/object/sign/{bucket}/{name}",
)
ENDS_THE_CALLER = {
    "POST /v1/auth/logout",
    "POST /auth/v1/logout",
    "POST /v1/auth/browser/sign-out",
    "PATCH /v1/auth/user",
    "DELETE /v1/auth/user",
    "DELETE /v1/orgs/{org_id}",
}


@dataclass
class World:
    """Orgs A and B; A has an owner, an admin, a member and an admin API key, and data of
    every kind holding A's canary."""

    a: str
    b: str
    canary_a: str
    canary_b: str
    headers: dict[str, dict[str, str]]
    users: dict[str, dict[str, Any]]
    tokens: dict[str, dict[str, Any]]
    ids: dict[str, str] = field(default_factory=dict)


async def make_world(client: Client) -> World:
    canary_a, canary_b = (f"canary-{n}-{uuid.uuid4().hex[:10]}" for n in "ab")
    users: dict[str, dict[str, Any]] = {}
    tokens: dict[str, dict[str, Any]] = {}
    owner, owner_tokens = await new_user(client)
    org_a = await create_org(client, owner_tokens, canary_a)
    users["owner"] = owner
    for role in ("admin", "member"):
        person, _ = await new_user(client)
        await add_member(client, owner_tokens, org_a, person, role)
        users[role] = person
    for name, person in users.items():
        tokens[name] = await sign_in(client, person["email"], org_a)
    owner_b, owner_b_tokens = await new_user(client)
    org_b = await create_org(client, owner_b_tokens, canary_b)
    tokens["owner_b"] = await sign_in(client, owner_b["email"], org_b)
    users["owner_b"] = owner_b
    headers = {name: bearer(t["access_token"]) for name, t in tokens.items()}
    world = World(org_a, org_b, canary_a, canary_b, headers, users, tokens)
    for org, owner_headers, canary in (
        (org_a, headers["owner"], canary_a),
        (org_b, headers["owner_b"], canary_b),
    ):
        made = await client.post("/v1/db/items", headers=owner_headers, json={"title": canary})
        assert made.status_code == 201, made.text
        document = await client.post("/v1/docs/notes", headers=owner_headers, json={"text": canary})
        assert document.status_code == 201
        assert (
            await client.put("/v1/kv/greeting", headers=owner_headers, json={"value": canary})
        ).status_code == 200
        # A bucket of the same name in both orgs, each with a file holding its canary.
        bucket = await client.post(
            "/storage/v1/bucket", headers=owner_headers, json={"id": "files"}
        )
        assert bucket.status_code == 200, bucket.text
        stored = await client.post(
            "/storage/v1/object/files/x",
            headers={**owner_headers, "content-type": "text/plain"},
            content=canary.encode(),
        )
        assert stored.status_code == 200, stored.text
        if org == org_a:
            world.ids["document_id"] = document.json()["_id"]["$oid"]
    key = await client.post(
        f"/v1/orgs/{org_a}/api-keys",
        headers=headers["owner"],
        json={"name": canary_a, "role": "admin"},
    )
    invitation = await client.post(
        f"/v1/orgs/{org_a}/invitations",
        headers=headers["owner"],
        json={"email": f"{canary_a}@x.test"},
    )
    # A public address literal passes the destination check with no lookup (there is no
    # network here: its deliveries fail, which this test does not look at). Registering
    # needs the owner in person at aal2.
    strong = await admin_at_aal2(client, tokens["owner"])
    endpoint = await client.post(
        f"/v1/orgs/{org_a}/webhooks",
        headers=bearer(strong["access_token"]),
        json={
            "url": "http://93.184.216.34/hook",
            "events": ["webhook.test"],
            "description": canary_a,
        },
    )
    assert endpoint.status_code == 201, endpoint.text
    endpoint_id = endpoint.json()["id"]
    tested = await client.post(
        f"/v1/orgs/{org_a}/webhooks/{endpoint_id}/test", headers=headers["owner"]
    )
    assert tested.status_code == 202, tested.text
    log = await client.get(
        f"/v1/orgs/{org_a}/webhooks/{endpoint_id}/deliveries", headers=headers["owner"]
    )
    world.ids |= {"endpoint_id": endpoint_id, "delivery_id": str(log.json()["items"][0]["id"])}
    world.headers["key"] = {"apikey": key.json()["key"]}
    # Used once: cached from now on, as a key in daily use is.
    assert (await client.get("/v1/kv/greeting", headers=world.headers["key"])).status_code == 200
    world.ids |= {
        "key_id": key.json()["id"],
        "invitation_id": invitation.json()["id"],
        "user_id": users["member"]["id"],
    }
    return world


# -- the states ---------------------------------------------------------------------------


@dataclass(frozen=True)
class State:
    """Which credential, after what was done to it, and what it may still do."""

    name: str
    caller: str
    refusal: tuple[int, str] | None
    """Every operation needing credentials answers this; None when the state still allows
    some (then ``in_org`` says what org-scoped operations answer)."""
    in_org: tuple[int, str] | None = None
    """For a state that allows: the answer of operations in org A (None: allowed)."""
    downgraded: bool = False
    """A viewer now: no write in the org may succeed."""
    foreign: str = "b"
    """Whose canary the answers must never hold."""
    expect: tuple[tuple[str, tuple[int, str]], ...] = ()
    """Operations (by label) that must answer this, whatever the rest does."""
    read_only: bool = False
    """An impersonation of org A: every call that may write, and every call outside org A
    (the admin's own account), answers 403 ``impersonation_read_only``."""


async def expire_token(world: World, settings: Settings) -> None:
    assert settings.auth.signing_keys_file is not None
    keys = KeySet.from_file(Path(settings.auth.signing_keys_file), settings.auth.jwt_algorithm)
    claims = jwt.decode(world.tokens["owner"]["access_token"], options={"verify_signature": False})
    claims |= {
        "iat": int(time.time()) - 3600,
        "nbf": int(time.time()) - 3600,
        "exp": int(time.time()) - 600,
    }
    key = keys.active
    token = jwt.encode(claims, key.signing_key, algorithm=key.algorithm, headers={"kid": key.kid})
    world.headers["owner"] = bearer(token)


async def second_session(client: Client, world: World, who: str) -> dict[str, Any]:
    other = await sign_in(client, world.users[who]["email"], world.a)
    world.headers[f"{who}_other"] = bearer(other["access_token"])
    return other


async def prepare(state: str, client: Client, world: World, settings: Settings) -> None:
    """Put the credential of ``state`` into that state, for real."""
    owner, a = world.headers["owner"], world.a
    if state == "expired":
        await expire_token(world, settings)
    elif state == "logged out":
        assert (
            await client.post("/v1/auth/logout", headers=world.headers["member"])
        ).status_code == 204
    elif state == "session revoked":
        other = await second_session(client, world, "member")
        session = jwt.decode(other["access_token"], options={"verify_signature": False})["sid"]
        revoked = await client.delete(
            f"/v1/auth/sessions/{session}", headers=world.headers["member"]
        )
        assert revoked.status_code in (200, 204), revoked.text
    elif state == "password changed":
        await second_session(client, world, "member")
        changed = await client.patch(
            "/v1/auth/user",
            headers=world.headers["member"],
            json={"password": "a brand new passphrase", "current_password": PASSWORD},
        )
        assert changed.status_code == 200
    elif state == "member removed":
        removed = await client.delete(
            f"/v1/orgs/{a}/members/{world.users['member']['id']}", headers=owner
        )
        assert removed.status_code == 204
    elif state == "role downgraded":
        demoted = await client.patch(
            f"/v1/orgs/{a}/members/{world.users['admin']['id']}",
            headers=owner,
            json={"role": "viewer"},
        )
        assert demoted.status_code == 200
    elif state in (KEY_REVOKED, KEY_MAKER_REMOVED):
        await end_key(state, client, world)
    elif state.startswith("org deleted"):
        assert (await client.delete(f"/v1/orgs/{a}", headers=owner)).status_code == 204
    elif state.startswith(IMPERSONATING):
        await impersonate(client, world, settings, expire=state != IMPERSONATING)
    elif state == "factor verified, aal1 token":
        await factor_then_password(client, world, settings)
    elif state.startswith("email change"):
        await change_email(client, world, settings, confirm=state == "email changed")

    elif state in SSO_STATES:
        await prepare_sso(state, client, world, settings)


KEY_REVOKED = "API key revoked"
KEY_MAKER_REMOVED = "API key's maker removed"


async def end_key(state: str, client: Client, world: World) -> None:
    """The owner revokes the org's key; or the admin makes an admin key (in daily use:
    cached) and the owner removes the admin: the key's authority ends with theirs."""
    owner = world.headers["owner"]
    if state == KEY_REVOKED:
        revoked = await client.delete(
            f"/v1/orgs/{world.a}/api-keys/{world.ids['key_id']}", headers=owner
        )
        assert revoked.status_code == 204
        return
    made = await client.post(
        f"/v1/orgs/{world.a}/api-keys",
        headers=world.headers["admin"],
        json={"name": "admin's", "role": "admin"},
    )
    assert made.status_code == 201, made.text
    world.headers["admin_key"] = {"apikey": made.json()["key"]}
    used = await client.get("/v1/kv/greeting", headers=world.headers["admin_key"])
    assert used.status_code == 200
    removed = await client.delete(
        f"/v1/orgs/{world.a}/members/{world.users['admin']['id']}", headers=owner
    )
    assert removed.status_code == 204


async def factor_then_password(client: Client, world: World, settings: Settings) -> None:
    """The owner, whose factor the world verified (its webhook needed aal2), signs in again
    with the password: an aal1 session of an account that has a second factor."""
    aal1 = await sign_in(client, world.users["owner"]["email"], world.a)
    world.headers["owner"] = bearer(aal1["access_token"])
    user = await client.get(
        "/auth/v1/user",
        headers={**world.headers["owner"], "apikey": settings.auth.publishable_key or ""},
    )
    verified = [f["id"] for f in user.json()["factors"] if f["status"] == "verified"]
    assert verified, user.text
    world.ids["factor_id"] = verified[0]


async def change_email(client: Client, world: World, settings: Settings, *, confirm: bool) -> None:
    """The member asks to move to a new address (pending: it signs nobody in), and, for
    "email changed", confirms it with the code mailed there."""
    member, new = world.users["member"], f"moved-{uuid.uuid4().hex[:10]}@example.test"
    asked = await client.patch(
        "/v1/auth/user",
        headers=world.headers["member"],
        json={"email": new, "current_password": PASSWORD},
    )
    assert (asked.status_code, asked.json()["email"]) == (200, member["email"]), asked.text
    assert (await client.post("/v1/auth/token", json=password_grant(new))).status_code == 401
    if not confirm:
        return
    async with owner_connection(settings) as connection:
        body = await connection.fetchval(
            "SELECT body FROM orgbase.outbox WHERE recipient = $1 ORDER BY id DESC LIMIT 1", new
        )
    code = re.search(r"Your code: (\d{6})", body)
    assert code is not None
    confirmed = await client.post(
        "/auth/v1/verify",
        headers={"apikey": settings.auth.publishable_key or ""},
        json={"type": "email_change", "email": new, "token": code.group(1)},
    )
    assert confirmed.status_code == 200, confirmed.text
    old = await client.post("/v1/auth/token", json=password_grant(member["email"]))
    assert old.status_code == 401
    assert (await client.post("/v1/auth/token", json=password_grant(new))).status_code == 200


async def impersonate(client: Client, world: World, settings: Settings, *, expire: bool) -> None:
    """Org B's owner, a platform admin (in a session of their own, no org), looks at org A:
    the impersonation's token is the caller (``expire``: after the impersonation ended)."""
    await make_platform_admin(settings, world.users["owner_b"]["id"])
    made = await client.post(
        f"/v1/platform/orgs/{world.a}/impersonate",
        headers=bearer((await sign_in(client, world.users["owner_b"]["email"]))["access_token"]),
        json={"reason": "support ticket 42"},
    )
    assert made.status_code == 201, made.text
    world.headers["impersonation"] = bearer(made.json()["access_token"])
    if not expire:
        return
    impersonation = made.json()["impersonation_id"]
    async with owner_connection(settings) as connection:
        # Ended (by time) while its token would still be accepted by signature and exp.
        await connection.execute(
            "UPDATE orgbase.impersonations SET expires_at = now() - interval '1 second'"
            " WHERE id = $1",
            uuid.UUID(impersonation),
        )


# The org's SSO and its domains, as they touch member A's credential (its address moved
# onto a domain of its own first).
PENDING_ELSEWHERE = "domain claimed by another org (pending)"
VERIFIED_ELSEWHERE = "domain verified by another org"
VERIFIED_HERE = "domain verified by the org"
DROPPED = "domain dropped by the org"
LEFT_THE_DOMAIN = "SSO-bound member left the domain"
PROVIDER_REPLACED = "SSO provider replaced (its session)"
SSO_STATES = {
    PENDING_ELSEWHERE,
    VERIFIED_ELSEWHERE,
    VERIFIED_HERE,
    DROPPED,
    LEFT_THE_DOMAIN,
    PROVIDER_REPLACED,
}


async def move_address(settings: Settings, user_id: str, email: str) -> None:
    async with owner_connection(settings) as connection:
        await connection.execute(
            "UPDATE orgbase.users SET email = $2 WHERE id = $1", uuid.UUID(user_id), email
        )


async def security_headers(client: Client, world: World, who: str, settings: Settings) -> Any:
    """``who``'s session raised to aal2 (security settings need it): its headers."""
    raised = await admin_at_aal2(client, world.tokens[who])
    return bearer(raised["access_token"])


async def prepare_sso(state: str, client: Client, world: World, settings: Settings) -> None:
    domain = f"lc-{uuid.uuid4().hex[:8]}.test"
    await move_address(settings, world.users["member"]["id"], f"member@{domain}")
    if state == PROVIDER_REPLACED:
        await replace_provider(client, world, settings)
        return
    claimer, org = ("owner_b", world.b) if "another org" in state else ("owner", world.a)
    headers = await security_headers(client, world, claimer, settings)
    domains = f"/v1/orgs/{org}/sso/domains"
    claimed = await client.post(domains, headers=headers, json={"domain": domain})
    assert claimed.status_code == 201, claimed.text
    if state == PENDING_ELSEWHERE:
        return
    operator, _ = await new_user(client)
    await make_platform_admin(settings, operator["id"])
    admin = bearer((await sign_in(client, operator["email"]))["access_token"])
    approve = f"/v1/platform/sso-domains/{domain}/claims/{org}/verify"
    assert (await client.post(approve, headers=admin)).status_code == 201
    if state == DROPPED:
        assert (await client.delete(f"{domains}/{domain}", headers=headers)).status_code == 204
    elif state == LEFT_THE_DOMAIN:
        await move_address(settings, world.users["member"]["id"], f"member@left-{domain}")


async def replace_provider(client: Client, world: World, settings: Settings) -> None:
    """The member's session was signed in by the org's provider; the owner replaces the
    provider (another issuer): that session ends."""
    headers = await security_headers(client, world, "owner", settings)
    path = f"/v1/orgs/{world.a}/sso"
    # A public address literal passes the destination check with no lookup.
    first = {"issuer": "https://93.184.216.34/one", "client_id": "c", "client_secret": "s"}
    assert (await client.put(path, headers=headers, json=first)).status_code == 200
    async with owner_connection(settings) as connection:
        await connection.execute(
            "UPDATE orgbase.sessions SET sso_org_id = $1 WHERE id = $2",
            uuid.UUID(world.a),
            session_of(world.tokens["member"]["access_token"]),
        )
    second = first | {"issuer": "https://93.184.216.34/two"}
    assert (await client.put(path, headers=headers, json=second)).status_code == 200


AAL2_NEEDED = (403, "insufficient_aal")
IMPERSONATING = "impersonation"
READ_ONLY = (403, "impersonation_read_only")
# What an impersonation may call besides org A's GETs: the POSTs that only read (an RPC
# POST may write: an impersonation calls functions with GET), and what the token says
# about itself.
IMPERSONATION_POST_READS = ("/query", "/count", "/aggregate", "/object/list/{bucket}")
IMPERSONATION_ANYWHERE = {"GET /v1/auth/session"}
STATES = [
    State("valid", "owner", None),
    State("other org's credential", "owner_b", None, in_org=(404, "org_not_found"), foreign="a"),
    State("expired", "owner", (401, "token_expired")),
    State("logged out", "member", (401, "session_revoked"), foreign="a"),
    State("session revoked", "member_other", (401, "session_revoked"), foreign="a"),
    State("password changed", "member_other", (401, "session_revoked"), foreign="a"),
    State("member removed", "member", None, in_org=(404, "org_not_found"), foreign="a"),
    State("role downgraded", "admin", None, downgraded=True),
    State(KEY_REVOKED, "key", (401, "api_key_invalid"), foreign="a"),
    State(KEY_MAKER_REMOVED, "admin_key", (401, "api_key_invalid"), foreign="a"),
    State("org deleted (its API key)", "key", (401, "api_key_invalid"), foreign="a"),
    State("org deleted (a member)", "member", None, in_org=(404, "org_not_found"), foreign="a"),
    State(
        "impersonation expired",
        "impersonation",
        None,
        in_org=(401, "impersonation_ended"),
        foreign="a",
        read_only=True,  # a write, or the admin's account: refused before it is looked up
    ),
    State(IMPERSONATING, "impersonation", None, read_only=True),
    State(
        "factor verified, aal1 token",
        "owner",
        None,
        expect=(
            ("POST /auth/v1/factors", AAL2_NEEDED),
            ("DELETE /auth/v1/factors/{factor_id}", AAL2_NEEDED),
            ("POST /auth/v1/factors/recovery-codes", AAL2_NEEDED),
            ("DELETE /v1/auth/user", AAL2_NEEDED),
        ),
    ),
    State("email change pending", "member", None),
    State("email changed", "member", None),
    State(PENDING_ELSEWHERE, "member", None),
    State(VERIFIED_ELSEWHERE, "member", None),
    State(VERIFIED_HERE, "member", None, in_org=(403, "sso_required")),
    State(DROPPED, "member", None),
    State(LEFT_THE_DOMAIN, "member", None, in_org=(403, "sso_membership_suspended")),
    State(PROVIDER_REPLACED, "member", (401, "session_revoked"), foreign="a"),
]


# -- the operations -----------------------------------------------------------------------


@dataclass
class Call:
    label: str
    method: str
    path_template: str
    query: dict[str, Any]
    body: Any
    has_body: bool

    def path(self, values: dict[str, str]) -> str:
        return self.path_template.format(**values)

    @property
    def in_org(self) -> bool:
        """Does it act in org A (its path's org, or the credential's active org)?"""
        if self.path_template.startswith("/v1/platform"):
            return False  # the platform's own routes name an org, they do not act in it
        return "{org_id}" in self.path_template or self.path_template.startswith(ACTIVE_ORG)

    @property
    def writes(self) -> bool:
        return self.method in MUTATING and not self.path_template.endswith(READ_ONLY_POSTS)

    @property
    def impersonation_refuses(self) -> bool:
        """Does an impersonation of org A get ``impersonation_read_only`` here?"""
        if self.label in IMPERSONATION_ANYWHERE:
            return False
        if self.method in MUTATING and not self.path_template.endswith(IMPERSONATION_POST_READS):
            return True
        return not self.in_org


def smallest(schema: dict[str, Any], document: dict[str, Any]) -> Any:
    """The smallest value a JSON Schema (of this document) accepts: required properties
    only, shortest strings, lowest numbers, the first of every choice."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return smallest(document["components"]["schemas"][name], document)
    for choice in ("oneOf", "anyOf"):
        if choice in schema:
            return smallest(schema[choice][0], document)
    if "enum" in schema or "const" in schema:
        return schema["const"] if "const" in schema else schema["enum"][0]
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "array":
        return [smallest(schema.get("items", {}), document)] * schema.get("minItems", 0)
    if kind == "object":
        properties = schema.get("properties", {})
        return {n: smallest(properties.get(n, {}), document) for n in schema.get("required", [])}
    return _smallest_scalar(kind, schema)


def _smallest_scalar(kind: str, schema: dict[str, Any]) -> Any:
    if kind == "string":
        formats = {"uuid": str(uuid.uuid4()), "date-time": "2030-01-01T00:00:00Z"}
        return formats.get(schema.get("format", ""), "x" * max(1, schema.get("minLength", 1)))
    if kind in ("integer", "number"):
        return schema.get("minimum", 0)
    return {"boolean": False, "null": None}[kind]


def smallest_call(operation: AnyOperation, document: dict[str, Any]) -> Call:
    raw = operation.definition.raw
    query = {
        p["name"]: smallest(p.get("schema", {}), document)
        for p in raw.get("parameters", [])
        if p.get("in") == "query" and p.get("required")
    }
    content = raw.get("requestBody", {}).get("content", {}).get("application/json")
    body = smallest(content.get("schema", {}), document) if content else None
    return Call(
        operation.label,
        operation.method.upper(),
        operation.path,
        query,
        body,
        content is not None,
    )


@pytest.fixture(scope="module")
async def calls(client: Client) -> list[Call]:
    """Every operation of the document that needs credentials."""
    document = (await client.get("/schema/openapi.json")).json()
    schema = schemathesis.openapi.from_dict(document)
    found: list[Call] = []
    for result in schema.get_all_operations():
        assert not isinstance(result, Err), result
        operation = result.ok()
        if operation.definition.raw.get(TABLE_MARK):
            continue  # /v1/db/items... run the handlers of /v1/db/{table}, called here
        if operation.definition.raw.get("security"):
            found.append(smallest_call(operation, document))
    assert len(found) > 50
    return sorted(found, key=lambda call: call.label in ENDS_THE_CALLER)


def path_values(world: World) -> dict[str, str]:
    return {
        "org_id": world.a,
        "table": "items",
        "fn": "count_items",
        "collection": "notes",
        "key": "greeting",
        "channel": "news",
        "topic": "news",
        "event": "ping",
        "version": "1",
        "name": "x",
        "session_id": str(uuid.uuid4()),
        "factor_id": str(uuid.uuid4()),
        "domain": "example.test",
        "identity_id": str(uuid.uuid4()),
        "bucket": "files",
        "upload": str(uuid.uuid4()),
        **world.ids,
    }


def error_code(status: int, content: bytes) -> str | None:
    if status < 400 or not content:
        return None
    try:
        code = json.loads(content).get("code")
    except (ValueError, AttributeError):
        return None
    return code if isinstance(code, str) else None


def _is(expected: tuple[int, str], status: int, code: str | None, call: Call) -> bool:
    """The expected answer (a HEAD answer has no body to carry the code)."""
    return status == expected[0] and (code == expected[1] or call.method == "HEAD")


def verdict(state: State, call: Call, status: int, code: str | None) -> str | None:
    """What is wrong with this answer, or None."""
    if status >= 500:
        return "a 5xx"
    expected = dict(state.expect).get(call.label, state.refusal)
    if expected is None and state.read_only and call.impersonation_refuses:
        expected = READ_ONLY
    if expected is not None:
        return None if _is(expected, status, code, call) else f"not {expected}"
    if (
        call.in_org
        and state.in_org is not None
        and not (
            state.name == "other org's credential" and call.path_template.startswith(ACTIVE_ORG)
        )
    ):
        # (Another org's credential on active-org routes acts in its own org: allowed.)
        return None if _is(state.in_org, status, code, call) else f"not {state.in_org}"
    if status == 401:
        return "a 401 for a credential that still works"
    if state.downgraded and call.in_org and call.writes and 200 <= status < 300:
        return "a write succeeded for a viewer"
    return None


@pytest.mark.parametrize("state", STATES, ids=lambda s: s.name)
async def test_every_operation_in_every_credential_state(
    client: Client, settings: Settings, calls: list[Call], live_server: str, state: State
) -> None:
    world = await make_world(client)
    await prepare(state.name, client, world, settings)
    values = path_values(world)
    headers = world.headers[state.caller]
    foreign = world.canary_b if state.foreign == "b" else world.canary_a
    wrong: list[str] = []
    ended = False
    for call in calls:
        if call.path_template.startswith(STREAMS) and state.refusal is None:
            continue  # a stream that is allowed never ends (tests/security/test_socket_revocation)
        response = await client.request(
            call.method,
            call.path(values),
            params=call.query,
            # Supabase's clients send the publishable key with every call (never a credential).
            headers={
                "apikey": settings.auth.publishable_key or "",
                **headers,
                "content-type": "application/json",
            },
            content=json.dumps(call.body).encode() if call.has_body else None,
        )
        code = error_code(response.status_code, response.content)
        problem = verdict(state, call, response.status_code, code)
        if ended and problem is not None and response.status_code < 500:
            problem = None  # the caller ended itself a call ago
        ended = ended or (call.label in ENDS_THE_CALLER and response.status_code < 300)
        if problem is None and foreign in response.text:
            problem = "the other org's data"
        if problem is not None:
            wrong.append(f"{call.label}: {problem} ({response.status_code} {response.text[:160]})")
    if state.refusal is not None:
        wrong += await websocket_refused(live_server, headers, state.refusal)
    assert not wrong, f"{state.name}: {len(wrong)} operations answered wrong:\n" + "\n".join(wrong)


async def websocket_refused(
    live_server: str, headers: dict[str, str], refusal: tuple[int, str]
) -> list[str]:
    credential = headers.get("apikey") or headers["Authorization"].removeprefix("Bearer ")
    url = live_server.replace("http", "ws") + f"/v1/realtime?access_token={credential}"
    async with websockets.connect(url) as socket:
        error = json.loads(await socket.recv())
    if (error.get("type"), error.get("code")) != ("error", refusal[1]):
        return [f"WebSocket /v1/realtime: not {refusal} ({error})"]
    return []


def test_the_states_cover_the_issue() -> None:
    """Every state the hardening issue names is in the matrix."""
    named = {
        "valid",
        "other org's credential",
        "expired",
        "logged out",
        "session revoked",
        "password changed",
        "member removed",
        "role downgraded",
        "API key revoked",
        KEY_MAKER_REMOVED,
        "org deleted (its API key)",
        "org deleted (a member)",
        "impersonation expired",
        IMPERSONATING,
        "factor verified, aal1 token",
        "email change pending",
        "email changed",
        *SSO_STATES,
    }
    assert {s.name for s in STATES} == named
