"""Which line of a migration file failed.

PostgreSQL reports a character position for parse errors; a runtime error (a constraint,
a failing function) has none. Then the file is replayed statement by statement inside a
transaction that is always rolled back, to find the first statement that fails.
"""

from __future__ import annotations

import re

import asyncpg

_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


class _Replayed(Exception):
    """Ends the replay's transaction (it must never commit)."""


def split_statements(sql: str) -> list[tuple[int, str]]:  # noqa: PLR0912 - one per token kind
    """Top-level statements with the line each starts on (quotes, dollar quotes and
    comments are skipped over, so a ';' inside them does not split)."""
    statements: list[tuple[int, str]] = []
    start = 0
    i = 0
    n = len(sql)
    while i < n:
        ch = sql[i]
        if ch == "-" and sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif ch == "/" and sql.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if sql.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif sql.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif ch in "'\"":
            backslashes = ch == "'" and i > 0 and sql[i - 1] in "eE"
            i += 1
            while i < n:
                if backslashes and sql[i] == "\\":
                    i += 2
                elif sql[i] == ch:
                    if i + 1 < n and sql[i + 1] == ch:
                        i += 2
                    else:
                        break
                else:
                    i += 1
            i += 1
        elif ch == "$" and (match := _DOLLAR_TAG.match(sql, i)):
            end = sql.find(match.group(0), match.end())
            i = n if end < 0 else end + len(match.group(0))
        elif ch == ";":
            statements.append((start, sql[start : i + 1]))
            start = i = i + 1
        else:
            i += 1
    if sql[start:].strip():
        statements.append((start, sql[start:]))
    result = []
    for offset, text in statements:
        if not text.strip(" \t\r\n;"):
            continue
        leading = len(text) - len(text.lstrip())
        result.append((sql.count("\n", 0, offset + leading) + 1, text))
    return result


def line_of_position(sql: str, position: int) -> int:
    """The line of a 1-based character position."""
    return sql.count("\n", 0, max(position - 1, 0)) + 1


async def error_line(
    connection: asyncpg.Connection, sql: str, error: asyncpg.PostgresError
) -> int | None:
    position = getattr(error, "position", None)
    if position and str(position).isdigit():
        return line_of_position(sql, int(position))
    failing: int | None = None
    try:
        async with connection.transaction():
            for line, statement in split_statements(sql):
                try:
                    await connection.execute(statement)
                except asyncpg.PostgresError:
                    failing = line
                    break
            raise _Replayed
    except _Replayed:
        pass
    except asyncpg.PostgresError:
        return failing
    return failing
