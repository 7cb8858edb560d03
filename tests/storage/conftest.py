"""Fixtures of the storage tests: people in orgs, signed in, as Supabase's clients hold
them (the publishable key as ``apikey``, the org-scoped access token as the bearer)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from litestar.testing import AsyncTestClient

from orgbase.platform.app import OrgbaseApp
from tests.support.http import add_member, bearer, new_user, sign_in
from tests.support.http import org_person as person_of_org


async def org_person(client: AsyncTestClient[OrgbaseApp], name: str = "files") -> dict[str, Any]:
    """A fresh owner of a fresh org: its id, the bearer headers, and the token."""
    return await person_of_org(client, name)


Client = AsyncTestClient[OrgbaseApp]
S = "/storage/v1"


async def make_bucket(client: Client, headers: dict[str, str], **options: Any) -> str:
    bucket = options.pop("id", None) or f"b-{uuid.uuid4().hex[:8]}"
    made = await client.post(f"{S}/bucket", headers=headers, json={"id": bucket, **options})
    assert made.status_code == 200, made.text
    return str(bucket)


async def put_object(
    client: Client,
    headers: dict[str, str],
    bucket: str,
    name: str,
    data: bytes,
    content_type: str = "application/octet-stream",
    **extra: str,
) -> httpx.Response:
    return await client.post(
        f"{S}/object/{bucket}/{name}",
        headers={**headers, "content-type": content_type, **extra},
        content=data,
    )


async def post_form(
    client: Client, headers: dict[str, str], bucket: str, name: str, **fields: str
) -> httpx.Response:
    """A multipart upload as storage-js sends one: the form's fields, then a 1-byte file."""
    return await client.post(
        f"{S}/object/{bucket}/{name}",
        headers=headers,
        data=fields,
        files={"file": (name, b"x", "text/plain")},
    )


async def org_with(client: Client, roles: tuple[str, ...]) -> tuple[str, dict[str, Any]]:
    """A fresh org: its id, and the bearer headers of its owner and of one person per role."""
    owner = await org_person(client)
    people: dict[str, Any] = {"owner": owner["headers"]}
    for role in roles:
        user, _ = await new_user(client)
        owner_tokens = {"access_token": owner["token"]}
        await add_member(client, owner_tokens, owner["org"], user, role)
        people[role] = bearer((await sign_in(client, user["email"], owner["org"]))["access_token"])
    return owner["org"], people
