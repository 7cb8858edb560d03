"""An email domain as a caller names it (an org's SSO claim, a sign-in by domain): one
rule for every route, so nothing that is not a domain name reaches the database."""

from __future__ import annotations

import re

from orgbase.core.errors import Invalid

_DOMAIN = re.compile(r"^(?=.{3,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def domain_name(raw: str) -> str:
    """``raw`` as stored (lower case, no trailing dot), or 400 ``invalid_domain``."""
    domain = raw.strip().lower().rstrip(".")
    if not _DOMAIN.fullmatch(domain):
        raise Invalid("that is not a domain name", code="invalid_domain")
    return domain
