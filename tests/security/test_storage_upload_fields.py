"""What an upload says besides its bytes is checked where it arrives, on every route.

The attacks that worked: a member set an object's Cache-Control to ``a\\x7fb`` (multipart) or
``a\\r\\nb`` / ``max-age=☃`` (TUS), which every later download sends back as a header: the
connection was dropped, or a 500, for the owner, signed URLs and public readers alike.
Metadata holding ``\\u0000`` (or NaN, on TUS) answered 400 with PostgreSQL's own words. A
move put a text object into a bucket that takes 10-byte PNGs only (a copy was refused).
Concurrent upserts of a new name answered 409 ``Duplicate`` to some of the callers that
had said to replace.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any
from uuid import UUID

import httpx

from orgbase.core.settings import Settings
from tests.storage.conftest import Client, S, make_bucket, org_person, post_form, put_object
from tests.support.data import owner_connection

TUS = {"Tus-Resumable": "1.0.0"}
POSTGRES_WORDS = ("DETAIL", "cannot be converted", "byte sequence", "Unicode escape")


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8", "surrogatepass")).decode()


def _refused(answer: Any) -> None:
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == "InvalidRequest", answer.text
    assert not any(word in answer.text for word in POSTGRES_WORDS), answer.text


def _tus_start(headers: dict[str, str], bucket: str, name: str, **extra: str) -> dict[str, str]:
    fields = {"bucketName": bucket, "objectName": name, "contentType": "text/plain", **extra}
    metadata = ",".join(f"{k} {_b64(v)}" for k, v in fields.items())
    return {
        **headers,
        **TUS,
        "Upload-Length": "1",
        "Upload-Metadata": metadata,
        "Content-Type": "application/offset+octet-stream",
    }


async def _tus_refused(
    client: Client, headers: dict[str, str], bucket: str, name: str, **fields: str
) -> None:
    started = await client.post(
        f"{S}/upload/resumable", headers=_tus_start(headers, bucket, name, **fields), content=b"x"
    )
    _refused(started)


async def _holds_nothing(client: Client, headers: dict[str, str], bucket: str) -> None:
    listed = await client.post(f"{S}/object/list/{bucket}", headers=headers, json={})
    assert listed.json() == []


async def test_a_cache_control_no_header_can_carry_is_refused(client: Client) -> None:
    owner = await org_person(client, "cache-control")
    h = owner["headers"]
    bucket = await make_bucket(client, h, public=True)
    # A bare number is max-age=<n>: 193 digits make a directive of 201 characters.
    for n, value in enumerate(("a\x7fb", "a\x00b", "max-age=\u2603", "x" * 201, "9" * 193)):
        _refused(await post_form(client, h, bucket, f"form-{n}.txt", cacheControl=value))
    for n, value in enumerate(("a\r\nb", "a\x7fb", "max-age=\u2603", "x" * 201, "9" * 193)):
        await _tus_refused(client, h, bucket, f"tus-{n}.txt", cacheControl=value)
    await _holds_nothing(client, h, bucket)
    # A directive a header can carry goes through and comes back on the download.
    kept = await client.post(
        f"{S}/upload/resumable",
        headers=_tus_start(h, bucket, "ok.txt", cacheControl="public, max-age=60"),
        content=b"x",
    )
    assert kept.status_code == 201, kept.text
    got = await client.get(f"{S}/object/{bucket}/ok.txt", headers=h)
    assert got.headers["cache-control"] == "public, max-age=60"


async def test_a_stored_directive_no_header_can_carry_is_not_sent(
    client: Client, settings: Settings
) -> None:
    """An object stored before the check (a row of an older release) is still served."""
    owner = await org_person(client, "old-cache-control")
    h = owner["headers"]
    bucket = await make_bucket(client, h, public=True)
    await put_object(client, h, bucket, "old.txt", b"old", "text/plain")
    async with owner_connection(settings) as connection:
        await connection.execute(
            "UPDATE storage.objects SET cache_control = $3 WHERE org_id = $1 AND bucket_id = $2",
            UUID(owner["org"]),
            bucket,
            "max-age=1\r\nx-injected: 1\x7f",
        )
    for url, headers in (
        (f"{S}/object/{bucket}/old.txt", h),
        (f"{S}/org/{owner['org']}/object/public/{bucket}/old.txt", {}),
    ):
        got = await client.get(url, headers=headers)
        assert (got.status_code, got.content) == (200, b"old"), got.text
        assert got.headers["cache-control"] == "no-cache"
        assert "x-injected" not in got.headers


async def test_metadata_that_cannot_be_stored_is_refused_in_our_words(client: Client) -> None:
    owner = await org_person(client, "meta-nul")
    h = owner["headers"]
    bucket = await make_bucket(client, h)
    refused = [r'{"a": "\u0000"}', r'{"\u0000": 1}', r'{"a": ["\ud800"]}']
    refused += ['{"a": NaN}', '{"a": [-Infinity]}', '{"a": 1e999}']
    for n, metadata in enumerate(refused):
        raw = {**h, "content-type": "text/plain", "x-metadata": _b64(metadata)}
        _refused(await client.post(f"{S}/object/{bucket}/raw-{n}.txt", headers=raw, content=b"x"))
        await _tus_refused(client, h, bucket, f"tus-{n}.txt", metadata=metadata)
    await _holds_nothing(client, h, bucket)


async def test_a_move_obeys_the_target_buckets_types_and_sizes(client: Client) -> None:
    owner = await org_person(client, "move-limits")
    h = owner["headers"]
    loose = await make_bucket(client, h)
    strict = await make_bucket(client, h, file_size_limit=10, allowed_mime_types=["image/png"])
    await put_object(client, h, loose, "note.txt", b"sixteen bytes!!!", "text/plain")
    for destination in ("note.txt", "note.png"):
        moved = await client.post(
            f"{S}/object/move",
            headers=h,
            json={
                "bucketId": loose,
                "sourceKey": "note.txt",
                "destinationBucket": strict,
                "destinationKey": destination,
            },
        )
        assert moved.status_code in (413, 415), moved.text
    assert (await client.post(f"{S}/object/list/{strict}", headers=h, json={})).json() == []
    still = await client.get(f"{S}/object/{loose}/note.txt", headers=h)
    assert still.content == b"sixteen bytes!!!"
    # Within a bucket without limits a move still works.
    renamed = await client.post(
        f"{S}/object/move",
        headers=h,
        json={"bucketId": loose, "sourceKey": "note.txt", "destinationKey": "kept.txt"},
    )
    assert renamed.status_code == 200, renamed.text


async def test_concurrent_upserts_of_a_new_name_all_replace(
    client: Client, live_server: str
) -> None:
    owner = await org_person(client, "upsert-race")
    h = {**owner["headers"], "content-type": "text/plain", "x-upsert": "true"}
    bucket = await make_bucket(client, owner["headers"])
    async with httpx.AsyncClient(base_url=live_server, timeout=30) as http:
        for round_ in range(6):
            url = f"{S}/object/{bucket}/r{round_}.txt"
            answers = await asyncio.gather(
                *(http.put(url, headers=h, content=b"%d" % n) for n in range(24))
            )
            refused = [a.text for a in answers if a.status_code != 200]
            assert refused == [], refused


async def test_a_move_racing_a_replacement_moves_only_what_was_admitted(
    client: Client, live_server: str
) -> None:
    """The target bucket admits the object as it was read; one replaced in the meantime
    (here by 50 bytes, over the target's 10) stays where it is."""
    owner = await org_person(client, "move-race")
    h = owner["headers"]
    loose = await make_bucket(client, h)
    strict = await make_bucket(client, h, file_size_limit=10, allowed_mime_types=["text/plain"])
    replace = {**h, "content-type": "text/plain", "x-upsert": "true"}
    async with httpx.AsyncClient(base_url=live_server, timeout=30) as http:
        for n in range(30):
            name = f"r{n}.txt"
            await put_object(client, h, loose, name, b"small", "text/plain")
            move = {"bucketId": loose, "sourceKey": name, "destinationBucket": strict}
            await asyncio.gather(
                *(
                    http.put(f"{S}/object/{loose}/{name}", headers=replace, content=b"x" * 50)
                    for _ in range(3)
                ),
                http.post(f"{S}/object/move", headers=h, json={**move, "destinationKey": name}),
            )
            moved = await client.get(f"{S}/object/{strict}/{name}", headers=h)
            assert moved.status_code == 404 or len(moved.content) <= 10, (n, len(moved.content))
