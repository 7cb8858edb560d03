"""What the policy linter reports: one finding per rule broken."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Level = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    rule: str
    level: Level
    object: str
    message: str
    remedy: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
