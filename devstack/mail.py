"""The local mail catcher (SMTP on the stack's ports), started like the other services."""

from __future__ import annotations

import signal
import subprocess
import sys

from devstack import process
from devstack.layout import StackLayout


class LocalMail:
    def __init__(self, layout: StackLayout) -> None:
        self.layout = layout
        self.root = layout.state_dir / "mail"
        self.pid_file = self.root / "catcher.pid"
        self.messages = self.root / "messages.jsonl"

    @property
    def port(self) -> int:
        return self.layout.smtp_port

    @property
    def pid(self) -> int | None:
        return process.read_pid(self.pid_file)

    def is_running(self) -> bool:
        return process.pid_alive(self.pid) and process.port_open(self.port)

    def start(self) -> None:
        if self.is_running():
            return
        self.root.mkdir(parents=True, exist_ok=True)
        if not process.pid_alive(self.pid):
            process.refuse_taken_port(self.port)
            log = (self.root / "catcher.log").open("a")
            child = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "devstack.mailcatcher",
                    str(self.port),
                    str(self.messages),
                ],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            self.pid_file.write_text(f"{child.pid}\n")
        process.wait_until(lambda: process.port_open(self.port), 30, "the mail catcher")

    def stop(self) -> bool:
        return process.stop_pid(self.pid, signal.SIGTERM)
