"""What every ``/storage/v1`` route file declares its handlers with: the dependencies, the
OpenAPI tag, and the two kinds of route that stand in several files (Supabase Storage
answers its POSTs with 200, and serves a download to GET and HEAD alike)."""

from __future__ import annotations

from typing import Any

from litestar import Request, post, route
from litestar.di import NamedDependency
from litestar.enums import HttpMethod
from litestar.handlers import HTTPRouteHandler

from orgbase.core.context import OrgContext
from orgbase.storage.area import StorageArea

Storage = NamedDependency[StorageArea]
Ctx = NamedDependency[OrgContext]
Req = Request[Any, Any, Any]
TAGS = ["storage"]
READ = [HttpMethod.GET, HttpMethod.HEAD]


def posting(path: str, summary: str, **options: Any) -> HTTPRouteHandler:
    """A POST route answered with 200 (not Litestar's 201), as Supabase's clients expect."""
    return post(path, tags=TAGS, summary=summary, status_code=200, **options)


def reading(path: str | list[str], summary: str) -> HTTPRouteHandler:
    """A route that serves an object's bytes (HEAD: only its headers)."""
    return route(path, http_method=READ, tags=TAGS, summary=summary)
