"""The local PostgreSQL server.

``initdb`` refuses to run as root, so as root every server command runs as the ``postgres``
user through ``runuser`` and the data folder belongs to that user. The data folder must be
reachable by that user: when the state folder is not (a checkout under a 700 home folder),
the data lives under /var/tmp instead.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import re
import signal
import subprocess
from pathlib import Path

from devstack.binaries import is_root, postgres_bin
from devstack.layout import PG_SUPERUSER, StackLayout
from devstack.process import (
    StackError,
    pid_alive,
    port_open,
    read_pid,
    run,
    stop_pid,
    wait_until,
)

_SERVER_CONFIG = """
# Written by orgbase's local stack: loopback only, tuned for development and tests.
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{socket_dir}'
max_connections = 400
shared_buffers = 256MB
fsync = off
synchronous_commit = off
full_page_writes = off
log_min_duration_statement = 250
log_line_prefix = '%m [%p] app=%a user=%u db=%d '
"""


class LocalPostgres:
    def __init__(self, layout: StackLayout, superuser_password: str) -> None:
        self.layout = layout
        self.superuser_password = superuser_password
        self.run_as = _server_user() if is_root() else None
        self.home = self._choose_home()
        self.data_dir = self.home / "data"
        self.socket_dir = self.home / "run"
        self.log_file = self.home / "postgres.log"

    # -- location ---------------------------------------------------------------------

    def _choose_home(self) -> Path:
        preferred = self.layout.state_dir / "postgres"
        digest = hashlib.sha256(str(self.layout.state_dir.resolve()).encode()).hexdigest()[:12]
        # /var/tmp survives reboots (unlike /tmp) and every user can reach it.
        fallback = Path("/var/tmp") / f"orgbase-{digest}" / "postgres"  # noqa: S108
        for home in (preferred, fallback):
            if (home / "data" / "PG_VERSION").exists():
                return home
        if self.run_as is None or self._reachable_by_server_user(preferred):
            return preferred
        return fallback

    def _reachable_by_server_user(self, home: Path) -> bool:
        home.mkdir(parents=True, exist_ok=True)
        self._give_to_server_user(home)
        try:
            run(["test", "-w", str(home)], as_user=self.run_as)
        except StackError:
            return False
        return True

    def _give_to_server_user(self, path: Path) -> None:
        if self.run_as is not None:
            entry = pwd.getpwnam(self.run_as)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    # -- lifecycle --------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return read_pid(self.data_dir / "postmaster.pid")

    def is_running(self) -> bool:
        return pid_alive(self.pid) and port_open(self.layout.pg_port)

    def start(self) -> None:
        if self.is_running():
            return
        bin_dir = postgres_bin()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(bin_dir)
        if pid_alive(self.pid):
            # A server from this data folder is up but not answering yet.
            wait_until(lambda: port_open(self.layout.pg_port), 30, "PostgreSQL to listen")
            return
        start_server(self.data_dir, self.log_file, self.run_as)
        wait_until(lambda: port_open(self.layout.pg_port), 30, "PostgreSQL to listen")

    def _initdb(self, bin_dir: Path) -> None:
        for path in (self.home, self.socket_dir):
            path.mkdir(parents=True, exist_ok=True)
            self._give_to_server_user(path)
        password_file = self.home / ".pwfile"
        fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(self.superuser_password + "\n")
        self._give_to_server_user(password_file)
        try:
            run(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    PG_SUPERUSER,
                    f"--pwfile={password_file}",
                    "--auth=scram-sha-256",
                    "--encoding=UTF8",
                    "--no-locale",
                    "--no-sync",
                ],
                as_user=self.run_as,
                timeout=120,
            )
        finally:
            password_file.unlink(missing_ok=True)
        config = _SERVER_CONFIG.format(port=self.layout.pg_port, socket_dir=self.socket_dir)
        with (self.data_dir / "postgresql.conf").open("a") as handle:
            handle.write(config)

    def stop(self) -> bool:
        """Fast shutdown by pid (SIGINT: roll back open transactions and exit)."""
        return stop_pid(self.pid, signal.SIGINT, timeout=30)

    def kill(self) -> None:
        """SIGKILL the postmaster, for fault drills."""
        pid = self.pid
        if pid_alive(pid):
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            wait_until(lambda: not pid_alive(pid), 10, "PostgreSQL to die")

    def ensure_database(self, name: str) -> None:
        """Create the database when it is missing (psql over TCP as the superuser)."""
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
            raise StackError(f"invalid database name {name!r}")
        if self.query(f"SELECT 1 FROM pg_database WHERE datname = '{name}'") != "1":  # noqa: S608 (checked above)
            self.query(f'CREATE DATABASE "{name}"')

    def query(self, statement: str, *, port: int | None = None) -> str:
        """One statement as the superuser in the ``postgres`` database (psql over TCP);
        its output, unaligned. Only for the stack's own fixed statements. ``port``: another
        server of the same superuser (the replica)."""
        env = {**os.environ, "PGPASSWORD": self.superuser_password}
        base = [
            "psql",
            "-X",
            "-q",
            "-h",
            "127.0.0.1",
            "-p",
            str(port or self.layout.pg_port),
            "-U",
            PG_SUPERUSER,
            "-d",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
            "-tAc",
        ]
        psql = str(postgres_bin() / "psql")
        base[0] = psql if Path(psql).exists() else "psql"
        done = subprocess.run(
            [*base, statement], env=env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise StackError(f"cannot query PostgreSQL: {done.stderr.strip()}")
        return done.stdout.strip()


def start_server(data_dir: Path, log_file: Path, run_as: str | None) -> None:
    """``pg_ctl start`` of a data folder (the primary's or a replica's), as the server's
    user; returns once the server is up, or fails after 60 s."""
    pg_ctl = str(postgres_bin() / "pg_ctl")
    start = [pg_ctl, "-D", str(data_dir), "-l", str(log_file), "-w", "-t", "60", "start"]
    run(start, as_user=run_as, timeout=90)


def _server_user() -> str:
    """The unprivileged user that owns the server when we are root."""
    for name in ("postgres", "orgbase-pg"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "orgbase-pg"])
    return "orgbase-pg"
