"""Deeply nested user metadata on an upload is refused with 400 ``json_too_deep`` where it
arrives, and nothing is stored.

The attack that worked: ~3 KB of nested brackets as an upload's metadata (the base64
``x-metadata`` header, the multipart field ``metadata``, the TUS ``Upload-Metadata`` key
``metadata``, the ``x-metadata`` of a PUT through a signed upload URL, which needs no
credential) reached Python's JSON parser and came out as a 500 (RecursionError); the TUS
upload was created, and its last PATCH failed with a 500 at every retry. Now the metadata
meets the JSON body guard's depth rule when it is received (TUS: at creation), through the
real gateway.
"""

from __future__ import annotations

import base64
from typing import Any

from tests.storage.conftest import Client, S, make_bucket, org_person, post_form

DEEP = '{"a": ' + "[" * 1500 + "]" * 1500 + "}"
TUS = {"Tus-Resumable": "1.0.0"}


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _too_deep(answer: Any) -> None:
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == "json_too_deep"


async def _absent(client: Client, headers: dict[str, str], bucket: str, name: str) -> None:
    found = await client.get(f"{S}/object/{bucket}/{name}", headers=headers)
    assert found.status_code == 404


async def test_deep_metadata_is_refused_on_every_upload_route(client: Client) -> None:
    owner = await org_person(client, "deep")
    h = owner["headers"]
    bucket = await make_bucket(client, h)
    raw = {**h, "content-type": "text/plain", "x-metadata": _b64(DEEP)}
    _too_deep(await client.post(f"{S}/object/{bucket}/d1.txt", headers=raw, content=b"x"))
    await _absent(client, h, bucket, "d1.txt")
    _too_deep(await post_form(client, h, bucket, "d2.txt", metadata=DEEP))
    await _absent(client, h, bucket, "d2.txt")
    signed = await client.post(f"{S}/object/upload/sign/{bucket}/d3.txt", headers=h)
    assert signed.status_code == 200, signed.text
    through_token = await client.put(
        f"{S}{signed.json()['url']}",
        content=b"x",
        headers={"content-type": "text/plain", "x-metadata": _b64(DEEP)},
    )
    _too_deep(through_token)
    await _absent(client, h, bucket, "d3.txt")
    # A shallow object still goes through, and reads back.
    shallow = {**raw, "x-metadata": _b64('{"a": [[1]]}')}
    kept = await client.post(f"{S}/object/{bucket}/ok.txt", headers=shallow, content=b"x")
    assert kept.status_code == 200, kept.text
    info = await client.get(f"{S}/object/info/{bucket}/ok.txt", headers=h)
    assert info.json()["metadata"] == {"a": [[1]]}


async def test_deep_tus_metadata_is_refused_at_creation(client: Client) -> None:
    owner = await org_person(client, "deep-tus")
    h = owner["headers"]
    bucket = await make_bucket(client, h)
    fields = {
        "bucketName": bucket,
        "objectName": "d4.txt",
        "contentType": "text/plain",
        "metadata": DEEP,
    }
    metadata = ",".join(f"{k} {_b64(v)}" for k, v in fields.items())
    started = await client.post(
        f"{S}/upload/resumable",
        headers={**h, **TUS, "Upload-Length": "1", "Upload-Metadata": metadata},
    )
    _too_deep(started)
    assert "location" not in started.headers
    await _absent(client, h, bucket, "d4.txt")
