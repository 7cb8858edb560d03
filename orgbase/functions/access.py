"""Who may call a function: its config's ``access``, ``min_role``, ``api_keys`` and
``aal`` against the caller the request-auth component found."""

from __future__ import annotations

from orgbase.core import rbac
from orgbase.core.context import OrgContext
from orgbase.core.errors import Forbidden, Unauthorized
from orgbase.functions.spec import FunctionSpec


def check_caller(spec: FunctionSpec, ctx: OrgContext | None, publishable_ok: bool) -> None:
    """Raise the 401 or 403 the caller gets; return when the function may run for them."""
    config = spec.config
    if ctx is None:
        if config.access == "members":
            raise Unauthorized(
                f"the function {spec.name} needs a signed-in member's token or an API key"
                " (the publishable key alone is not enough)",
                code="auth_required",
                bearer="missing",
            )
        if not publishable_ok:
            raise Unauthorized(
                "send the publishable key (apikey header) to call a public function",
                code="apikey_invalid",
            )
        return
    if ctx.key_id is not None and not config.api_keys:
        raise Forbidden(
            f"the function {spec.name} does not take API keys: call it as a signed-in member",
            code="function_api_key_refused",
        )
    rbac.require(ctx, config.min_role, f"calling the function {spec.name}")
    if config.aal == "aal2" and ctx.key_id is None and ctx.aal != "aal2":
        raise Forbidden(
            f"the function {spec.name} needs a session with a verified second factor (aal2)",
            code="insufficient_aal",
        )
