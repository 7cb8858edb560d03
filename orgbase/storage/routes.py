"""Every route of ``/storage/v1``."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from orgbase.storage.bucket_routes import bucket_handlers
from orgbase.storage.object_routes import object_handlers
from orgbase.storage.sign_routes import sign_handlers
from orgbase.storage.tus_routes import tus_handlers

storage_handlers: list[ControllerRouterHandler] = [
    *bucket_handlers,
    *sign_handlers,
    *tus_handlers,
    *object_handlers,
]
