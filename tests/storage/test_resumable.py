"""Resumable uploads (TUS 1.0.0 at /storage/v1/upload/resumable): tuspy, a TUS client
nobody here wrote, uploads in 6 MiB chunks as Supabase's clients do; a PATCH whose
connection drops midway keeps what arrived and the upload resumes from HEAD's offset."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import socket
from typing import Any
from urllib.parse import urlsplit

import httpx
from tusclient.client import TusClient

from tests.storage.conftest import Client, S, make_bucket, org_person, org_with

CHUNK = 6 * 1024 * 1024
TUS = {"Tus-Resumable": "1.0.0"}


def _metadata(bucket: str, name: str, content_type: str) -> str:
    fields = {"bucketName": bucket, "objectName": name, "contentType": content_type}
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in fields.items())


def tuspy_upload(
    base: str, headers: dict[str, str], bucket: str, data: bytes, name: str = "big/tuspy.bin"
) -> None:
    import io

    tus = TusClient(f"{base}{S}/upload/resumable", headers=headers)
    uploader = tus.uploader(
        file_stream=io.BytesIO(data),
        chunk_size=CHUNK,
        metadata={
            "bucketName": bucket,
            "objectName": name,
            "contentType": "application/octet-stream",
        },
    )
    uploader.upload()


async def test_tuspy_uploads_in_six_mib_chunks(client: Client, live_server: str) -> None:
    owner = await org_person(client)
    bucket = await make_bucket(client, owner["headers"])
    data = os.urandom(13 * 1024 * 1024)
    await asyncio.to_thread(tuspy_upload, live_server, owner["headers"], bucket, data)
    got = await client.get(f"{S}/object/{bucket}/big/tuspy.bin", headers=owner["headers"])
    assert hashlib.sha256(got.content).digest() == hashlib.sha256(data).digest()


async def test_an_empty_file_is_published_at_creation(client: Client, live_server: str) -> None:
    """tus clients send no PATCH for an empty file (its offset 0 is its length at once)."""
    owner = await org_person(client)
    bucket = await make_bucket(client, owner["headers"])
    await asyncio.to_thread(tuspy_upload, live_server, owner["headers"], bucket, b"", "empty.txt")
    got = await client.get(f"{S}/object/{bucket}/empty.txt", headers=owner["headers"])
    assert (got.status_code, got.content) == (200, b"")
    info = await client.get(f"{S}/object/info/{bucket}/empty.txt", headers=owner["headers"])
    assert info.status_code == 200, info.text
    # Over a name that is taken, without x-upsert: refused at creation, nothing replaced.
    again = await client.post(
        f"{S}/upload/resumable", headers=_start(owner["headers"], bucket, "empty.txt", 0)
    )
    assert again.status_code == 409, again.text


def _drop_midway(base: str, location: str, headers: dict[str, str], body: bytes) -> None:
    """Send a PATCH announcing ``len(body)`` bytes, send part of them, and cut the
    connection (no FIN handshake of HTTP: the socket is just closed)."""
    target = urlsplit(base)
    path = urlsplit(location).path
    lines = [
        f"PATCH {path} HTTP/1.1",
        f"Host: {target.netloc}",
        "Content-Type: application/offset+octet-stream",
        "Upload-Offset: 0",
        f"Content-Length: {len(body)}",
        "Tus-Resumable: 1.0.0",
    ]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    with socket.create_connection((target.hostname, target.port)) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        sock.sendall(body[: len(body) // 2])
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")


async def test_a_dropped_patch_resumes(client: Client, live_server: str) -> None:
    owner = await org_person(client)
    h = owner["headers"]
    bucket = await make_bucket(client, h)
    data = os.urandom(CHUNK)
    async with httpx.AsyncClient(base_url=live_server, timeout=30) as http:
        made = await http.post(
            f"{S}/upload/resumable",
            headers={
                **h,
                **TUS,
                "Upload-Length": str(len(data)),
                "Upload-Metadata": _metadata(bucket, "resumed.bin", "application/octet-stream"),
            },
        )
        assert made.status_code == 201, made.text
        location = made.headers["location"]
        await asyncio.to_thread(_drop_midway, live_server, location, h, data)

        seen: list[int] = []

        async def offset() -> Any:
            # The server may still be writing what reached it of the dropped PATCH: the
            # offset counts once two readings agree.
            head = await http.head(location, headers={**h, **TUS})
            seen.append(int(head.headers["upload-offset"]))
            settled = len(seen) > 1 and seen[-1] == seen[-2] > 0
            return seen[-1] if settled else None

        # Part of what was sent is kept (fsync'd); the object is not visible yet.
        kept = await _eventually(offset)
        assert 0 < kept <= len(data) // 2
        missing = await http.get(f"{S}/object/{bucket}/resumed.bin", headers=h)
        assert missing.status_code == 404
        wrong = await http.patch(
            location,
            content=data[kept:],
            headers={
                **h,
                **TUS,
                "Upload-Offset": "0",
                "Content-Type": "application/offset+octet-stream",
            },
        )
        assert wrong.status_code == 409
        done = await http.patch(
            location,
            content=data[kept:],
            headers={
                **h,
                **TUS,
                "Upload-Offset": str(kept),
                "Content-Type": "application/offset+octet-stream",
            },
        )
        assert done.status_code == 204, done.text
        assert int(done.headers["upload-offset"]) == len(data)
        got = await http.get(f"{S}/object/{bucket}/resumed.bin", headers=h)
        assert got.content == data
        gone = await http.head(location, headers={**h, **TUS})
        assert gone.status_code == 404


async def _eventually(check: Any) -> Any:
    from tests.support.waiting import eventually

    return await eventually(check, within=10, what="the upload's offset")


def _start(headers: dict[str, str], bucket: str, name: str, length: int) -> dict[str, str]:
    """The headers of a TUS creation request."""
    metadata = _metadata(bucket, name, "application/octet-stream")
    return {**headers, **TUS, "Upload-Length": str(length), "Upload-Metadata": metadata}


async def test_resumable_checks_limits_and_org(client: Client) -> None:
    owner = await org_person(client)
    other = await org_person(client)
    h = owner["headers"]
    bucket = await make_bucket(client, h, file_size_limit=1000)
    resumable = f"{S}/upload/resumable"
    too_big = await client.post(resumable, headers=_start(h, bucket, "x.bin", 1001))
    assert too_big.status_code == 413
    bad_name = await client.post(resumable, headers=_start(h, bucket, "../x.bin", 10))
    assert bad_name.status_code == 400
    assert bad_name.json()["code"] == "InvalidKey"
    made = await client.post(resumable, headers=_start(h, bucket, "ok.bin", 10))
    location = urlsplit(made.headers["location"]).path
    stranger = await client.head(location, headers={**other["headers"], **TUS})
    assert stranger.status_code == 404
    over = await client.patch(
        location,
        content=b"x" * 11,
        headers={
            **h,
            **TUS,
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
        },
    )
    assert over.status_code == 413
    no_version = await client.head(location, headers=h)
    assert no_version.status_code == 412


async def test_an_upload_is_its_creators(client: Client) -> None:
    """Another person of the org, an admin included, neither reads an upload's offset, nor
    sends its bytes (the object would be theirs, not the creator's), nor abandons it."""
    _, people = await org_with(client, ("admin", "member"))
    bucket = await make_bucket(client, people["owner"], policy="owner_private")
    made = await client.post(
        f"{S}/upload/resumable", headers=_start(people["member"], bucket, "mine.bin", 3)
    )
    assert made.status_code == 201, made.text
    location = urlsplit(made.headers["location"]).path
    bytes_ = {"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}
    for other in ("admin", "owner"):
        headers = {**people[other], **TUS}
        assert (await client.head(location, headers=headers)).status_code == 404
        sent = await client.patch(location, headers={**headers, **bytes_}, content=b"abc")
        assert (sent.status_code, sent.json()["code"]) == (404, "NoSuchUpload"), sent.text
        assert (await client.delete(location, headers=headers)).status_code == 404
    sent = await client.patch(
        location, headers={**people["member"], **TUS, **bytes_}, content=b"abc"
    )
    assert sent.status_code == 204, sent.text
    # The member's own object: the member reads it in an owner_private bucket.
    got = await client.get(f"{S}/object/{bucket}/mine.bin", headers=people["member"])
    assert got.content == b"abc"
