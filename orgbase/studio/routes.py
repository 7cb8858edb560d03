"""Serves the studio: static HTML, CSS and JS modules shipped inside the package.

No build step: the files in ``static/`` are what the browser runs. The studio talks to the
public API only (see orgbase/auth/browser.py for its cookie sign-in).
"""

from __future__ import annotations

from pathlib import Path

from litestar import Response
from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler

STATIC = Path(__file__).parent / "static"

# Scripts, styles and calls only from this origin; nothing inline, no frames.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


async def _studio_headers(response: Response[object]) -> Response[object]:
    response.headers["content-security-policy"] = CONTENT_SECURITY_POLICY
    # Small files that change with each release: revalidate rather than cache blindly.
    response.headers["cache-control"] = "no-cache"
    return response


studio_handlers: list[ControllerRouterHandler] = [
    create_static_files_router(
        path="/studio",
        directories=[STATIC],
        html_mode=True,
        name="studio",
        after_request=_studio_headers,
        include_in_schema=False,
    )
]
