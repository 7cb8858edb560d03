"""What a function declares about itself: the module-level ``config`` literal, checked.

The gateway never imports the operator's code (a module's import runs it): it reads
``config`` from the module's syntax tree (``loader.py``), so a module that raises, hangs or
exits at import can only break the worker that imports it.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from orgbase.core.context import Role
from orgbase.functions.cron import Cron, CronError

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
METHODS: tuple[Method, ...] = ("GET", "POST", "PUT", "PATCH", "DELETE")
NAME = re.compile(r"[a-z][a-z0-9_-]{0,62}", re.ASCII)
"""A function's name: its module's file name (``whoami.py``), as it appears in the URL."""
SECRET_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}", re.ASCII)
EVENT = re.compile(r"[a-z*][a-z0-9_.*-]{0,199}", re.ASCII)


class FunctionConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A module's ``config = {...}``; every key optional."""

    access: Literal["public", "members"] = "members"
    """``public``: anyone with the publishable key (a credential sent is still checked);
    ``members``: a signed-in member of the org or one of its API keys."""
    min_role: Role = "viewer"
    """The least role a member (or an API key) needs."""
    api_keys: bool = True
    """Whether the org's API keys may call it (as their role)."""
    aal: Literal["aal1", "aal2"] = "aal1"
    """``aal2``: only sessions that verified a second factor."""
    methods: tuple[Method, ...] = METHODS
    """The HTTP methods it answers (405 for the others)."""
    timeout_seconds: Annotated[float, Meta(gt=0, le=3600)] | None = None
    """Its own time limit (the settings' default when unset)."""
    secrets: tuple[str, ...] = ()
    """The names of the deployment's secrets it reads as ``ctx.secrets``."""
    triggers: tuple[str, ...] = ()
    """Events it runs on (``db.items.insert``, ``member.*``, ``storage.*``...)."""
    trigger_role: Role = "member"
    """The role it acts with in the event's org when an event or a schedule runs it."""
    schedule: str | None = None
    """A cron expression (five fields, UTC) it runs on."""
    privileged: bool = False
    """Whether it may use ``ctx.system_db``: SQL as the platform (every org's rows), for
    the operator's own jobs. Declared here, by the operator, never by a caller."""

    def __post_init__(self) -> None:
        if not self.methods:
            raise ValueError("methods: lists at least one method")
        for secret in self.secrets:
            if not SECRET_NAME.fullmatch(secret):
                raise ValueError(f"secrets: {secret!r} is not a secret's name")
        for event in self.triggers:
            if not EVENT.fullmatch(event):
                raise ValueError(f"triggers: {event!r} is not an event name or pattern")
        if self.schedule is not None:
            try:
                Cron.parse(self.schedule)
            except CronError as exc:
                raise ValueError(f"schedule: {exc}") from None


class FunctionSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One function of the catalog: its module, its config, or why it cannot run."""

    name: str
    path: str
    config: FunctionConfig = msgspec.field(default_factory=FunctionConfig)
    error: str | None = None
    """Why the function cannot be invoked (its config or its module is wrong)."""
    mtime_ns: int = 0

    @property
    def usable(self) -> bool:
        return self.error is None


def read_config(value: Any) -> FunctionConfig:
    """A ``config`` literal as a FunctionConfig (ValueError saying what is wrong)."""
    if value is None:
        return FunctionConfig()
    if not isinstance(value, dict):
        raise ValueError("config is a dict literal")
    if isinstance(value.get("methods"), (list, tuple)):
        value = {**value, "methods": [str(m).upper() for m in value["methods"]]}
    try:
        return msgspec.convert(value, FunctionConfig)
    except msgspec.ValidationError as exc:
        raise ValueError(f"config: {exc}") from None
