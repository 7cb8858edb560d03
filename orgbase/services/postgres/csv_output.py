"""Rows as CSV (``Accept: text/csv``), as PostgREST answers: a header line of the selected
columns, then one line per row; NULL is an empty field, JSON values (objects, arrays,
embedded rows) are their JSON text, booleans ``true``/``false``."""

from __future__ import annotations

import csv
import io
from typing import Any

import msgspec

CSV = "text/csv; charset=utf-8"


def _field(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return msgspec.json.encode(value).decode()
    return str(value)


def rows_to_csv(body: str | None) -> bytes:
    rows = msgspec.json.decode(body or "[]")
    if isinstance(rows, dict):
        rows = [rows]
    if not rows:
        return b""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header = list(rows[0])
    writer.writerow(header)
    for row in rows:
        writer.writerow([_field(row.get(name)) for name in header])
    return out.getvalue().encode()
