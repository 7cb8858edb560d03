"""Development-only routes: the mail the local catcher received (GET /v1/dev/mail).

Refused outside dev mode: mail carries codes and links that sign people in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import anyio
from litestar import get
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from litestar.types import ControllerRouterHandler

from orgbase.core.errors import Forbidden, NotFound
from orgbase.core.settings import Settings

MAX_MESSAGES = 50


def _read(path: Path, to: str | None) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    wanted = to.strip().lower() if to else None
    found: list[dict[str, Any]] = []
    with path.open() as handle:
        for line in handle:
            try:
                message = json.loads(line)
            except ValueError:
                continue  # a line being written
            if wanted is None or wanted in message.get("to", []):
                found.append(message)
    return found[-MAX_MESSAGES:][::-1]


@get(
    "/v1/dev/mail",
    tags=["development"],
    summary="Mail the local catcher received, newest first (dev mode only)",
)
async def dev_mail(
    gateway_settings: NamedDependency[Settings],
    to: Annotated[str | None, QueryParameter(max_length=320)] = None,
) -> list[dict[str, Any]]:
    settings = gateway_settings
    if not settings.is_dev:
        raise Forbidden("only served in dev mode (ORGBASE_ENV=dev)", code="dev_mode_only")
    if not settings.dev.mail_file:
        raise NotFound("no mail catcher is configured", code="mail_catcher_not_configured")
    path = Path(settings.dev.mail_file)
    return await anyio.to_thread.run_sync(_read, path, to)


dev_handlers: list[ControllerRouterHandler] = [dev_mail]
