"""How routes reach the gateway's app-wide objects.

Handlers ask for them by name, through Litestar's dependency injection (the names below;
the request-scoped values come from ``dependencies.py``). The data API's hot path skips
injection and reads the app's state through typed keys (``core.app_state.AppKey``),
declared next to the types they name; ``app_state`` fills exactly those.
"""

from __future__ import annotations

from typing import Any

from litestar.datastructures import State
from litestar.di import Provide

from orgbase.auth.browser_guard import BROWSER_ORIGINS
from orgbase.platform.dependencies import request_dependencies
from orgbase.platform.gateway import Gateway
from orgbase.platform.request_auth import REQUEST_AUTH
from orgbase.services.postgres.service import DATA_SERVICE


def route_dependencies(gateway: Gateway) -> dict[str, Provide]:
    auth, documents, redis = gateway.auth, gateway.documents, gateway.redis

    def breaker_states() -> dict[str, str]:
        """Circuit breakers owned by the areas (Redis's is in the shared resources)."""
        return {"mongo": documents.store.breaker.state}

    dispatcher = gateway.webhooks.dispatcher

    def webhook_queue() -> dict[str, Any]:
        queue = dispatcher.queue
        return {
            "delivering": dispatcher.settings.enabled,
            "due": queue.due,
            "oldest_due_seconds": round(queue.oldest_due_seconds, 3),
        }

    app_wide: dict[str, Any] = {
        "resources": gateway.resources,
        "accounts": auth.accounts,
        "signups": auth.signups,
        "grants": auth.grants,
        "user_sessions": auth.user_sessions,
        "key_admin": auth.key_admin,
        "tokens": auth.tokens,
        "gotrue": auth.gotrue,
        "admin_users": auth.admin_users,
        "mfa": auth.factors,
        "oidc": auth.oidc,
        "identities": gateway.request_auth,  # a LiveIdentitySource for sockets and streams
        "tenancy": gateway.tenancy,
        "docs": documents.service,
        "indexes": documents.indexes,
        "kv": redis.kv,
        "hub": gateway.hub,
        "phoenix": gateway.phoenix,
        "stats": redis.stats,
        "dependency_errors": redis.stats.dependency_errors_24h,
        "breaker_states": breaker_states,
        "webhook_queue": webhook_queue,
        "dashboard": redis.dashboard,
        "slo": gateway.slo,
        "webhooks": gateway.webhooks.service,
        "limits": gateway.limits,
        "storage": gateway.storage,
        "functions": gateway.functions.service if gateway.functions is not None else None,
        "functions_area": gateway.functions,
        "callers": gateway.request_auth,  # a core.callers.CallerSource
        "metrics": gateway.metrics,
        "observability": gateway.settings.observability,
        "gateway_settings": gateway.settings,
    }
    provided = {
        name: Provide(_constant(value), sync_to_thread=False) for name, value in app_wide.items()
    }
    return {**provided, **request_dependencies()}


def app_state(gateway: Gateway) -> State:
    return State(
        {
            REQUEST_AUTH.name: gateway.request_auth,
            DATA_SERVICE.name: gateway.data.service,
            BROWSER_ORIGINS.name: gateway.auth.browser_origins,
        }
    )


def _constant(value: Any) -> Any:
    def provide() -> Any:
        return value

    return provide
