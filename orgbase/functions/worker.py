"""A worker process: imports the functions and runs their invocations on its own event
loop, as the gateway asks over stdin/stdout (``protocol.py``).

``python -m orgbase.functions.worker DIRECTORY MAX_FRAME MAX_RESPONSE MEMORY_MB``. The
gateway starts it with an environment that holds no setting of its own (no database
address, no key), and it dies with the gateway (PR_SET_PDEATHSIG, and its stdin closing).
Anything a function prints goes to stderr: stdout carries the frames only.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import importlib.util
import os
import resource
import signal
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orgbase.functions.answers import BadAnswer, answer, refusal
from orgbase.functions.cpu import Metered
from orgbase.functions.protocol import (
    Call,
    Cancel,
    Done,
    Failed,
    Invoke,
    Log,
    Ready,
    Reply,
    frame,
    read_to_worker,
)
from orgbase.functions.runtime import Context, FunctionError, HostError, Request
from orgbase.functions.spec import NAME

PR_SET_PDEATHSIG = 1
Handler = Callable[[Request, Context], Any]


def load_functions(directory: Path) -> tuple[dict[str, Handler], dict[str, str]]:
    """Import every function module: its handler, or why it could not be imported."""
    sys.path.insert(0, str(directory))
    handlers: dict[str, Handler] = {}
    failed: dict[str, str] = {}
    for path in sorted(directory.glob("*.py")) if directory.is_dir() else []:
        name = path.stem
        if name.startswith("_") or not NAME.fullmatch(name):
            continue
        try:
            spec = importlib.util.spec_from_file_location(f"orgbase_function_{name}", path)
            assert spec is not None
            assert spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            handlers[name] = module.handler
        except BaseException as exc:
            failed[name] = f"{type(exc).__name__}: {exc}"[:2000]
            traceback.print_exc()
    return handlers, failed


class Worker:
    def __init__(
        self, directory: Path, transport: asyncio.WriteTransport, max_response: int
    ) -> None:
        self.transport = transport
        self.max_response = max_response
        self.handlers, self.failed = load_functions(directory)
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.calls: dict[int, asyncio.Future[Any]] = {}
        self.next_call = 0

    def send(self, message: Any) -> None:
        self.transport.write(frame(message))

    def host_call(self, invocation: int) -> Callable[[str, list[Any]], Any]:
        async def call(op: str, args: list[Any]) -> Any:
            self.next_call += 1
            number = self.next_call
            future = asyncio.get_running_loop().create_future()
            self.calls[number] = future
            self.send(Call(id=invocation, call=number, op=op, args=args))
            try:
                return await future
            finally:
                self.calls.pop(number, None)

        return call

    def replied(self, reply: Reply) -> None:
        future = self.calls.get(reply.call)
        if future is None or future.done():
            return
        if reply.error is not None:
            error = reply.error
            future.set_exception(HostError(error.code, error.message, error.status, error.details))
        else:
            future.set_result(reply.value)

    def log_sink(self, invocation: int) -> Callable[[str, str, dict[str, Any]], None]:
        def sink(level: str, message: str, fields: dict[str, Any]) -> None:
            self.send(Log(id=invocation, level=level, message=message[:4000], fields=fields))

        return sink

    async def run(self, message: Invoke) -> None:
        handler = self.handlers.get(message.function)
        if handler is None:
            reason = self.failed.get(message.function, "the function is not loaded")
            self.send(Failed(id=message.id, kind="unavailable", message=reason))
            return
        ctx = Context(
            function=message.function,
            caller=message.caller,
            request_id=message.request_id,
            secrets=message.secrets,
            call=self.host_call(message.id),
            log=self.log_sink(message.id),
            event=message.event,
            idempotency_key=message.idempotency_key,
        )
        metered = Metered(handler(Request(message.request), ctx))
        self.send(await self._outcome(message, metered))

    async def _outcome(self, message: Invoke, metered: Metered) -> Done | Failed:
        ident = message.id
        try:
            value = await metered
            status, headers, body = answer(value)
        except FunctionError as refused:
            status, headers, body = refusal(refused, message.request_id)
        except asyncio.CancelledError:
            return Failed(id=ident, kind="cancelled", message="cancelled", cpu_ms=_ms(metered))
        except BadAnswer as bad:
            return Failed(id=ident, kind="bad_response", message=str(bad), cpu_ms=_ms(metered))
        except BaseException as exc:
            return Failed(
                id=ident,
                kind="exception",
                message=f"{type(exc).__name__}: {exc}"[:2000],
                traceback=traceback.format_exc()[-16000:],
                cpu_ms=_ms(metered),
            )
        if len(body) > self.max_response:
            too_big = f"the answer has {len(body)} bytes (at most {self.max_response})"
            return Failed(id=ident, kind="bad_response", message=too_big, cpu_ms=_ms(metered))
        return Done(id=ident, status=status, headers=headers, body=body, cpu_ms=_ms(metered))

    def dispatch(self, message: Any) -> None:
        if isinstance(message, Invoke):
            task = asyncio.get_running_loop().create_task(self.run(message))
            self.tasks[message.id] = task
            task.add_done_callback(lambda _: self.tasks.pop(message.id, None))
        elif isinstance(message, Cancel):
            running = self.tasks.get(message.id)
            if running is not None:
                running.cancel()
        elif isinstance(message, Reply):
            self.replied(message)


def _ms(metered: Metered) -> float:
    return round(metered.seconds * 1000, 3)


async def serve(directory: Path, frame_fd: int, max_frame: int, max_response: int) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=max_frame + 16)
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(0, "rb", buffering=0)
    )
    transport, _ = await loop.connect_write_pipe(
        asyncio.Protocol, os.fdopen(frame_fd, "wb", buffering=0)
    )
    worker = Worker(directory, transport, max_response)
    worker.send(Ready(pid=os.getpid(), failed=worker.failed))
    while True:
        message = await read_to_worker(reader, max_frame)
        if message is None:  # the gateway is gone
            return
        worker.dispatch(message)


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _limit_memory(megabytes: int) -> None:
    if megabytes > 0:
        limit = megabytes << 20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def main(argv: list[str]) -> None:
    directory, max_frame, max_response, memory_mb = argv[0], *map(int, argv[1:4])
    frame_fd = os.dup(1)
    os.dup2(2, 1)  # print() in a function goes to stderr, never into the frames
    _die_with_parent()
    _limit_memory(memory_mb)
    try:
        asyncio.run(serve(Path(directory), frame_fd, max_frame, max_response))
    finally:
        sys.stderr.flush()
        os._exit(0)  # tasks that never end (a hung handler) must not hold the exit


if __name__ == "__main__":
    main(sys.argv[1:])
