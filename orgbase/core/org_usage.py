"""What the services that enforce an org's limits or count its usage are given: the
effective limits lookup and the usage meter, made once by the limits area."""

from __future__ import annotations

from dataclasses import dataclass

from orgbase.core.metering import Meter
from orgbase.core.org_limits import LimitsOf


@dataclass(frozen=True)
class OrgUsage:
    limits_of: LimitsOf | None
    """An org's effective limits from the process's cache (no I/O); None: limits are off,
    the settings' defaults hold for every org."""
    meter: Meter
    """Counts what each org uses (metered with limits off too)."""
