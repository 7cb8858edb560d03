"""CPU time and memory of process trees, from /proc: the server's and PostgreSQL's CPU
microseconds per request move far less with a shared machine's noise than requests/s."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces: the fields after it follow the last ')'.
    return raw[raw.rindex(")") + 2 :].split()


def tree(root: int) -> list[int]:
    """``root`` and every descendant of it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes (the ones still alive)."""
    total = 0
    for pid in pids:
        fields = _stat(pid)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def rss_mib(pids: list[int]) -> float:
    total_kib = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
        except OSError:
            continue
    return total_kib / 1024


@dataclass
class CpuPerRequest:
    server_us: float
    postgres_us: float

    def line(self) -> str:
        return f"cpu/request: server {self.server_us:6.0f} us   postgres {self.postgres_us:6.0f} us"


class CpuMeter:
    """CPU of a server's process tree and of PostgreSQL's (the postmaster and its
    backends), between ``start`` and ``stop``."""

    def __init__(self, server_pid: int | None, postmaster_pid: int | None) -> None:
        self.server_pid = server_pid
        self.postmaster_pid = postmaster_pid
        self._server: list[int] = []
        self._postgres: list[int] = []
        self._before = (0.0, 0.0)

    def start(self) -> None:
        self._server = tree(self.server_pid) if self.server_pid else []
        self._postgres = tree(self.postmaster_pid) if self.postmaster_pid else []
        self._before = (cpu_seconds(self._server), cpu_seconds(self._postgres))

    def stop(self, requests: int) -> CpuPerRequest:
        # Backends opened during the run count too (those closed during it are lost).
        if self.postmaster_pid:
            self._postgres = sorted(set(self._postgres) | set(tree(self.postmaster_pid)))
        server = cpu_seconds(self._server) - self._before[0]
        postgres = cpu_seconds(self._postgres) - self._before[1]
        per = 1e6 / max(1, requests)
        return CpuPerRequest(server * per, postgres * per)
