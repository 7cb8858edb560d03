"""The local MongoDB-wire server (nx-27017, backed by SQLite)."""

from __future__ import annotations

import signal

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from devstack import process
from devstack.binaries import mongo_wire_server
from devstack.layout import StackLayout


class LocalMongo:
    def __init__(self, layout: StackLayout) -> None:
        self.layout = layout
        self.root = layout.state_dir / "mongo"
        self.pid_file = self.root / "nx-27017.pid"

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.layout.mongo_port}/"

    @property
    def pid(self) -> int | None:
        return process.read_pid(self.pid_file)

    def _ping(self) -> bool:
        client: MongoClient[dict[str, object]] = MongoClient(
            self.url, serverSelectionTimeoutMS=500, connectTimeoutMS=500
        )
        try:
            client.admin.command("ping")
        except PyMongoError:
            return False
        finally:
            client.close()
        return True

    def is_running(self) -> bool:
        return process.pid_alive(self.pid) and self._ping()

    def start(self) -> None:
        if self.is_running():
            return
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        if not process.pid_alive(self.pid):
            process.refuse_taken_port(self.layout.mongo_port)
            process.run(
                [
                    str(mongo_wire_server()),
                    "-d",
                    "--host",
                    "127.0.0.1",
                    "-p",
                    str(self.layout.mongo_port),
                    "--data-dir",
                    str(self.root / "data"),
                    "--log-file",
                    str(self.root / "nx-27017.log"),
                    "--pid-file",
                    str(self.pid_file),
                ],
                timeout=60,
            )
        process.wait_until(self._ping, 30, "the Mongo-wire server to answer")

    def stop(self) -> bool:
        return process.stop_pid(self.pid, signal.SIGTERM)
