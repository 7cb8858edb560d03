"""Fixtures of the storage tests: people in orgs, signed in, as Supabase's clients hold
them (the publishable key as ``apikey``, the org-scoped access token as the bearer)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from litestar.testing import AsyncTestClient

from orgbase.platform.app import OrgbaseApp
from tests.support.http import org_member


async def org_person(client: AsyncTestClient[OrgbaseApp], name: str = "files") -> dict[str, Any]:
    """A fresh owner of a fresh org: its id, the bearer headers, and the token."""
    user, org_id, headers = await org_member(client, name)
    return {
        "user": user,
        "org": org_id,
        "headers": headers,
        "token": headers["Authorization"].split(" ", 1)[1],
    }


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
