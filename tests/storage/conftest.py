"""Fixtures of the storage tests: people in orgs, signed in, as Supabase's clients hold
them (the publishable key as ``apikey``, the org-scoped access token as the bearer)."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from orgbase.platform.app import OrgbaseApp
from orgbase.platform.localstack import LocalStack
from tests.support.http import org_member


@pytest.fixture(scope="session")
def anon_key(stack: LocalStack) -> str:
    return stack.secrets["publishable"]


async def org_person(client: AsyncTestClient[OrgbaseApp], name: str = "files") -> dict[str, Any]:
    """A fresh owner of a fresh org: its id, the bearer headers, and the token."""
    user, org_id, headers = await org_member(client, name)
    return {
        "user": user,
        "org": org_id,
        "headers": headers,
        "token": headers["Authorization"].split(" ", 1)[1],
    }
