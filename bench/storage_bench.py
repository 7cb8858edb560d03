"""File storage figures (``make bench-storage``), one gateway worker on the local stack:

1. a 100 MiB object uploaded and downloaded with curl, beside nginx serving the same file
   from the same disk in the same run (nginx: sendfile on);
2. 4 KiB objects uploaded per second (wrk, each request a new object) against the data
   API's inserts per second (one row each), same connections;
3. the gateway's memory (RSS) while a 1 GiB object is uploaded: streamed, it stays flat.

The machine is shared: the figures say what one run saw, printed with the load average.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench.harness import (
    ROOT,
    SERVER_PIDS,
    free_port,
    gateway,
    local_stack,
    prepare_database,
    wrk,
)

DATABASE = "orgbase_bench_storage"
WORK = ROOT / ".orgbase" / "bench-storage"
MIB = 1 << 20
ROUNDS = 3
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
NGINX_CONF = """
worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx.error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path {work}/nginx_body;
    proxy_temp_path {work}/nginx_proxy;
    fastcgi_temp_path {work}/nginx_fastcgi;
    uwsgi_temp_path {work}/nginx_uwsgi;
    scgi_temp_path {work}/nginx_scgi;
    server {{
        listen 127.0.0.1:{port};
        root {work}/files;
    }}
}}
"""


def make_file(path: Path, size: int) -> None:
    """``size`` bytes of incompressible data (one random MiB repeated)."""
    block = os.urandom(MIB)
    with path.open("wb") as handle:
        for _ in range(size // MIB):
            handle.write(block)


def curl(*args: str) -> float:
    """curl's measured speed (bytes/s) of one transfer (download or upload)."""
    out = subprocess.run(
        [
            "curl",
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{speed_download} %{speed_upload}",
            *args,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if not out[0].startswith("2"):
        raise SystemExit(f"curl got {out[0]} for {args[-1]}")
    return max(float(out[1]), float(out[2]))


def gbps(values: list[float]) -> str:
    return (
        f"{statistics.median(values) / 1e9:5.2f} GB/s (median of {len(values)}; "
        f"best {max(values) / 1e9:.2f})"
    )


async def owner(base: str) -> dict[str, str]:
    """A user owning an org, signed in to it; a bucket ``bench``."""
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        email = f"storage-{os.getpid()}@bench.test"
        password = "bench password 2026!"
        (
            await client.post("/v1/auth/signup", json={"email": email, "password": password})
        ).raise_for_status()
        grant = {"grant_type": "password", "email": email, "password": password}
        tokens = (await client.post("/v1/auth/token", json=grant)).json()
        auth = {"Authorization": f"Bearer {tokens['access_token']}"}
        org = (await client.post("/v1/orgs", headers=auth, json={"name": "bench"})).json()
        scoped = (await client.post("/v1/auth/token", json={**grant, "org_id": org["id"]})).json()
        token = scoped["access_token"]
        made = await client.post(
            "/storage/v1/bucket", json={"id": "bench"}, headers={"Authorization": f"Bearer {token}"}
        )
        made.raise_for_status()
        return {"token": token, "org": org["id"]}


def big_object(base: str, token: str, source: Path, nginx: str) -> None:
    url = f"{base}/storage/v1/object/bench/big.bin"
    auth = f"Authorization: Bearer {token}"
    uploads = [
        curl(
            "-X",
            "POST",
            "-H",
            auth,
            "-H",
            "x-upsert: true",
            "-H",
            "content-type: application/octet-stream",
            "--data-binary",
            f"@{source}",
            url,
        )
        for _ in range(ROUNDS)
    ]
    downloads = [curl("-H", auth, url) for _ in range(ROUNDS)]
    served = [curl(f"{nginx}/{source.name}") for _ in range(ROUNDS)]
    print(f"100 MiB upload   (gateway)          {gbps(uploads)}")
    print(f"100 MiB download (gateway)          {gbps(downloads)}")
    print(f"100 MiB download (nginx, sendfile)  {gbps(served)}")
    ratio = statistics.median(served) / statistics.median(downloads)
    up_ratio = statistics.median(downloads) / statistics.median(uploads)
    print(f"  nginx / gateway download: {ratio:.2f}x   gateway download / upload: {up_ratio:.2f}x")


def small_objects(base: str, token: str, seconds: float) -> None:
    body = "x" * 4096
    uploads = wrk(
        f"{base}/storage/v1/object/bench/small",
        seconds=seconds,
        connections=16,
        method="POST",
        tokens=[token],
        bodies=[body],
        content_type="application/octet-stream",
        unique_paths=True,
    )
    print(uploads.line("4 KiB object uploads"))
    inserts = wrk(
        f"{base}/v1/db/items",
        seconds=seconds,
        connections=16,
        method="POST",
        tokens=[token],
        bodies=['{"title": "bench row"}'],
    )
    print(inserts.line("data API inserts (one row)"))
    print(f"  uploads / inserts: {uploads.rps / inserts.rps:.2f}")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def memory_during_upload(base: str, token: str, source: Path) -> None:
    pid = SERVER_PIDS[base]
    samples: list[int] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.append(rss_kib(pid))
            time.sleep(0.1)

    before = rss_kib(pid)
    watcher = threading.Thread(target=sample)
    watcher.start()
    started = time.monotonic()
    try:
        speed = curl(
            "-X",
            "POST",
            "-H",
            f"Authorization: Bearer {token}",
            "-H",
            "content-type: application/octet-stream",
            "-H",
            "x-upsert: true",
            "-T",
            str(source),
            "-X",
            "POST",
            f"{base}/storage/v1/object/bench/huge.bin",
        )
    finally:
        done.set()
        watcher.join()
    took = time.monotonic() - started
    print(
        f"1 GiB upload: {speed / 1e9:.2f} GB/s in {took:.1f} s; gateway RSS before "
        f"{before / 1024:.0f} MiB, during min {min(samples) / 1024:.0f} / max "
        f"{max(samples) / 1024:.0f} MiB ({len(samples)} samples)"
    )


def main() -> None:
    stack = local_stack()
    env = asyncio.run(prepare_database(stack, DATABASE))
    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "files").mkdir(parents=True)
    env.update(
        {
            "ORGBASE_STORAGE_ROOT": str(WORK / "storage"),
            "ORGBASE_LIMITS_STORAGE_BYTES": str(64 << 30),
            "ORGBASE_LIMITS_MAX_OBJECT_BYTES": str(4 << 30),
            "ORGBASE_LIMITS_STORAGE_REQUESTS_PER_MINUTE": "100000000",
            "ORGBASE_LIMITS_DATA_REQUESTS_PER_MINUTE": "100000000",
        }
    )
    medium, huge = WORK / "files" / "100mib.bin", WORK / "files" / "1gib.bin"
    make_file(medium, 100 * MIB)
    make_file(huge, 1024 * MIB)
    port = free_port()
    conf = Path(tempfile.mkdtemp(prefix="bench-nginx-")) / "nginx.conf"
    conf.write_text(NGINX_CONF.format(work=WORK, port=port))
    nginx = subprocess.Popen([NGINX, "-c", str(conf)], stderr=subprocess.DEVNULL)
    try:
        with gateway(env, workers=1, log_file=WORK / "gateway.log") as base:
            who: dict[str, Any] = asyncio.run(owner(base))
            print(f"load average before: {os.getloadavg()[0]:.2f} (2 cores, shared machine)")
            big_object(base, who["token"], medium, f"http://127.0.0.1:{port}")
            small_objects(base, who["token"], seconds=10)
            memory_during_upload(base, who["token"], huge)
            print(f"load average after: {os.getloadavg()[0]:.2f}")
    finally:
        nginx.terminate()
        nginx.wait(10)
        shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
