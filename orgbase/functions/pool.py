"""The gateway's worker processes: each invocation goes to the least loaded live worker
with a free slot, waits for one at most ``queue_seconds``, and is given its time limit.

Past the limit the invocation is cancelled in its worker; a worker that does not answer
the cancellation within ``CANCEL_GRACE`` seconds is stuck (a loop that never awaits) and is
killed, failing whatever else it ran (``WorkerLost``). A worker that ends is replaced, with
a growing pause while replacements keep failing (a module that kills its process at
import)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from pathlib import Path

import structlog

from orgbase.core.settings import FunctionsSettings
from orgbase.core.tasks import TaskSet
from orgbase.functions.process import START_WITHIN, OnCall, OnLog, WorkerLost, WorkerProcess
from orgbase.functions.protocol import Done, Failed, Invoke

log = structlog.get_logger("orgbase.functions")

CANCEL_GRACE = 1.0
FRAME_MARGIN = 1 << 20
MAX_RESPAWN_PAUSE = 30.0


class FunctionTimeout(Exception):
    """The invocation ran past its time limit (and was stopped)."""


class NoWorker(Exception):
    """No worker could take the invocation: ``busy`` (all slots taken for the whole
    wait) or none running."""

    def __init__(self, busy: bool) -> None:
        super().__init__("busy" if busy else "no worker is running")
        self.busy = busy


class WorkerPool:
    def __init__(
        self,
        settings: FunctionsSettings,
        directory: Path,
        tasks: TaskSet,
        *,
        max_body: int,
        on_call: OnCall,
        on_log: OnLog,
    ) -> None:
        self.settings = settings
        self.directory = directory
        self.tasks = tasks
        self.max_frame = max(max_body, settings.max_response_bytes) + FRAME_MARGIN
        self.on_call, self.on_log = on_call, on_log
        self.workers: list[WorkerProcess] = []
        self.ids = itertools.count(1)
        self.started = 0
        self.lost = 0
        self.killed = 0
        self._changed = asyncio.Condition()
        self._reserved: dict[int, int] = {}
        self._pause = 0.0
        self._closing = False
        self._starting: asyncio.Task[None] | None = None
        self.load_failures: dict[str, str] = {}
        """Functions whose module failed to import in the newest worker."""

    def _new_worker(self) -> WorkerProcess:
        return WorkerProcess(
            self.directory,
            max_frame=self.max_frame,
            max_response=self.settings.max_response_bytes,
            memory_mb=self.settings.memory_mb,
            on_call=self.on_call,
            on_log=self.on_log,
            on_lost=self._worker_lost,
        )

    async def start(self) -> None:
        started = await asyncio.gather(*(self._spawn() for _ in range(self.settings.workers)))
        for _ in range(started.count(False)):  # tried again, with a growing pause
            self.tasks.spawn(self._replace(), "function worker replacement")

    def start_soon(self) -> None:
        """Start the workers without holding up the gateway's start: an invocation that
        comes first waits for them (``_acquire``)."""
        self._starting = asyncio.get_running_loop().create_task(
            self.start(), name="function workers"
        )

    async def _spawn(self) -> bool:
        worker = self._new_worker()
        try:
            await worker.start()
        except (WorkerLost, OSError) as exc:
            log.error("function worker failed to start", error=str(exc))
            return False
        self.started += 1
        self.load_failures = worker.failed
        self.workers.append(worker)
        await self._notify()
        return True

    def _worker_lost(self, worker: WorkerProcess) -> None:
        if worker in self.workers:
            self.workers.remove(worker)
        if worker.retiring or self._closing:
            return
        self.lost += 1
        log.warning("function worker ended", pid=worker.pid, running=worker.load)
        self.tasks.spawn(self._replace(), "function worker replacement")

    async def _replace(self) -> None:
        while not self._closing:
            if self._pause:
                await asyncio.sleep(self._pause)
            if await self._spawn():
                self._pause = 0.0
                return
            self._pause = min(max(self._pause * 2, 0.5), MAX_RESPAWN_PAUSE)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def _pick(self) -> WorkerProcess | None:
        slots = self.settings.worker_concurrency
        free = [w for w in self.workers if w.alive and not w.retiring and self._in_use(w) < slots]
        return min(free, key=self._in_use) if free else None

    def _in_use(self, worker: WorkerProcess) -> int:
        return self._reserved.get(id(worker), 0)

    async def _acquire(self) -> WorkerProcess:
        if self._starting is not None and not self._starting.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._starting), START_WITHIN)
        try:
            async with asyncio.timeout(self.settings.queue_seconds), self._changed:
                while (worker := self._pick()) is None:
                    await self._changed.wait()
        except TimeoutError:
            raise NoWorker(busy=any(w.alive for w in self.workers)) from None
        self._reserved[id(worker)] = self._in_use(worker) + 1
        return worker

    def _release(self, worker: WorkerProcess) -> None:
        left = self._in_use(worker) - 1
        if left > 0:
            self._reserved[id(worker)] = left
        else:
            self._reserved.pop(id(worker), None)
        self.tasks.spawn(self._notify(), "function slot freed")

    async def run(self, message: Invoke, time_limit: float) -> Done | Failed:
        """The invocation's answer; FunctionTimeout, WorkerLost or NoWorker otherwise."""
        worker = await self._acquire()
        try:
            future = worker.submit(message)
            try:
                return await asyncio.wait_for(asyncio.shield(future), time_limit)
            except TimeoutError:
                await self._overrun(worker, message.id, future)
                raise FunctionTimeout from None
        finally:
            worker.forget(message.id)
            self._release(worker)

    async def _overrun(
        self, worker: WorkerProcess, ident: int, future: asyncio.Future[Done | Failed]
    ) -> None:
        worker.cancel(ident)
        try:
            await asyncio.wait_for(asyncio.shield(future), CANCEL_GRACE)
        except TimeoutError:
            self.killed += 1
            log.warning("function worker stuck past a timeout: killed", pid=worker.pid)
            worker.kill()
        except WorkerLost:
            pass

    @property
    def live(self) -> int:
        return sum(1 for w in self.workers if w.alive)

    async def recycle(self) -> None:
        """New workers (the functions changed), then the old ones retire once idle."""
        old = list(self.workers)
        for worker in old:
            worker.retiring = True
        await self.start()
        for worker in old:
            if worker in self.workers:
                self.workers.remove(worker)
            self.tasks.spawn(worker.close(self.settings.timeout_seconds), "function worker retire")

    async def close(self) -> None:
        self._closing = True
        if self._starting is not None:
            with contextlib.suppress(Exception):
                await self._starting
        workers, self.workers = list(self.workers), []
        with contextlib.suppress(Exception):
            await asyncio.gather(*(w.close(2.0) for w in workers))
