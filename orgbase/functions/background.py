"""What the functions' loops (events, schedules) share: the catalog they run, the service
that runs an invocation, their outcome counts."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from orgbase.core.background import BackgroundTask
from orgbase.core.postgres import Database
from orgbase.core.settings import FunctionsSettings
from orgbase.functions.registry import Registry
from orgbase.functions.service import FunctionService


@dataclass(eq=False)
class FunctionsLoop(BackgroundTask):
    db: Database
    settings: FunctionsSettings
    registry: Registry
    service: FunctionService
    outcomes: Counter[str] = field(default_factory=Counter, init=False)
    """How the loop's runs ended (copied into the metrics)."""

    def longest_timeout(self) -> float:
        """The longest time limit of the functions served (a claim's lease covers it)."""
        return max(
            [s.config.timeout_seconds or 0 for s in self.registry.catalog.usable]
            + [self.settings.timeout_seconds]
        )
