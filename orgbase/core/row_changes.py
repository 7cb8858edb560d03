"""Row changes of tenant tables, and the one way realtime asks who may see them.

PostgreSQL announces every committed row change (``NOTIFY orgbase_rows``, written by the
tables' audit trigger: sql/rls/0029_row_change_images.sql) with the row's key, and for a
deletion the deleted row. Realtime's postgres_changes must deliver a change only to the
subscribers who may SELECT that row under row-level security at that moment, and with the
full row. That question is answered in PostgreSQL only, by the data API's area (which owns
the tenant tables' SQL) through ``ChangeReader``, wired by the platform: one statement per
caller context, entered with that caller's own credential, for a batch of changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Protocol
from uuid import UUID

import msgspec

from orgbase.core.postgres import TenantEntry

ROW_EVENTS = "orgbase_rows"
"""The NOTIFY channel of row changes."""

Op = Literal["insert", "update", "delete"]


class RowChange(msgspec.Struct, frozen=True, kw_only=True):
    """One committed change, as announced (the NOTIFY payload)."""

    org: UUID
    table: str
    op: Op
    schema: str = "api"
    key: dict[str, Any] | None = None
    """The row's primary key (absent when too large to announce)."""
    at: str | None = None
    """When the row changed: ISO 8601, UTC."""
    new: dict[str, Any] | None = None
    """The row after an insert or update (absent when too large to announce)."""
    old: dict[str, Any] | None = None
    """The row before the change: on deletions, and on updates of tables whose replica
    identity is FULL."""
    full: bool = False
    """The table's replica identity is FULL: subscribers may receive the whole old row."""
    trimmed: bool = False
    """``old`` was too large to announce and holds only the key, org_id and created_by."""


decode_change = msgspec.json.Decoder(RowChange).decode


class Column(msgspec.Struct, frozen=True):
    name: str
    type: str
    """PostgreSQL's type name (``int4``, ``text``, ``_int8`` for an array...), as Supabase's
    clients expect it in ``columns``."""


class TableShape(msgspec.Struct, frozen=True):
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]


class SeenRow(msgspec.Struct, frozen=True):
    """A change one caller context may see."""

    index: int
    """Its position in the batch asked about."""
    row: dict[str, Any]
    """The changed row (the announced one; as the caller reads it now when it was too large
    to announce), or the deleted row."""
    matched: tuple[bool, ...]
    """For each filter asked about: does the row pass it."""


class ChangeReader(Protocol):
    """Answered by the data API's area (it alone writes SQL naming tenant tables)."""

    async def shape(self, table: str) -> TableShape | None:
        """The table's columns and key, or None when it is not a tenant table of ``api``."""
        ...

    async def check_filter(self, table: str, filter_text: str) -> None:
        """Refuse (``Invalid``) a filter (``column=op.value``) that cannot apply."""
        ...

    async def visible(
        self,
        entry: TenantEntry,
        table: str,
        changes: Sequence[RowChange],
        filters: Sequence[str],
    ) -> list[SeenRow]:
        """Which of ``changes`` (all of ``table``) the caller entering with ``entry`` may
        SELECT now, with its rows, in one statement."""
        ...
