"""What a GoTrue sign-in and sign-up cost PostgreSQL, counted on the gateway's own platform
connections (every statement the request's task sends, BEGIN and COMMIT included): the
account's row is read once per password sign-in, and a sign-up that answers a session is
one transaction."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar

from asyncpg.connection import LoggedQuery
from litestar.testing import AsyncTestClient

from orgbase.core.postgres import Connection, Database
from orgbase.platform.app import OrgbaseApp
from orgbase.services.postgres.service import DATA_SERVICE
from tests.support.http import PASSWORD, gotrue, unique_email

_COUNTING: ContextVar[bool] = ContextVar("counting", default=False)
"""Set by the test, inherited by the tasks it starts (the request's): background loops run
in tasks started before, which never see it."""
_READS_USERS = re.compile(r"\b(?:FROM|JOIN)\s+orgbase\.users\b")


@asynccontextmanager
async def statements(db: Database) -> AsyncIterator[list[str]]:
    """The statements this task and those it starts send on platform connections while
    inside (a wrapper around the real connections; the background loops are not counted)."""
    seen: list[str] = []
    original = db.system_connection
    _COUNTING.set(True)

    def log(query: LoggedQuery) -> None:
        seen.append(" ".join(query.query.split()))

    @asynccontextmanager
    async def counted() -> AsyncIterator[Connection]:
        async with original() as connection:
            if not _COUNTING.get():
                yield connection
                return
            connection.add_query_logger(log)
            try:
                yield connection
            finally:
                connection.remove_query_logger(log)

    db.system_connection = counted  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        _COUNTING.set(False)
        del db.system_connection


def database_of(app: OrgbaseApp) -> Database:
    """The app's own pools (the data service shares them with every area)."""
    db: Database = app.litestar.state[DATA_SERVICE.name].db
    return db


def user_reads(seen: list[str]) -> list[str]:
    return [s for s in seen if _READS_USERS.search(s)]


def transactions(seen: list[str]) -> int:
    return sum(1 for s in seen if s.startswith("BEGIN"))


async def test_a_password_sign_in_reads_the_account_once(
    app: OrgbaseApp, client: AsyncTestClient[OrgbaseApp]
) -> None:
    email = unique_email("count")
    await gotrue(client, "signup", {"email": email, "password": PASSWORD})
    db = database_of(app)
    async with statements(db) as seen:
        await gotrue(client, "token?grant_type=password", {"email": email, "password": PASSWORD})
    # 4 before: the sign-in's, the claims', the answer's user and GoTrue's user shape.
    assert len(user_reads(seen)) == 1, user_reads(seen)
    assert transactions(seen) == 1


async def test_a_sign_up_with_its_session_is_one_transaction(
    app: OrgbaseApp, client: AsyncTestClient[OrgbaseApp]
) -> None:
    db = database_of(app)
    async with statements(db) as seen:
        answer = await gotrue(
            client, "signup", {"email": unique_email("count"), "password": PASSWORD}
        )
    assert answer["access_token"]
    # 2 before: the account, then its session.
    assert transactions(seen) == 1, seen
    # Only the look for an account of that address (4 before: that, the session's
    # claims, the answer's user, GoTrue's user shape); the new row comes back from its
    # INSERT.
    assert len(user_reads(seen)) == 1, user_reads(seen)
