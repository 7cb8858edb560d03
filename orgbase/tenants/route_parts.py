"""What the tenancy area's route files declare their handlers with: the dependencies the
handlers take, and the kind of POST that stands in several of them."""

from __future__ import annotations

from typing import Any

from litestar import post
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler
from litestar.status_codes import HTTP_200_OK

from orgbase.core.context import OrgContext, Principal, RequestMeta
from orgbase.tenants.area import TenancyArea

Tenancy = NamedDependency[TenancyArea]
Ctx = NamedDependency[OrgContext]
Meta = NamedDependency[RequestMeta]
Caller = NamedDependency[Principal]


def acting(path: str, summary: str, **options: Any) -> HTTPRouteHandler:
    """A POST that acts on what exists (accept, verify, roll back) and makes nothing new:
    answered with 200, not Litestar's 201 for a creation."""
    return post(path, summary=summary, status_code=HTTP_200_OK, **options)
