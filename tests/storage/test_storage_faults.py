"""Faults: a full disk, the backend down, an upload cut midway, orphans swept. Each is a
clear 4xx or 503 with a code, and nothing half-written is ever visible."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from orgbase.core.postgres import Database
from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp, create_app
from orgbase.storage.backends.filesystem import FilesystemBackend
from orgbase.storage.sweeper import Sweeper
from tests.storage.conftest import S, make_bucket, org_person, put_object
from tests.storage.test_backends import s3_settings
from tests.support.s3 import make_bucket as make_s3_bucket
from tests.support.s3 import moto_server
from tests.support.stack import with_overrides
from tests.support.waiting import eventually


@asynccontextmanager
async def gateway_with(
    settings: Settings, **storage: object
) -> AsyncIterator[AsyncTestClient[OrgbaseApp]]:
    app = create_app(with_overrides(settings, storage=storage), configure_logs=False)
    async with AsyncTestClient(app=app) as client:
        yield client


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (root can mount one; elsewhere the test is skipped)."""
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip("mounting a small tmpfs needs root")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


async def test_a_full_disk_is_a_503_and_nothing_is_visible(
    settings: Settings, small_disk: Path
) -> None:
    async with gateway_with(settings, root=str(small_disk)) as client:
        owner = await org_person(client)
        h = owner["headers"]
        bucket = await make_bucket(client, h)
        full = await put_object(client, h, bucket, "big.bin", os.urandom(3 << 20))
        assert full.status_code == 503
        assert full.json()["code"] == "storage_full"
        listed = await client.post(f"{S}/object/list/{bucket}", headers=h, json={})
        assert listed.json() == []
        assert list((small_disk / "tmp").iterdir()) == []  # the scratch file went
        small = await put_object(client, h, bucket, "small.bin", b"fits")
        assert small.status_code == 200


async def test_the_backend_down_is_a_503_and_nothing_is_visible(settings: Settings) -> None:
    with moto_server() as url:
        bucket_name = f"t{uuid.uuid4().hex[:12]}"
        make_s3_bucket(url, bucket_name)
        config = msgspec.structs.asdict(s3_settings(url, bucket_name, timeout_seconds=2.0))
        async with gateway_with(settings, **config) as client:
            owner = await org_person(client)
            h = owner["headers"]
            bucket = await make_bucket(client, h)
            stored = await put_object(client, h, bucket, "ok.bin", b"on s3" * 1000)
            assert stored.status_code == 200, stored.text
            ranged = await client.get(
                f"{S}/object/{bucket}/ok.bin", headers={**h, "range": "bytes=0-4"}
            )
            assert ranged.content == b"on s3"
    # moto has stopped: the same gateway settings, a store that does not answer.
    async with gateway_with(settings, **config) as client:
        refused = await put_object(client, h, bucket, "new.bin", b"x" * 1000)
        assert refused.status_code == 503
        assert refused.json()["code"] == "storage_unavailable"
        read = await client.get(f"{S}/object/{bucket}/ok.bin", headers=h)
        assert read.status_code == 503
        listed = await client.post(f"{S}/object/list/{bucket}", headers=h, json={})
        assert [e["name"] for e in listed.json()] == ["ok.bin"]


def _cut_upload(base: str, path: str, headers: dict[str, str], size: int) -> None:
    target = urlsplit(base)
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {target.netloc}",
        "Content-Type: application/octet-stream",
        f"Content-Length: {size}",
    ]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    with socket.create_connection((target.hostname, target.port)) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        sock.sendall(os.urandom(size // 2))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")


async def test_an_upload_cut_midway_leaves_nothing(
    client: AsyncTestClient[OrgbaseApp], live_server: str, settings: Settings
) -> None:
    owner = await org_person(client)
    h = owner["headers"]
    bucket = await make_bucket(client, h)
    scratch = Path(settings.storage.root) / "tmp"
    await asyncio.to_thread(_cut_upload, live_server, f"{S}/object/{bucket}/cut.bin", h, 8 << 20)

    async def nothing_left() -> bool:
        listed = await client.post(f"{S}/object/list/{bucket}", headers=h, json={})
        return listed.json() == [] and not any(scratch.iterdir())

    await eventually(nothing_left, what="no object and no scratch file")
    missing = await client.get(f"{S}/object/{bucket}/cut.bin", headers=h)
    assert missing.status_code == 404


async def test_the_sweeper_removes_orphans_only(settings: Settings, tmp_path: Path) -> None:
    root = tmp_path / "root"
    async with gateway_with(settings, root=str(root)) as client:
        owner = await org_person(client)
        h = owner["headers"]
        bucket = await make_bucket(client, h)
        await put_object(client, h, bucket, "kept.bin", b"kept")
    backend = FilesystemBackend(root, 1 << 20)
    orphan = f"{owner['org']}/{uuid.uuid4().hex}"
    writer = await backend.writer(orphan)
    await writer.write(b"orphan")
    await writer.commit()
    old = 1_000_000.0
    for path in (root / "objects").rglob("*"):
        if path.is_file():
            os.utime(path, (old, old))
    db = Database(settings.database)
    await db.open()
    try:
        sweeper = Sweeper(db, backend, settings.storage, root)
        await sweeper.sweep()
    finally:
        await db.close()
    assert sweeper.swept == 1
    left = [key async for key, _ in backend.list_keys("")]
    assert orphan not in left
    assert len(left) == 1
    async with gateway_with(settings, root=str(root)) as client:
        kept = await client.get(f"{S}/object/{bucket}/kept.bin", headers=h)
        assert kept.content == b"kept"
