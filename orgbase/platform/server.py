"""`orgbase serve`: uvicorn workers, each on its own SO_REUSEPORT socket.

With one shared listening socket, the first idle worker accepts a whole burst of new
connections, so keep-alive clients pile onto one worker while the other idles (measured:
two workers slower than one). With a socket per worker the kernel spreads connections
across workers. SIGTERM or SIGINT: every worker stops accepting, finishes its in-flight
requests (up to the grace period), and exits; a worker that dies is started again.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType

import structlog

from orgbase.core.settings import HttpSettings

log = structlog.get_logger("orgbase.server")
APP = "orgbase.platform.asgi:app_from_environment"


def listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def run_worker(host: str, port: int, http: HttpSettings) -> None:
    """One uvicorn server (graceful on SIGTERM: stops accepting, drains, exits)."""
    import uvicorn

    config = uvicorn.Config(
        APP,
        factory=True,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_config=None,
        proxy_headers=False,  # the gateway reads X-Forwarded-For itself (trusted proxies)
        timeout_graceful_shutdown=int(http.shutdown_grace_seconds),
        server_header=False,
        ws_per_message_deflate=http.websocket_compression,
    )
    uvicorn.Server(config).run(sockets=[listening_socket(host, port)])


def serve(host: str, port: int, workers: int, http: HttpSettings) -> int:
    if workers == 1:
        run_worker(host, port, http)
        return 0
    # Metrics of every worker live in files there; /metrics adds them up (prometheus-client
    # reads this variable when it is imported, so it is set before the workers start).
    metrics_dir = Path(tempfile.mkdtemp(prefix="orgbase-metrics-"))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    context = multiprocessing.get_context("spawn")
    stopping = False

    def start() -> BaseProcess:
        process = context.Process(target=run_worker, args=(host, port, http), daemon=False)
        process.start()
        return process

    def stop(signum: int, _: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for process in children:
            if process.pid and process.is_alive():
                os.kill(process.pid, signal.SIGTERM)

    children = [start() for _ in range(workers)]
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("serving", host=host, port=port, workers=workers)
    while not stopping:
        for index, process in enumerate(children):
            if not process.is_alive() and not stopping:
                log.warning("worker exited; starting another", exitcode=process.exitcode)
                _forget_worker(process.pid)
                children[index] = start()
        time.sleep(0.2)
    deadline = time.monotonic() + http.shutdown_grace_seconds + 5
    for process in children:
        process.join(max(0.1, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join(5)
    shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _forget_worker(pid: int | None) -> None:
    """Drop a dead worker's live gauges (in-flight requests, pools)."""
    if pid is None:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


if __name__ == "__main__":  # pragma: no cover - run through `orgbase serve`
    sys.exit(1)
