"""Entry point for ASGI servers (``orgbase serve`` with several workers imports this)."""

from __future__ import annotations

from litestar import Litestar

from orgbase.platform.app import create_app
from orgbase.platform.config import load_settings


def app_from_environment() -> Litestar:
    return create_app(load_settings())
