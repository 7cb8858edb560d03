"""Where a link or a sign-in flow may send the browser back to (``redirect_to``).

One check for every route that takes one (sign-up, recovery, magic links, resend, user
update, the mailed link's GET /verify, /authorize, /sso): the deployment itself and the
operator's allow-listed prefixes, nothing else (anything else would turn a link of ours
into an open redirect). A URL that cannot be parsed (``http://[::1``, ``https://[zz]/``,
a port out of range) is refused like any other, never an exception.
"""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit

from orgbase.core.errors import Invalid

MAX_LENGTH = 2000


def _parts(url: str) -> SplitResult | None:
    """The URL's parts, or None when Python cannot make sense of them."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port raises on a bad one
    except ValueError:
        return None
    return parts


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
    if ".." in parts.path.split("/"):
        return False
    for prefix in (public_url, *allowed):
        base = _parts(prefix)
        if base is None:
            continue
        same_origin = (parts.scheme, parts.netloc.lower()) == (base.scheme, base.netloc.lower())
        if same_origin and _under(parts.path or "/", base.path):
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
