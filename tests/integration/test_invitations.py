"""Invitations: delivered by SMTP through the outbox (a real SMTP server the test starts),
accepted once, by the invited address only, before they expire."""

from __future__ import annotations

import re
import socket
from collections.abc import AsyncIterator, Iterator
from email import message_from_bytes
from typing import Any

import msgspec
import pytest
from aiosmtpd.controller import Controller
from litestar.testing import AsyncTestClient

from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp, create_app
from tests.support.data import owner_connection
from tests.support.http import bearer, create_org, new_user, org_with_roles, sign_in, sign_up
from tests.support.stack import with_overrides
from tests.support.waiting import eventually


class Inbox:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.content)
        payload = parsed.get_payload(decode=True)
        assert isinstance(payload, bytes)
        self.messages.append(
            {"to": envelope.rcpt_tos, "subject": parsed["Subject"], "body": payload.decode()}
        )
        return "250 OK"


@pytest.fixture(scope="module")
def inbox() -> Iterator[tuple[Inbox, int]]:
    handler = Inbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


@pytest.fixture(scope="module")
async def mail_client(
    settings: Settings, inbox: tuple[Inbox, int]
) -> AsyncIterator[AsyncTestClient[OrgbaseApp]]:
    _, port = inbox
    configured = with_overrides(
        settings, smtp={"host": "127.0.0.1", "port": port, "starttls": False, "poll_seconds": 0.2}
    )
    # As in production, where an invitation's token travels only by mail.
    configured = msgspec.structs.replace(configured, env="prod")
    async with AsyncTestClient(app=create_app(configured)) as client:
        yield client


async def wait_for_mail(
    inbox: Inbox, recipient: str, within: float = 15.0, about: str = ""
) -> dict[str, Any]:
    """The first mail to ``recipient`` whose subject holds ``about``."""

    def arrived() -> dict[str, Any] | None:
        return next(
            (m for m in inbox.messages if recipient in m["to"] and about in m["subject"]), None
        )

    message: dict[str, Any] = await eventually(arrived, within=within, what=f"mail to {recipient}")
    return message


async def test_invite_by_mail_and_accept(
    mail_client: AsyncTestClient[OrgbaseApp], inbox: tuple[Inbox, int]
) -> None:
    client = mail_client
    _, owner_tokens = await new_user(client)
    org_id = await create_org(client, owner_tokens, "Mailing Org")
    guest = await sign_up(client)
    created = await client.post(
        f"/v1/orgs/{org_id}/invitations",
        headers=bearer(owner_tokens["access_token"]),
        json={"email": guest["email"].upper(), "role": "member"},
    )
    assert created.status_code == 201
    assert created.json()["status"] == "pending"
    assert created.json()["token"] is None, "in production the token only travels by mail"
    # (The guest's sign-up mailed a confirmation before.)
    mail = await wait_for_mail(inbox[0], guest["email"], about="Mailing Org")
    token = re.search(r"token=([A-Za-z0-9_-]+)", mail["body"])
    assert token is not None
    guest_tokens = await sign_in(client, guest["email"])
    accepted = await client.post(
        "/v1/invitations/accept",
        headers=bearer(guest_tokens["access_token"]),
        json={"token": token.group(1)},
    )
    assert accepted.status_code == 200
    assert accepted.json() == {"org_id": org_id, "role": "member"}
    orgs = (await client.get("/v1/orgs", headers=bearer(guest_tokens["access_token"]))).json()
    assert [o["id"] for o in orgs] == [org_id]
    reused = await client.post(
        "/v1/invitations/accept",
        headers=bearer(guest_tokens["access_token"]),
        json={"token": token.group(1)},
    )
    assert (reused.status_code, reused.json()["code"]) == (409, "invitation_used")


@pytest.fixture(scope="module")
async def dev_client(settings: Settings) -> AsyncIterator[AsyncTestClient[OrgbaseApp]]:
    dev = with_overrides(settings)
    dev = msgspec.structs.replace(dev, env="dev")
    async with AsyncTestClient(app=create_app(dev)) as client:
        yield client


async def _invite(
    client: AsyncTestClient[OrgbaseApp],
    tokens: dict[str, Any],
    org_id: str,
    email: str,
    role: str = "member",
) -> Any:
    return await client.post(
        f"/v1/orgs/{org_id}/invitations",
        headers=bearer(tokens["access_token"]),
        json={"email": email, "role": role},
    )


async def test_invitation_rules(
    settings: Settings, dev_client: AsyncTestClient[OrgbaseApp]
) -> None:
    client = dev_client
    _, owner_tokens = await new_user(client)
    org_id = await create_org(client, owner_tokens)
    invited, invited_tokens = await new_user(client)
    _, stranger_tokens = await new_user(client)
    response = await _invite(client, owner_tokens, org_id, invited["email"], "admin")
    token = response.json()["token"]
    assert token, "dev mode hands the token to the inviter"

    async def accept(tokens: dict[str, Any], value: str) -> Any:
        return await client.post(
            "/v1/invitations/accept", headers=bearer(tokens["access_token"]), json={"token": value}
        )

    wrong_person = await accept(stranger_tokens, token)
    assert (wrong_person.status_code, wrong_person.json()["code"]) == (
        403,
        "invitation_email_mismatch",
    )
    bogus = await accept(invited_tokens, "not-a-real-token")
    assert (bogus.status_code, bogus.json()["code"]) == (404, "invitation_not_found")
    # Revoked and expired invitations are gone.
    revoked_id = response.json()["id"]
    assert (
        await client.delete(
            f"/v1/orgs/{org_id}/invitations/{revoked_id}",
            headers=bearer(owner_tokens["access_token"]),
        )
    ).status_code == 204
    revoked = await accept(invited_tokens, token)
    assert (revoked.status_code, revoked.json()["code"]) == (410, "invitation_revoked")
    fresh = (await _invite(client, owner_tokens, org_id, invited["email"])).json()
    async with owner_connection(settings) as connection:
        await connection.execute(
            "UPDATE orgbase.invitations SET expires_at = now() - interval '1 minute'"
            " WHERE id = $1::uuid",
            fresh["id"],
        )
    expired = await accept(invited_tokens, fresh["token"])
    assert (expired.status_code, expired.json()["code"]) == (410, "invitation_expired")
    listed = (
        await client.get(
            f"/v1/orgs/{org_id}/invitations", headers=bearer(owner_tokens["access_token"])
        )
    ).json()
    assert sorted(i["status"] for i in listed) == ["expired", "revoked"]
    assert all(i["token"] is None for i in listed)
    orgs = (await client.get("/v1/orgs", headers=bearer(invited_tokens["access_token"]))).json()
    assert orgs == []


async def test_invitations_respect_roles(dev_client: AsyncTestClient[OrgbaseApp]) -> None:
    client = dev_client
    org_id, people = await org_with_roles(client, ("admin", "member"))
    above = await _invite(client, people["admin"][1], org_id, "x@example.test", "owner")
    assert (above.status_code, above.json()["code"]) == (403, "role_escalation")
    by_member = await _invite(client, people["member"][1], org_id, "y@example.test", "viewer")
    assert (by_member.status_code, by_member.json()["code"]) == (403, "role_too_low")
    ok = await _invite(client, people["admin"][1], org_id, "z@example.test", "admin")
    assert ok.status_code == 201
