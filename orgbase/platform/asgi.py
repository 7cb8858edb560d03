"""Entry point for ASGI servers (``orgbase serve`` with several workers imports this)."""

from __future__ import annotations

from orgbase.platform.app import OrgbaseApp, create_app
from orgbase.platform.config import load_settings


def app_from_environment() -> OrgbaseApp:
    return create_app(load_settings())
