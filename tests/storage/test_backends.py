"""One contract, two backends: the filesystem and an S3-compatible server (moto's
emulator) pass the same tests: a blob appears only at commit, an abort leaves nothing,
ranged reads, a finished local file adopted, server-side copies, listing, deleting one
org's prefix."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from orgbase.core.settings import StorageSettings
from orgbase.storage.area import make_backend
from orgbase.storage.backends.base import Backend, BlobMissing
from tests.support.s3 import ACCESS_KEY, SECRET_KEY, make_bucket, moto_server


@pytest.fixture(scope="module")
def s3_url() -> Iterator[str]:
    with moto_server() as url:
        yield url


def s3_settings(url: str, bucket: str, **extra: object) -> StorageSettings:
    fields: dict[str, object] = {"timeout_seconds": 5.0, **extra}
    return StorageSettings(
        backend="s3",
        s3_bucket=bucket,
        s3_endpoint=url,
        s3_access_key_id=ACCESS_KEY,
        s3_secret_access_key=SECRET_KEY,
        **fields,  # type: ignore[arg-type]
    )


@pytest.fixture(params=["filesystem", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "filesystem":
        made = make_backend(StorageSettings(root=str(tmp_path / "root")))
        made.prepare()  # type: ignore[attr-defined]
        return made
    url = request.getfixturevalue("s3_url")
    bucket = f"t{uuid.uuid4().hex[:12]}"
    make_bucket(url, bucket)
    return make_backend(s3_settings(url, bucket))


def key() -> str:
    return f"{uuid.uuid4()}/{uuid.uuid4().hex}"


async def read(backend: Backend, name: str, start: int, end: int) -> bytes:
    stream = await backend.open(name, start, end)
    try:
        return b"".join([chunk async for chunk in stream.chunks()])
    finally:
        await stream.close()


async def write(backend: Backend, name: str, data: bytes, piece: int = 1 << 20) -> None:
    writer = await backend.writer(name)
    for start in range(0, len(data), piece):
        await writer.write(data[start : start + piece])
    await writer.commit()


async def test_a_blob_appears_at_commit_and_reads_back(backend: Backend) -> None:
    name, data = key(), os.urandom(12 * 1024 * 1024 + 7)
    writer = await backend.writer(name)
    await writer.write(data[: 8 << 20])
    with pytest.raises(BlobMissing):  # not visible before the commit
        await backend.open(name, 0, 1)
    await writer.write(data[8 << 20 :])
    await writer.commit()
    assert (
        hashlib.sha256(await read(backend, name, 0, len(data))).digest()
        == hashlib.sha256(data).digest()
    )
    assert await read(backend, name, 100, 200) == data[100:200]
    assert await read(backend, name, len(data) - 3, len(data)) == data[-3:]


async def test_an_abort_leaves_nothing(backend: Backend) -> None:
    name = key()
    writer = await backend.writer(name)
    await writer.write(b"x" * 1000)
    await writer.abort()
    with pytest.raises(BlobMissing):
        await backend.open(name, 0, 1)
    assert [k async for k, _ in backend.list_keys(name.split("/")[0] + "/")] == []


async def test_adopt_copy_list_delete(backend: Backend, tmp_path: Path) -> None:
    org = str(uuid.uuid4())
    local = tmp_path / "done.part"
    local.write_bytes(b"finished upload")
    first = f"{org}/{uuid.uuid4().hex}"
    await backend.adopt(first, local)
    assert not local.exists()
    second = f"{org}/{uuid.uuid4().hex}"
    await backend.copy(first, second)
    assert await read(backend, second, 0, 15) == b"finished upload"
    listed = {k: t async for k, t in backend.list_keys(f"{org}/")}
    assert set(listed) == {first, second}
    assert all(abs(t - time.time()) < 120 for t in listed.values())
    await backend.delete([first, f"{org}/{uuid.uuid4().hex}"])  # a missing one: no error
    assert [k async for k, _ in backend.list_keys(f"{org}/")] == [second]
    other = key()
    await write(backend, other, b"other org")
    assert await backend.delete_prefix(f"{org}/") == 1
    assert [k async for k, _ in backend.list_keys(f"{org}/")] == []
    assert await read(backend, other, 0, 9) == b"other org"


async def test_a_missing_blob_is_told(backend: Backend) -> None:
    with pytest.raises(BlobMissing):
        await backend.open(key(), 0, 10)
    with pytest.raises(BlobMissing):
        await backend.copy(key(), key())


async def _never(_: AsyncIterator[bytes]) -> None:
    return None
