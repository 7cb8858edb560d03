"""Structured JSON logs (structlog) for the app and for the libraries it uses.

Request ids, orgs and users reach every line through structlog's contextvars. Values of
secret-looking keys and passwords inside URLs are redacted before anything is written.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from datetime import UTC, datetime
from typing import Any, TextIO

import msgspec
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from orgbase.core.settings import LogSettings

_SECRET_KEYS = re.compile(
    r"pass(word)?|secret|token|authorization|(api|service)_?key|cookie|credential|private_key",
    re.IGNORECASE,
)
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:@/\s]*):[^@/\s]+@")
_BEARER = re.compile(r"(?i)\b(bearer|apikey)\s+[A-Za-z0-9._~+/=-]{8,}")
# PostgreSQL describes the row or key a statement failed on in its error's DETAIL
# ("Failing row contains (...)", "Key (col)=(...)"), and the driver's exception text
# carries that DETAIL: a users row holds a password hash. Values never reach a log.
_ROW_DETAIL = re.compile(r"(Failing row contains|Key \([^)]*\)=).*")
_ROW_MARKS = ("Failing row contains", "Key (")
REDACTED = "[redacted]"


_KNOWN_KEYS: dict[str, bool] = {}


def _secret_key(key: str) -> bool:
    found = _KNOWN_KEYS.get(key)
    if found is None:
        found = _KNOWN_KEYS[key] = _SECRET_KEYS.search(key) is not None
    return found


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        # Cheap checks first: most strings hold neither a URL password nor a bearer token.
        if "://" in value and "@" in value:
            value = _URL_PASSWORD.sub(r"\g<scheme>\g<user>:" + REDACTED + "@", value)
        if any(word in value.lower() for word in ("bearer", "apikey")):
            value = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", value)
        if any(mark in value for mark in _ROW_MARKS):
            value = _ROW_DETAIL.sub(lambda m: f"{m.group(1)} {REDACTED}", value)
        return value
    if isinstance(value, MutableMapping):
        return {k: (REDACTED if _secret_key(str(k)) else _scrub(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def redact_secrets(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    for key, value in list(event_dict.items()):
        if _secret_key(key):
            event_dict[key] = REDACTED
        elif isinstance(value, str | MutableMapping | list | tuple):
            event_dict[key] = _scrub(value)
    return event_dict


def _serialize(event_dict: EventDict, **_: Any) -> str:
    return _json_encoder.encode(event_dict).decode()


def _fallback(obj: Any) -> Any:
    return str(obj)


_json_encoder = msgspec.json.Encoder(enc_hook=_fallback)


class _AccessLog:
    """One JSON line per request, written straight to the log stream.

    Its fields are known (method, path, route, status, duration, ids: no secrets), so it
    needs neither the redaction pass nor structlog's processor chain; on the hot path
    that chain cost more than the rest of the logging. The line has the same shape as
    structlog's: event, level, timestamp, request_id...
    """

    def __init__(self, stream: TextIO, level: int, json_lines: bool) -> None:
        self.stream = stream
        self.info_enabled = level <= logging.INFO
        self.json_lines = json_lines

    def write(self, fields: dict[str, Any], warning: bool) -> None:
        if not (warning or self.info_enabled):
            return
        fields["event"] = "request"
        fields["level"] = "warning" if warning else "info"
        fields["timestamp"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        if self.json_lines:
            line = _json_encoder.encode(fields).decode()
        else:
            line = " ".join(f"{k}={v}" for k, v in fields.items())
        self.stream.write(line + "\n")
        self.stream.flush()


_access: _AccessLog | None = None


def access_log(fields: dict[str, Any], warning: bool = False) -> None:
    """Log one finished request (see _AccessLog)."""
    if _access is not None:
        _access.write(fields, warning)


def configure_logging(settings: LogSettings, stream: TextIO | None = None) -> None:
    """Configure structlog and route the standard library's loggers through it."""
    output = stream or sys.stdout
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer(serializer=_serialize)
        if settings.format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    level = logging.getLevelNamesMapping()[settings.level.upper()]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            redact_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.WriteLoggerFactory(file=output),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(output)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                redact_secrets,
                renderer,
            ],
        )
    )
    global _access  # noqa: PLW0603 - configured once per process, like structlog itself
    _access = _AccessLog(output, level, settings.format == "json")
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Our middleware writes one line per request; uvicorn's access log would double it.
    logging.getLogger("uvicorn.access").disabled = True
