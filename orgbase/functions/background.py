"""What the functions' loops (events, schedules) share: the catalog they run, the service
that runs an invocation, their outcome counts."""

from __future__ import annotations

from collections import Counter

from orgbase.core.background import BackgroundTask
from orgbase.core.postgres import Database
from orgbase.core.settings import FunctionsSettings
from orgbase.functions.registry import Registry
from orgbase.functions.service import FunctionService


class FunctionsLoop(BackgroundTask):
    def __init__(
        self,
        name: str,
        db: Database,
        settings: FunctionsSettings,
        registry: Registry,
        service: FunctionService,
    ) -> None:
        super().__init__(name)
        self.db = db
        self.settings = settings
        self.registry = registry
        self.service = service
        self.outcomes: Counter[str] = Counter()
        """How the loop's runs ended (copied into the metrics)."""

    def longest_timeout(self) -> float:
        """The longest time limit of the functions served (a claim's lease covers it)."""
        return max(
            [s.config.timeout_seconds or 0 for s in self.registry.catalog.usable]
            + [self.settings.timeout_seconds]
        )
