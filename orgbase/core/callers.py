"""How an area that serves callers with or without a credential (a public function) asks
the request-auth component who calls: a protocol, implemented by
``platform/request_auth.py`` and handed in by the gateway."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from orgbase.core.context import OrgContext


@runtime_checkable  # Litestar checks dependencies against their declared types
class CallerSource(Protocol):
    async def optional_context(self, connection: Any) -> OrgContext | None:
        """The caller's context in their active org, admitted into the org's allowance;
        None when the request carries no credential (nothing, or only the publishable
        key). A credential that fails raises the 401 it gets everywhere."""
        ...

    def publishable_ok(self, connection: Any) -> bool:
        """Whether the request carries the deployment's publishable key (as ``apikey`` or
        as the bearer), or the deployment has none."""
        ...
