"""The orgbase Python SDK (httpx): accounts with automatic token refresh, org switching,
the data API as a query builder, and errors as typed exceptions.

    async with AsyncOrgbase("http://127.0.0.1:8000") as ob:
        await ob.auth.sign_in("ada@example.com", "a long passphrase", org_id=org)
        items = await ob.db.table("items").select("id,title").eq("status", "open") \\
            .order("id").limit(20).execute()

``Orgbase`` is the same API, synchronous.
"""

from orgbase.client.async_client import AsyncOrgbase
from orgbase.client.errors import (
    ApiError,
    AuthError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    RateLimitError,
    ServerError,
    ValidationError,
)
from orgbase.client.query import Result
from orgbase.client.sync_client import Orgbase

__all__ = [
    "ApiError",
    "AsyncOrgbase",
    "AuthError",
    "ConflictError",
    "ForbiddenError",
    "NotFoundError",
    "Orgbase",
    "RateLimitError",
    "Result",
    "ServerError",
    "ValidationError",
]
