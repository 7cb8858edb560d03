"""An org's settings are limited on what is stored, not on what was sent.

The attack that worked: a 63,904-byte ``PUT /v1/orgs/{org}/settings`` of 5,000 ``1e308``
values passed the 65,536-byte limit (checked on the request), and PostgreSQL's jsonb
stored each as 309 digits: every GET, and every version kept, answered 1.5 MB. Now the
limit applies to the jsonb as stored (the same measure as a user's metadata), nothing is
written when it is over, and a value jsonb cannot hold is a 400, never a 500.
"""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient

from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp
from tests.support.http import bearer, member_tokens

Client = AsyncTestClient[OrgbaseApp]


async def _put(client: Client, url: str, headers: dict[str, str], body: bytes) -> Any:
    etag = (await client.get(url, headers=headers)).headers["etag"]
    return await client.put(
        url,
        headers={**headers, "If-Match": etag, "content-type": "application/json"},
        content=body,
    )


async def test_the_limit_is_on_the_stored_settings(client: Client, settings: Settings) -> None:
    org, tokens = await member_tokens(client, ())
    headers = bearer(tokens["owner"])
    url = f"/v1/orgs/{org}/settings"
    limit = settings.tenancy.settings_max_bytes
    amplified = ("{" + ",".join(f'"{i}":1e308' for i in range(5000)) + "}").encode()
    body = b'{"settings":' + amplified + b"}"
    assert len(body) < limit
    answer = await _put(client, url, headers, body)
    assert (answer.status_code, answer.json()["code"]) == (413, "settings_too_large"), (
        answer.status_code
    )
    # Nothing was written: the settings are still the first version.
    stored = await client.get(url, headers=headers)
    assert (stored.json()["version"], stored.json()["settings"]) == (1, {})
    versions = (await client.get(f"{url}/versions", headers=headers)).json()
    assert [v["version"] for v in versions] == [1]
    # What fits once stored is taken (a few hundred of the same numbers).
    fitting = ("{" + ",".join(f'"{i}":1e308' for i in range(100)) + "}").encode()
    taken = await _put(client, url, headers, b'{"settings":' + fitting + b"}")
    assert taken.status_code == 200, taken.text
    assert len((await client.get(url, headers=headers)).content) < limit


async def test_a_value_jsonb_cannot_hold_is_a_400(client: Client) -> None:
    """(This held before; the measure of the stored size must keep it so.)"""
    org, tokens = await member_tokens(client, ())
    headers = bearer(tokens["owner"])
    url = f"/v1/orgs/{org}/settings"
    for body in (b'{"settings":{"a":"\\u0000"}}', b'{"settings":{"\\u0000":1}}'):
        answer = await _put(client, url, headers, body)
        assert (answer.status_code, answer.json()["code"]) == (400, "invalid_value"), answer.text
