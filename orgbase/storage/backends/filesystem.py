"""Blobs in a folder: ``objects/<org>/<xx>/<uuid>`` under the root.

A blob is written to ``tmp/<uuid>.part``, fsync'd, renamed into place and its folder
fsync'd: a crash leaves either the whole blob or a scratch file (swept later), never part
of a blob under its key. Reads open the file before streaming it, so a blob replaced and
deleted meanwhile still reads whole. Blocking calls run in worker threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import re
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from orgbase.storage.backends.base import BackendFull, BlobMissing

KEY = re.compile(r"[0-9a-f-]{36}/[0-9a-f]{32}")
SYNC_EVERY = 16 << 20
"""A large blob goes to disk as it arrives (the writer's thread syncs every 16 MiB while
the next chunks are received), not all at the commit's fsync."""
_FULL = (errno.ENOSPC, errno.EDQUOT)


def _full(exc: OSError) -> BaseException:
    return BackendFull() if exc.errno in _FULL else exc


def _write_all(fd: int, data: bytes, sync: bool = False) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
    if sync:
        os.fdatasync(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileWriter:
    def __init__(self, backend: FilesystemBackend, key: str) -> None:
        self.backend = backend
        self.key = key
        self.scratch = backend.scratch / f"{uuid.uuid4().hex}.part"
        self.fd = os.open(self.scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self.unsynced = 0

    async def write(self, chunk: bytes) -> None:
        self.unsynced += len(chunk)
        sync = self.unsynced >= SYNC_EVERY
        if sync:
            self.unsynced = 0
        try:
            await asyncio.to_thread(_write_all, self.fd, chunk, sync)
        except OSError as exc:
            raise _full(exc) from exc

    async def commit(self) -> None:
        try:
            await asyncio.to_thread(self._publish)
        except OSError as exc:
            await self.abort()
            raise _full(exc) from exc

    def _publish(self) -> None:
        os.fsync(self.fd)
        os.close(self.fd)
        self.fd = -1
        target = self.backend.path(self.key)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.scratch, target)
        _fsync_dir(target.parent)

    async def abort(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1
        with contextlib.suppress(OSError):
            os.unlink(self.scratch)


class FileStream:
    def __init__(self, fd: int, path: Path, start: int, end: int, chunk: int) -> None:
        self.fd = fd
        self.local_path: Path | None = path
        self.start = start
        self.end = end
        self.chunk = chunk

    async def chunks(self) -> AsyncIterator[bytes]:
        offset = self.start
        while offset < self.end:
            data = await asyncio.to_thread(
                os.pread, self.fd, min(self.chunk, self.end - offset), offset
            )
            if not data:
                return
            offset += len(data)
            yield data

    async def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class FilesystemBackend:
    name = "filesystem"

    def __init__(self, root: Path, chunk_bytes: int) -> None:
        self.root = root
        self.objects = root / "objects"
        self.scratch = root / "tmp"
        self.chunk_bytes = chunk_bytes

    def prepare(self) -> None:
        for folder in (self.objects, self.scratch):
            folder.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        if not KEY.fullmatch(key):
            raise ValueError("not a blob key")  # keys are made by the gateway, never input
        org, name = key.split("/")
        return self.objects / org / name[:2] / name

    async def writer(self, key: str) -> FileWriter:
        self.path(key)
        try:
            return await asyncio.to_thread(FileWriter, self, key)
        except OSError as exc:
            raise _full(exc) from exc

    async def open(self, key: str, start: int, end: int) -> FileStream:
        path = self.path(key)
        try:
            fd = await asyncio.to_thread(os.open, path, os.O_RDONLY)
        except FileNotFoundError:
            raise BlobMissing(key) from None
        return FileStream(fd, path, start, end, self.chunk_bytes)

    async def adopt(self, key: str, path: Path) -> None:
        target = self.path(key)

        def move() -> None:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)  # the staging folder is under the same root
            _fsync_dir(target.parent)

        await asyncio.to_thread(move)

    async def copy(self, source: str, target: str) -> None:
        # A hard link: no bytes copied; deleting either name leaves the other whole.
        src, dst = self.path(source), self.path(target)

        def link() -> None:
            dst.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(src, dst)
            except FileNotFoundError:
                raise BlobMissing(source) from None
            _fsync_dir(dst.parent)

        await asyncio.to_thread(link)

    async def delete(self, keys: list[str]) -> None:
        paths = [self.path(key) for key in keys]

        def remove() -> None:
            for path in paths:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)

        await asyncio.to_thread(remove)

    async def list_keys(self, prefix: str) -> AsyncIterator[tuple[str, float]]:
        base = self.objects / prefix if prefix else self.objects
        found = await asyncio.to_thread(_walk, base, self.objects)
        for key, mtime in found:
            yield key, mtime

    async def delete_prefix(self, prefix: str) -> int:
        if not re.fullmatch(r"[0-9a-f-]{36}", prefix.rstrip("/")):
            raise ValueError("only an org's prefix is deleted whole")
        folder = self.objects / prefix.rstrip("/")
        count = len(await asyncio.to_thread(_walk, folder, self.objects))
        await asyncio.to_thread(shutil.rmtree, folder, True)
        return count

    async def sweep_scratch(self, older_than: float) -> int:
        def sweep() -> int:
            removed = 0
            for entry in os.scandir(self.scratch):
                with contextlib.suppress(FileNotFoundError):
                    if entry.stat().st_mtime < older_than:
                        os.unlink(entry.path)
                        removed += 1
            return removed

        return await asyncio.to_thread(sweep)

    async def check(self) -> None:
        await asyncio.to_thread(os.statvfs, self.objects)


def _walk(base: Path, objects: Path) -> list[tuple[str, float]]:
    found: list[tuple[str, float]] = []
    if not base.exists():
        return found
    for folder, _, files in os.walk(base):
        for name in files:
            path = Path(folder) / name
            with contextlib.suppress(FileNotFoundError):
                org = path.relative_to(objects).parts[0]
                found.append((f"{org}/{name}", path.stat().st_mtime))
    return found
