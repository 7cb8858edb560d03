"""The local stack's mail catcher: a real SMTP server (aiosmtpd) that keeps every message
it receives as a JSON line in a file, where GET /v1/dev/mail (dev mode) and the studio
read them. Run as ``python -m devstack.mailcatcher PORT FILE``."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

MAX_MESSAGES_BYTES = 20 * 1024 * 1024


def _text(raw: bytes) -> tuple[str, str]:
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    part = parsed.get_body(preferencelist=("plain", "html"))
    body = part.get_content() if part is not None else ""
    return str(parsed.get("Subject", "")), str(body)


class Keeper:
    def __init__(self, path: Path) -> None:
        self.path = path

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        subject, body = _text(envelope.content)
        record = {
            "id": f"{time.time_ns()}",
            "from": envelope.mail_from,
            "to": [address.lower() for address in envelope.rcpt_tos],
            "subject": subject,
            "body": body,
            "received_at": time.time(),
        }
        if self.path.exists() and self.path.stat().st_size > MAX_MESSAGES_BYTES:
            self.path.rename(self.path.with_suffix(".old"))  # keep the file bounded
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        return "250 OK"


def main() -> None:
    from aiosmtpd.controller import Controller

    port, path = int(sys.argv[1]), Path(sys.argv[2])
    path.parent.mkdir(parents=True, exist_ok=True)
    controller = Controller(Keeper(path), hostname="127.0.0.1", port=port)
    controller.start()
    stopped = asyncio.Event()
    loop = asyncio.new_event_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopped.set)
    try:
        loop.run_until_complete(stopped.wait())
    finally:
        controller.stop()
        os._exit(0)


if __name__ == "__main__":
    main()
