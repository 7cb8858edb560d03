"""The browser sign-in takes JSON from this deployment's own pages only (login CSRF).

A cross-site HTML form can POST ``text/plain``, a form encoding or no type at all (a
``text/plain`` form can even carry a JSON-looking body), but never ``application/json``
without a CORS preflight. So ``POST /v1/auth/browser/sign-in`` needs
``Content-Type: application/json`` (415 ``content_type_not_json``) and, when the browser
says where the request comes from (``Origin``, ``Sec-Fetch-Site``), an origin of this
deployment: the request's own, the public URL's, or one of the CORS origins the operator
trusts (403 ``origin_not_allowed``). Browsers send ``Origin`` on every POST; a request
without one is not a browser's form (curl, an SDK) and is let through.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from orgbase.core.app_state import AppKey
from orgbase.core.errors import Forbidden, UnsupportedMediaType


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class BrowserOrigins:
    def __init__(self, public_url: str, cors_origins: tuple[str, ...]) -> None:
        self.trusted = {origin_of(public_url), *(origin_of(o) for o in cors_origins)}

    def check(self, connection: ASGIConnection[Any, Any, Any, Any]) -> None:
        headers = connection.headers
        media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type != "application/json":
            raise UnsupportedMediaType(
                "the browser sign-in takes Content-Type: application/json only",
                code="content_type_not_json",
            )
        refused = Forbidden(
            "the browser sign-in is for this deployment's own pages",
            code="origin_not_allowed",
        )
        if headers.get("sec-fetch-site", "").lower() == "cross-site":
            raise refused
        origin = headers.get("origin")
        if origin is None:
            return  # not a browser: nothing to forge a victim's request with
        own = f"{connection.url.scheme}://{headers.get('host', '')}".lower()
        if origin.lower() not in self.trusted | {own}:
            raise refused


BROWSER_ORIGINS: AppKey[BrowserOrigins] = AppKey("browser_origins")


def same_site_json(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Litestar guard: runs before the body is read."""
    BROWSER_ORIGINS.of(connection).check(connection)
