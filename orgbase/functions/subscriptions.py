"""Which functions run on which events: the catalog's ``triggers``, written to
``orgbase.function_subscriptions`` (which the outbox trigger reads) when a gateway that runs
events starts or reloads. The subscriptions are the deployment's: every replica serves the
same folder, and the last to start writes the same rows."""

from __future__ import annotations

from orgbase.core.postgres import Database
from orgbase.functions.spec import FunctionSpec

_CLEAR = "DELETE FROM orgbase.function_subscriptions"
_ADD = """
INSERT INTO orgbase.function_subscriptions (function, pattern, role)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
"""


def subscriptions_of(specs: list[FunctionSpec]) -> list[tuple[str, str, str]]:
    return [
        (spec.name, pattern, spec.config.trigger_role)
        for spec in specs
        if spec.usable
        for pattern in dict.fromkeys(spec.config.triggers)
    ]


async def write_subscriptions(db: Database, specs: list[FunctionSpec]) -> int:
    rows = subscriptions_of(specs)
    async with db.system_connection() as connection, connection.transaction():
        await connection.execute(_CLEAR)
        if rows:
            names, patterns, roles = (list(column) for column in zip(*rows, strict=True))
            await connection.execute(_ADD, names, patterns, roles)
    return len(rows)
