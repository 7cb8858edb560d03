"""A real DNS server on loopback for the domain-proof tests: Debian's dnsmasq (installed by
scripts/test_packages.sh), answering only the TXT records a test publishes, NXDOMAIN for
every other name under .test. Publishing restarts it with the new record set (dnsmasq
reads TXT records from its command line only)."""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dns.exception
import dns.resolver

DNSMASQ = "/usr/sbin/dnsmasq"


class LocalDns:
    def __init__(self, port: int, log_file: Path) -> None:
        self.port = port
        self.log_file = log_file
        self.records: list[tuple[str, str]] = []
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """As ORGBASE_TENANCY_DNS_RESOLVERS takes it."""
        return f"127.0.0.1:{self.port}"

    def publish(self, name: str, value: str) -> None:
        self.records.append((name, value))
        self.restart()

    def restart(self) -> None:
        self.stop()
        command = [
            DNSMASQ,
            "--keep-in-foreground",
            f"--port={self.port}",
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            "--no-resolv",
            "--no-hosts",
            "--local=/test/",
            "--pid-file=",
            f"--log-facility={self.log_file}",
            "--log-queries",
        ]
        if os.getuid() != 0:
            command.append(f"--user={getpass.getuser()}")
        command += [f"--txt-record={name},{value}" for name, value in self.records]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self._wait_until_answering()

    def _wait_until_answering(self) -> None:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = ["127.0.0.1"]
        resolver.port = self.port
        resolver.lifetime = 0.5
        deadline = time.monotonic() + 10
        while True:
            try:
                resolver.resolve("nothing-here.test", "TXT")
            except dns.resolver.NXDOMAIN:
                return
            except dns.exception.DNSException:
                pass
            assert self.process is not None
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dnsmasq did not start (see {self.log_file})")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@contextmanager
def running_dns(port: int, log_file: Path) -> Iterator[LocalDns]:
    assert shutil.which(DNSMASQ), "dnsmasq is needed (scripts/test_packages.sh)"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    server = LocalDns(port, log_file)
    server.restart()
    try:
        yield server
    finally:
        server.stop()
