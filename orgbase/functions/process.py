"""One worker process, seen from the gateway: started, fed invocations, answered host
calls, and killed when it hangs. Its end (a crash, a kill, the memory limit) fails every
invocation it was running with ``WorkerLost``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import Any

import structlog

from orgbase.functions.protocol import (
    Call,
    Cancel,
    Done,
    Failed,
    FrameTooLarge,
    Invoke,
    Log,
    Ready,
    Reply,
    frame,
    read_from_worker,
)

log = structlog.get_logger("orgbase.functions")

START_WITHIN = 30.0
OnCall = Callable[["WorkerProcess", Call], Awaitable[Reply]]
OnLog = Callable[["WorkerProcess", Log], None]
_KEPT_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "HOME", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV")


class WorkerLost(Exception):
    """The worker ended before answering (crashed, killed, out of memory)."""


def worker_env() -> dict[str, str]:
    """The worker's environment: nothing of the gateway's settings or secrets."""
    env = {key: os.environ[key] for key in _KEPT_ENV if key in os.environ}
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass(eq=False)
class WorkerProcess:
    directory: Path
    _: KW_ONLY
    max_frame: int
    max_response: int
    memory_mb: int
    on_call: OnCall
    on_log: OnLog
    on_lost: Callable[[WorkerProcess], None]
    pending: dict[int, asyncio.Future[Done | Failed]] = field(init=False, default_factory=dict)
    failed: dict[str, str] = field(init=False, default_factory=dict)
    process: asyncio.subprocess.Process | None = field(init=False, default=None)
    alive: bool = field(init=False, default=False)
    retiring: bool = field(init=False, default=False)
    _reader: asyncio.Task[None] | None = field(init=False, default=None)
    _calls: set[asyncio.Task[None]] = field(init=False, default_factory=set)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def load(self) -> int:
        return len(self.pending)

    async def start(self) -> None:
        """Spawn the process and wait for its Ready (raises WorkerLost when it dies or
        takes too long)."""
        command = [sys.executable, "-m", "orgbase.functions.worker", str(self.directory)]
        command += [str(self.max_frame), str(self.max_response), str(self.memory_mb)]
        self.process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=worker_env(),
            limit=self.max_frame + 16,
        )
        assert self.process.stdout is not None
        try:
            async with asyncio.timeout(START_WITHIN):
                first = await read_from_worker(self.process.stdout, self.max_frame)
        except (TimeoutError, FrameTooLarge, ValueError) as exc:
            self.kill()
            raise WorkerLost(f"the worker did not start: {exc!r}") from None
        if not isinstance(first, Ready):
            self.kill()
            raise WorkerLost("the worker ended while importing the functions")
        self.failed = first.failed
        self.alive = True
        self._reader = asyncio.get_running_loop().create_task(self._read(), name="function worker")

    def submit(self, message: Invoke) -> asyncio.Future[Done | Failed]:
        """Send an invocation; its future holds the answer until ``forget``."""
        if not self.alive or self.process is None or self.process.stdin is None:
            raise WorkerLost("the worker is not running")
        future: asyncio.Future[Done | Failed] = asyncio.get_running_loop().create_future()
        self.pending[message.id] = future
        self.process.stdin.write(frame(message))
        return future

    def forget(self, ident: int) -> None:
        self.pending.pop(ident, None)

    def cancel(self, ident: int) -> None:
        self._write(Cancel(id=ident))

    def _write(self, message: Any) -> None:
        if self.alive and self.process is not None and self.process.stdin is not None:
            with contextlib.suppress(ConnectionError, RuntimeError):
                self.process.stdin.write(frame(message))

    async def _read(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        try:
            while True:
                message = await read_from_worker(self.process.stdout, self.max_frame)
                if message is None:
                    break
                self._heard(message)
        except (FrameTooLarge, ValueError, ConnectionError) as exc:
            log.error("function worker sent garbage", pid=self.pid, error=repr(exc))
        finally:
            self._lost("the worker ended")

    def _heard(self, message: Any) -> None:
        if isinstance(message, (Done, Failed)):
            future = self.pending.get(message.id)
            if future is not None and not future.done():
                future.set_result(message)
        elif isinstance(message, Call):
            task = asyncio.get_running_loop().create_task(self._serve_call(message))
            self._calls.add(task)
            task.add_done_callback(self._calls.discard)
        elif isinstance(message, Log):
            self.on_log(self, message)

    async def _serve_call(self, call: Call) -> None:
        reply = await self.on_call(self, call)
        self._write(reply)

    def _lost(self, reason: str) -> None:
        was_alive, self.alive = self.alive, False
        self.kill()
        if was_alive:
            self.on_lost(self)
        for future in self.pending.values():
            if not future.done():
                future.set_exception(WorkerLost(reason))
        for task in self._calls:
            task.cancel()

    def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()

    async def wait_ended(self) -> int | None:
        if self.process is None:
            return None
        return await self.process.wait()

    async def close(self, grace: float) -> None:
        """Let the invocations under way finish (up to ``grace`` s), then end the process."""
        self.retiring = True
        if self.pending:
            await asyncio.wait(list(self.pending.values()), timeout=grace)
        if self.process is not None and self.process.stdin is not None:
            with contextlib.suppress(ConnectionError, RuntimeError):
                self.process.stdin.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                await self.wait_ended()
        self._lost("the worker was stopped")
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        await self.wait_ended()
