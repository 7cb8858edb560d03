"""Gateway processes (`orgbase serve`) for the tests that need real sockets or restarts."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx

from tests.support.stack import ROOT

START_WITHIN = 40.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def wait_until_answering(url: str, process: subprocess.Popen[bytes], within: float) -> bool:
    """Poll ``url`` until it answers 200 (True), or ``process`` exits or time runs out
    (False). Polled, not awaited: a starting process gives no other sign of readiness."""
    deadline = time.monotonic() + within
    while not _answers(url):
        if process.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def start_server(
    env: dict[str, str], port: int, workers: int = 1, log_file: Path | None = None
) -> subprocess.Popen[bytes]:
    """`orgbase serve` in the background; returns once it answers. Its output goes to
    ``log_file`` when given (kept for reading after a failure), else nowhere."""
    output: int | IO[bytes] = subprocess.DEVNULL
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        output = log_file.open("wb")

    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "orgbase"),
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        env=env,
        cwd=ROOT,
        stdout=output,
        stderr=output,
    )
    if not isinstance(output, int):
        output.close()  # the child has its own copy
    if not wait_until_answering(f"http://127.0.0.1:{port}/health/live", process, START_WITHIN):
        process.kill()
        raise RuntimeError("the server did not start")
    return process


def stop_server(process: subprocess.Popen[bytes], within: float = 30) -> None:
    """SIGTERM and wait for the exit; a server that does not stop is killed, and that fails."""
    process.terminate()
    try:
        process.wait(within)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


@contextmanager
def serving(env: dict[str, str], workers: int = 1, log_file: Path | None = None) -> Iterator[str]:
    """`orgbase serve` on a free port for the block; yields its base URL, then SIGTERM."""
    port = free_port()
    process = start_server(env, port, workers, log_file)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_server(process)


@contextmanager
def serving_at_own_url(env: dict[str, str], log_file: Path | None = None) -> Iterator[str]:
    """Like ``serving``, with ORGBASE_TENANCY_PUBLIC_URL set to the process's own URL (the
    links it mails point back at it)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = start_server({**env, "ORGBASE_TENANCY_PUBLIC_URL": base}, port, log_file=log_file)
    try:
        yield base
    finally:
        stop_server(process)
