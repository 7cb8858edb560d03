"""An S3-compatible server for the storage tests: moto's server (an emulator of S3's API
in Python; no real S3-compatible store installs on these machines), on a free port."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.processes import free_port, wait_until_answering

ACCESS_KEY = "test-key"
SECRET_KEY = "test-secret"


@contextmanager
def moto_server(log_file: Path | None = None) -> Iterator[str]:
    port = free_port()
    output = log_file.open("wb") if log_file is not None else subprocess.DEVNULL
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=output,
        stderr=output,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        if not wait_until_answering(f"{url}/moto-api/", process, 30):
            raise RuntimeError("moto_server did not start")
        yield url
    finally:
        process.terminate()
        process.wait(10)


def make_bucket(url: str, name: str) -> None:
    """CreateBucket (path style; the emulator checks no signature)."""
    made = httpx.put(f"{url}/{name}")
    assert made.status_code == 200, made.text
