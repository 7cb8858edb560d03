"""What a data API statement answers: the rows as JSON text and their count."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Result:
    body: str | None
    rows: int
    total: int | None = None
