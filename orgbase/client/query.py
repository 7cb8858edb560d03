"""The data API's query builder, shared by the async and the sync client.

It only assembles a request (method, path, query parameters, headers, body) in
PostgREST's grammar; ``execute()`` hands it to the client that made the builder.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, Literal, Protocol, Self, TypeVar

import httpx

from orgbase.client.core import Call, Request

SINGULAR = "application/vnd.pgrst.object+json"
# What executing a query gives: a Result (sync client) or an awaitable of one (async).
Executed_co = TypeVar("Executed_co", covariant=True)


def _literal(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _list_item(value: Any) -> str:
    text = _literal(value)
    if any(c in text for c in ',()"\\ ') or text == "":
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


@dataclass(frozen=True)
class Result:
    data: Any
    """A list of rows (or one object after ``single()``; None for minimal writes)."""
    count: int | None = None
    status: int = 200


def result_from(request: Request, response: httpx.Response) -> Result:
    data = response.json() if response.content else None
    count = None
    content_range = response.headers.get("content-range", "")
    total = content_range.rpartition("/")[2]
    if total.isdigit():
        count = int(total)
    return Result(data, count, response.status_code)


Query = TypeVar("Query", bound="QueryBuilder[Any]")


def _comparison(operator: str) -> Callable[[Query, str, Any], Query]:
    """A filter method for one comparison operator: ``column=<operator>.<value>``."""

    def compare(query: Query, column: str, value: Any) -> Query:
        return query.filter(column, operator, value)

    compare.__name__ = compare.__qualname__ = operator
    compare.__doc__ = f"PostgREST's ``{operator}``: ``column={operator}.value``."
    return compare


class Caller(Protocol[Executed_co]):
    """A client, as a query sees it."""

    def call(self, call: Call[Result], /) -> Executed_co: ...


class Database(Generic[Executed_co]):
    """``ob.db``: the data API, a table at a time."""

    def __init__(self, client: Caller[Executed_co]) -> None:
        self._client = client

    def table(self, name: str) -> QueryBuilder[Executed_co]:
        return QueryBuilder(self._client, name)


class QueryBuilder(Generic[Executed_co]):
    """``table("items").select("id,title").eq("status", "open").order("id").limit(20)``"""

    def __init__(self, client: Caller[Executed_co], table: str) -> None:
        self._client = client
        self._request = Request("GET", f"/v1/db/{table}")
        self._prefer: dict[str, str] = {}

    # -- verbs --------------------------------------------------------------------------

    def select(
        self, columns: str = "*", *, count: Literal["exact", "planned", "estimated"] | None = None
    ) -> Self:
        self._set("select", columns)
        if count:
            self._prefer["count"] = count
        return self

    def insert(
        self, rows: dict[str, Any] | Sequence[dict[str, Any]], *, returning: bool = True
    ) -> Self:
        self._request.method = "POST"
        self._request.json = rows
        self._prefer["return"] = "representation" if returning else "minimal"
        return self

    def upsert(
        self,
        rows: dict[str, Any] | Sequence[dict[str, Any]],
        *,
        on_conflict: str | None = None,
        ignore_duplicates: bool = False,
        returning: bool = True,
    ) -> Self:
        self.insert(rows, returning=returning)
        self._prefer["resolution"] = (
            "ignore-duplicates" if ignore_duplicates else "merge-duplicates"
        )
        if on_conflict:
            self._set("on_conflict", on_conflict)
        return self

    def update(self, values: dict[str, Any], *, returning: bool = True) -> Self:
        self._request.method = "PATCH"
        self._request.json = values
        self._prefer["return"] = "representation" if returning else "minimal"
        return self

    def delete(self, *, returning: bool = True) -> Self:
        self._request.method = "DELETE"
        self._prefer["return"] = "representation" if returning else "minimal"
        return self

    # -- filters ------------------------------------------------------------------------

    def filter(self, column: str, operator: str, value: Any) -> Self:
        self._request.params.append((column, f"{operator}.{_literal(value)}"))
        return self

    # PostgREST's comparisons: ``eq("points", 3)`` keeps the rows where points = 3.
    eq = _comparison("eq")
    neq = _comparison("neq")
    gt = _comparison("gt")
    gte = _comparison("gte")
    lt = _comparison("lt")
    lte = _comparison("lte")

    def like(self, column: str, pattern: str) -> Self:
        return self.filter(column, "like", pattern)

    def ilike(self, column: str, pattern: str) -> Self:
        return self.filter(column, "ilike", pattern)

    def is_(self, column: str, value: bool | None) -> Self:
        return self.filter(column, "is", value)

    def in_(self, column: str, values: Iterable[Any]) -> Self:
        self._request.params.append((column, f"in.({','.join(_list_item(v) for v in values)})"))
        return self

    def contains(self, column: str, values: Sequence[Any]) -> Self:
        return self.filter(column, "cs", "{" + ",".join(_list_item(v) for v in values) + "}")

    def not_(self, column: str, operator: str, value: Any) -> Self:
        return self.filter(column, f"not.{operator}", value)

    def or_(self, conditions: str) -> Self:
        """PostgREST's syntax: ``"points.gt.4,title.eq.x"``."""
        self._request.params.append(("or", f"({conditions})"))
        return self

    # -- shape --------------------------------------------------------------------------

    def order(
        self, column: str, *, desc: bool = False, nulls: Literal["first", "last"] | None = None
    ) -> Self:
        term = f"{column}.{'desc' if desc else 'asc'}" + (f".nulls{nulls}" if nulls else "")
        existing = dict(self._request.params).get("order")
        self._set("order", f"{existing},{term}" if existing else term)
        return self

    def limit(self, count: int) -> Self:
        self._set("limit", str(count))
        return self

    def offset(self, count: int) -> Self:
        self._set("offset", str(count))
        return self

    def single(self) -> Self:
        """Expect exactly one row and get it as an object (406 otherwise)."""
        self._request.singular = True
        return self

    def build(self) -> Request:
        request = self._request
        if self._prefer:
            request.headers["Prefer"] = ",".join(f"{k}={v}" for k, v in self._prefer.items())
        if request.singular:
            request.headers["Accept"] = SINGULAR
        return request

    def execute(self) -> Executed_co:
        request = self.build()
        return self._client.call(Call(request, partial(result_from, request)))

    def _set(self, key: str, value: str) -> None:
        self._request.params = [(k, v) for k, v in self._request.params if k != key]
        self._request.params.append((key, value))


AsyncDatabase = Database[Awaitable[Result]]
SyncDatabase = Database[Result]
