"""The events owed to functions, read back: the dead-letter view (deliveries that failed
every attempt) and the other states, per org and function; and a retry, which puts a dead
delivery back in the outbox with its attempts counted afresh."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

import msgspec

from orgbase.core.errors import NotFound
from orgbase.core.postgres import Database

Status = Literal["pending", "delivered", "dead"]
_LIST = """
SELECT id, function, org_id, event_id, event_type, status, attempts, created_at,
       next_attempt_at, delivered_at, last_status, last_error, payload::text AS payload
FROM orgbase.function_deliveries
WHERE ($1::text IS NULL OR status = $1) AND ($2::uuid IS NULL OR org_id = $2)
  AND ($3::text IS NULL OR function = $3)
ORDER BY id DESC LIMIT $4
"""
_RETRY = """
UPDATE orgbase.function_deliveries
SET status = 'pending', attempts = 0, next_attempt_at = now(), claim_hash = NULL,
    claimed_until = NULL
WHERE id = $1 AND status = 'dead' AND ($2::uuid IS NULL OR org_id = $2)
RETURNING id
"""


class Deliveries:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def listed(
        self, *, status: Status | None, org: UUID | None, function: str | None, limit: int
    ) -> list[dict[str, Any]]:
        async with self.db.system_connection() as connection:
            rows = await connection.fetch(_LIST, status, org, function, limit)
        return [_shown(dict(row)) for row in rows]

    async def retry(self, delivery_id: int, org: UUID | None = None) -> None:
        """A dead delivery back in the outbox (404 unless it is dead, and in ``org``)."""
        async with self.db.system_connection() as connection:
            found = await connection.fetchval(_RETRY, delivery_id, org)
            if found is not None:
                await connection.execute("SELECT pg_notify('orgbase_function_deliveries', '')")
        if found is None:
            raise NotFound("no dead delivery with this id", code="function_delivery_not_found")


def _shown(row: dict[str, Any]) -> dict[str, Any]:
    for stamp in ("created_at", "next_attempt_at", "delivered_at"):
        row[stamp] = row[stamp].isoformat() if row[stamp] is not None else None
    row["org_id"] = str(row["org_id"])
    row["payload"] = msgspec.json.decode(row["payload"])
    return row
