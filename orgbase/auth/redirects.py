"""Where a link or a sign-in flow may send the browser back to (``redirect_to``).

One check for every route that takes one (sign-up, recovery, magic links, resend, user
update, the mailed link's GET /verify, /authorize, /sso): the deployment itself and the
operator's allow-listed prefixes, nothing else (anything else would turn a link of ours
into an open redirect). A URL that cannot be parsed (``http://[::1``, ``https://[zz]/``,
a port out of range) is refused like any other, never an exception.

The path is checked as a browser will resolve it: ``%2e`` is a dot (WHATWG's URL parser and
RFC 3986's normalisation both read it so), so ``/cb/%2e%2e/admin`` is ``/cb/../admin``,
which a browser turns into ``/admin``. Dot segments, written or encoded, are refused, and
so is an encoded slash or backslash (``%2f``, ``%5c``: servers differ on whether they
separate segments).
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, urlsplit

from orgbase.core.errors import Invalid

MAX_LENGTH = 2000
_ENCODED_DOT = re.compile("%2e", re.IGNORECASE)
_ENCODED_SEPARATOR = re.compile("%(2f|5c)", re.IGNORECASE)


def _parts(url: str) -> SplitResult | None:
    """The URL's parts, or None when Python cannot make sense of them."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port raises on a bad one
    except ValueError:
        return None
    return parts


def _resolved_path(path: str) -> str | None:
    """The path with its encoded dots decoded, or None when a browser or a server could
    resolve it elsewhere (a dot segment, an encoded separator)."""
    if _ENCODED_SEPARATOR.search(path):
        return None
    decoded = _ENCODED_DOT.sub(".", path)
    if any(segment in (".", "..") for segment in decoded.split("/")):
        return None
    return decoded


def _under(path: str, base: str) -> bool:
    """``path`` is ``base`` or below it (by whole segments)."""
    if not base or base == "/":
        return True
    return path == base or path.startswith(base.rstrip("/") + "/")


def redirect_allowed(url: str, public_url: str, allowed: tuple[str, ...]) -> bool:
    if len(url) > MAX_LENGTH or "\\" in url or any(c.isspace() or ord(c) < 32 for c in url):
        return False
    parts = _parts(url)
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    if parts.username is not None or parts.password is not None:
        return False
    path = _resolved_path(parts.path)
    if path is None:
        return False
    for prefix in (public_url, *allowed):
        base = _parts(prefix)
        if base is None:
            continue
        same_origin = (parts.scheme, parts.netloc.lower()) == (base.scheme, base.netloc.lower())
        if same_origin and _under(path or "/", base.path):
            return True
    return False


def check_redirect(
    redirect_to: str | None, public_url: str, allowed: tuple[str, ...]
) -> str | None:
    """The URL when it is allowed; None when none was given; a 400 otherwise."""
    if redirect_to is None or redirect_to == "":
        return None
    if not redirect_allowed(redirect_to, public_url, allowed):
        raise Invalid(
            "redirect_to is not an allowed URL",
            code="redirect_not_allowed",
            hint="the operator lists allowed URLs in ORGBASE_AUTH_REDIRECT_URLS",
        )
    return redirect_to
