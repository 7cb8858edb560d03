"""What a ``phx_join`` needs checked before the channel is joined: who joins (the socket's
identity, settled by its first join, or a refreshed token of the same caller), the topic,
and each postgres_changes binding (its table and filter, by the data API's area)."""

from __future__ import annotations

from orgbase.core.context import Principal
from orgbase.core.errors import Forbidden, Invalid, Unauthorized
from orgbase.core.row_changes import ChangeReader
from orgbase.services.redis.phoenix.config import Binding, JoinPayload, binding
from orgbase.services.redis.realtime import channel_name


def same_caller(a: Principal, b: Principal) -> bool:
    """A socket stays with one caller in one org: a refreshed token of the same user (or the
    same API key) is taken, another user's or another org's is not."""
    return (
        a.kind == b.kind
        and a.user_id == b.user_id
        and a.key_id == b.key_id
        and a.org_id == b.org_id
        and a.impersonation_id == b.impersonation_id
    )


def identity_changed() -> Forbidden:
    return Forbidden(
        "this socket belongs to another user or org: connect a new socket to switch",
        code="realtime_identity_changed",
    )


def check_topic(name: str, payload: JoinPayload) -> None:
    channel_name(name)
    if payload.config.private:
        raise Invalid(
            "private channels (authorised by realtime.messages policies) are not served:"
            " every channel is the org's, open to its members",
            code="private_channels_unsupported",
        )


async def bindings_of(payload: JoinPayload, reader: ChangeReader) -> list[Binding]:
    granted: list[Binding] = []
    for request in payload.config.postgres_changes:
        found = binding(request)
        if found.table is not None and await reader.shape(found.table) is None:
            raise Invalid(
                f"no table {found.table!r} in schema {found.schema}",
                code="invalid_join",
                hint="postgres_changes serve the data API's tables (those of /rest/v1)",
            )
        if found.filter is not None:
            if found.table is None:
                raise Invalid("a filter needs a table", code="invalid_filter")
            await reader.check_filter(found.table, found.filter)
        granted.append(found)
    return granted


def unauthenticated() -> Unauthorized:
    return Unauthorized(
        "join with an access_token (a signed-in user's) or connect with an org API key",
        code="auth_required",
        bearer="missing",
    )
