"""A local PostgreSQL streaming replica of the local server (``services up --pg-replica``).

Made once with ``pg_basebackup -R`` (which writes ``standby.signal`` and the connection
to the primary), then run like the primary (as its server user when we are root) on the
stack's port ``base+20``. It replays the primary's WAL continuously and serves reads.
"""

from __future__ import annotations

import os
import shutil
import signal

from devstack.binaries import postgres_bin
from devstack.layout import PG_SUPERUSER
from devstack.postgres import LocalPostgres, start_server
from devstack.process import (
    StackError,
    pid_alive,
    port_open,
    read_pid,
    run,
    stop_pid,
    wait_until,
)

# A physical slot keeps the primary's WAL until the replica has it: without one, a replica
# that was stopped while the primary wrote a few segments cannot catch up ("requested WAL
# segment has already been removed"). max_slot_wal_keep_size bounds what a replica that
# never comes back can hold.
SLOT = "orgbase_local_replica"  # also written out in the two queries below
SLOT_WAL_KEEP = "2GB"


class LocalPgReplica:
    def __init__(self, primary: LocalPostgres) -> None:
        self.primary = primary
        self.layout = primary.layout
        self.home = primary.home / "replica"
        self.data_dir = self.home / "data"
        self.log_file = self.home / "postgres.log"

    @property
    def port(self) -> int:
        return self.layout.pg_replica_port

    @property
    def pid(self) -> int | None:
        return read_pid(self.data_dir / "postmaster.pid")

    def exists(self) -> bool:
        return (self.data_dir / "standby.signal").exists()

    def is_running(self) -> bool:
        return pid_alive(self.pid) and port_open(self.port)

    def _slot_usable(self) -> bool:
        """The replica's slot exists on the primary and still has the WAL it needs."""
        status = self.primary.query(
            "SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'orgbase_local_replica'"
        )
        return status not in ("", "lost")

    def _base_backup(self) -> None:
        if self.data_dir.exists():
            shutil.rmtree(self.data_dir)
        self.primary.query(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
            " WHERE slot_name = 'orgbase_local_replica' AND NOT active"
        )
        self.primary.query(f"ALTER SYSTEM SET max_slot_wal_keep_size = '{SLOT_WAL_KEEP}'")
        self.primary.query("SELECT pg_reload_conf()")
        self.home.mkdir(parents=True, exist_ok=True)
        self.primary._give_to_server_user(self.home)
        env = {**os.environ, "PGPASSWORD": self.primary.superuser_password}
        run(
            [
                str(postgres_bin() / "pg_basebackup"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.layout.pg_port),
                "-U",
                PG_SUPERUSER,
                "-D",
                str(self.data_dir),
                "-R",
                "--create-slot",
                f"--slot={SLOT}",
                "-X",
                "stream",
                "--no-sync",
                "--checkpoint=fast",
            ],
            as_user=self.primary.run_as,
            env=env,
            timeout=300,
        )
        # The copied configuration ends with the primary's port: a later line wins.
        with (self.data_dir / "postgresql.conf").open("a") as handle:
            handle.write(f"\n# The local replica.\nport = {self.port}\nhot_standby = on\n")

    def start(self) -> None:
        if self.exists() and not self._slot_usable():
            # Made before slots were used, or left behind past max_slot_wal_keep_size: it
            # can never catch up, so it is made again.
            self.stop()
            self._base_backup()
        if self.is_running():
            return
        if not self.exists():
            self._base_backup()
        if not pid_alive(self.pid):
            start_server(self.data_dir, self.log_file, self.primary.run_as)
        wait_until(lambda: port_open(self.port), 30, "the PostgreSQL replica to listen")
        # Listening is not caught up: a replica that was stopped replays what the primary
        # wrote meanwhile (a test database dropped and made again: reads of it fail until
        # then). Wait until it has what the primary had when it started.
        written = self.primary.query("SELECT pg_current_wal_lsn()")
        wait_until(lambda: self._replayed(written), 60, "the PostgreSQL replica to catch up")

    def _replayed(self, lsn: str) -> bool:
        try:
            done = self.primary.query(
                f"SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn", port=self.port
            )
        except StackError:  # still starting up: it refuses connections
            return False
        return done == "t"

    def stop(self) -> bool:
        return stop_pid(self.pid, signal.SIGINT, timeout=30)

    def kill(self) -> None:
        """Crash the replica, for fault drills: an immediate shutdown (every process quits
        at once, no checkpoint, connections cut; it recovers from WAL on start). A SIGKILL
        of the postmaster leaves it a zombie here that blocks the next start."""
        if pid_alive(self.pid):
            run(
                [
                    str(postgres_bin() / "pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-m",
                    "immediate",
                    "stop",
                ],
                as_user=self.primary.run_as,
                timeout=60,
            )
