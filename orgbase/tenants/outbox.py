"""Delivers the mail outbox through SMTP, when SMTP is configured.

Several gateways may run the dispatcher: rows are claimed with FOR UPDATE SKIP LOCKED and
their next attempt pushed back before sending, so a message goes out once; failures are
retried with backoff, and give up after MAX_ATTEMPTS (the error stays on the row).
"""

from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage
from typing import Any

import structlog

from orgbase.core.periodic import Periodic
from orgbase.core.postgres import Database
from orgbase.core.settings import SmtpSettings

log = structlog.get_logger("orgbase.outbox")
MAX_ATTEMPTS = 8

_CLAIM = """
UPDATE orgbase.outbox SET attempts = attempts + 1,
       available_at = now() + make_interval(secs => 30 * power(2, attempts))
WHERE id IN (
    SELECT id FROM orgbase.outbox
    WHERE sent_at IS NULL AND available_at <= now() AND attempts < $1
    ORDER BY id LIMIT 20 FOR UPDATE SKIP LOCKED)
RETURNING id, recipient, subject, body
"""


class OutboxDispatcher:
    def __init__(self, db: Database, settings: SmtpSettings) -> None:
        self.db = db
        self.settings = settings
        # A failed pass is logged and retried: the database or SMTP may come back.
        self._poller = Periodic.queue_worker(
            "outbox pass", self._deliver_round, settings.poll_seconds
        )

    def start(self) -> None:
        if self.settings.host:
            self._poller.start()

    async def stop(self) -> None:
        await self._poller.stop()

    async def _deliver_round(self) -> None:
        await self.deliver_due()

    async def deliver_due(self) -> int:
        async with self.db.system_connection() as connection:
            rows = await connection.fetch(_CLAIM, MAX_ATTEMPTS)
        sent = 0
        for row in rows:
            try:
                await asyncio.to_thread(self._send, dict(row))
            except (OSError, smtplib.SMTPException) as exc:
                log.warning("mail not sent", outbox_id=row["id"], error=str(exc)[:300])
                async with self.db.system_connection() as connection:
                    await connection.execute(
                        "UPDATE orgbase.outbox SET last_error = $2 WHERE id = $1",
                        row["id"],
                        str(exc)[:1000],
                    )
                continue
            async with self.db.system_connection() as connection:
                await connection.execute(
                    "UPDATE orgbase.outbox SET sent_at = now(), last_error = NULL WHERE id = $1",
                    row["id"],
                )
            sent += 1
        return sent

    def _send(self, row: dict[str, Any]) -> None:
        s = self.settings
        assert s.host is not None
        message = EmailMessage()
        message["From"] = s.from_address
        message["To"] = row["recipient"]
        message["Subject"] = row["subject"]
        message.set_content(row["body"])
        with smtplib.SMTP(s.host, s.port, timeout=s.timeout_seconds) as smtp:
            if s.starttls:
                smtp.starttls()
            if s.username and s.password:
                smtp.login(s.username, s.password)
            smtp.send_message(message)
