"""Rows as CSV (``Accept: text/csv``), as PostgREST answers: a header line of the selected
columns, then one line per row; NULL is an empty field, JSON values (objects, arrays,
embedded rows) are their JSON text, booleans ``true``/``false``.

``Prefer: csv-formulas=escape`` neutralises text cells a spreadsheet would run as a formula
(``core.csv_text``); the studio's downloads ask for it. Without it the text is as stored,
as PostgREST gives it."""

from __future__ import annotations

from typing import Any

import msgspec

from orgbase.core.csv_text import MEDIA_TYPE, write_csv

CSV = MEDIA_TYPE


def _field(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return msgspec.json.encode(value).decode()
    return value


def rows_to_csv(body: str | None, *, escape_formulas: bool = False) -> bytes:
    rows = msgspec.json.decode(body or "[]")
    if isinstance(rows, dict):
        rows = [rows]
    if not rows:
        return b""
    header = list(rows[0])
    lines = ([_field(row.get(name)) for name in header] for row in rows)
    return write_csv(header, lines, escape_formulas=escape_formulas)
