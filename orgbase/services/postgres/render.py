"""The render stage of the data API (PostgREST's Response): a statement's result and what
the request asked for into the HTTP answer: its status, its body as PostgreSQL built it
(a JSON array, one object, or CSV) and its headers (Content-Range, Preference-Applied)."""

from __future__ import annotations

from typing import Any

from litestar import Response
from litestar.response.base import ASGIResponse

from orgbase.services.postgres.csv_output import CSV, rows_to_csv
from orgbase.services.postgres.errors import NotAcceptable, RangeNotSatisfiable
from orgbase.services.postgres.functions import Function
from orgbase.services.postgres.request import SINGULAR, Prefer, Shape
from orgbase.services.postgres.result import Result

JSON = "application/json; charset=utf-8"


class NoBody(Response[bytes]):
    """A 201 without a body (``Prefer: return=minimal``, the default) carries no
    Content-Type either, as PostgREST answers: a client that sees a JSON type parses the
    empty body and fails (Litestar would add one)."""

    def __init__(self, status_code: int, headers: dict[str, str]) -> None:
        super().__init__(b"", status_code=status_code, headers=headers)

    def to_asgi_response(self, *args: Any, **kwargs: Any) -> ASGIResponse:
        response = super().to_asgi_response(*args, **kwargs)
        if "content-type" in response.headers:
            del response.headers["content-type"]
        return response


def content_range(result: Result, offset: int) -> str:
    total = "*" if result.total is None else str(result.total)
    if result.rows == 0:
        return f"*/{total}"
    return f"{offset}-{offset + result.rows - 1}/{total}"


def _applied(prefer: Prefer, headers: dict[str, str]) -> dict[str, str]:
    if prefer.applied:
        headers["Preference-Applied"] = ", ".join(prefer.applied)
    return headers


def rows(
    result: Result, status: int, prefer: Prefer, shape: Shape, headers: dict[str, str]
) -> Response[bytes]:
    """Rows in the shape asked for (a write without a representation: no body)."""
    _applied(prefer, headers)
    if shape == "csv":
        csv = rows_to_csv(result.body, escape_formulas=prefer.escape_formulas)
        return Response(csv, status_code=status, media_type=CSV, headers=headers)
    if shape == "object":
        if result.rows != 1:
            raise NotAcceptable(
                "JSON object requested, multiple (or no) rows returned",
                details=f"The result contains {result.rows} rows",
            )
        body = (result.body or "[]")[1:-1]
        return Response(body.encode(), status_code=status, media_type=SINGULAR, headers=headers)
    if result.body is None:
        return NoBody(204 if status != 201 else 201, headers)
    return Response(result.body.encode(), status_code=status, media_type=JSON, headers=headers)


def read(result: Result, offset: int, prefer: Prefer, shape: Shape) -> Response[bytes]:
    """A page of a table: 206 when it is part of a known total."""
    if result.total is not None and offset > result.total:
        # As PostgREST: a known total and an offset past it.
        raise RangeNotSatisfiable(
            "Requested range not satisfiable",
            details=f"An offset of {offset} was requested, but there are only {result.total} rows.",
        )
    headers = {"Content-Range": content_range(result, offset)}
    partial = result.total is not None and (offset > 0 or result.rows < result.total)
    return rows(result, 206 if partial else 200, prefer, shape, headers)


def written(
    result: Result, prefer: Prefer, shape: Shape, *, created: bool = False
) -> Response[bytes]:
    """An insert (``created``: 201) or an update or delete (200 with its rows, else 204)."""
    returning = prefer.returning == "representation"
    status = 201 if created else 200 if returning else 204
    shape = shape if returning else "array"
    return rows(result, status, prefer, shape, {"Content-Range": f"*/{result.rows}"})


def called(
    fn: Function, result: Result, prefer: Prefer, shape: Shape, offset: int
) -> Response[bytes]:
    """A function's answer: rows as a table's, one composite value as an object, a scalar
    as its JSON, void as 204."""
    last = offset + result.rows - 1
    page = {"Content-Range": f"{offset}-{last}/*" if result.rows else "*/*"}
    if fn.columns is not None and (fn.returns_set or shape != "array"):
        # Rows: shaped, paged and rendered (JSON, one object or CSV) as a table's.
        return rows(result, 200, prefer, shape, page)
    headers = _applied(prefer, {})
    if fn.returns_set:
        headers |= page  # a set of scalars: paged too
    if fn.columns is None:
        if fn.returns == "void":
            return Response(b"", status_code=204, headers=headers)
        return Response((result.body or "null").encode(), media_type=JSON, headers=headers)
    # One composite value: an object, as PostgREST answers it.
    body = result.body or "[]"
    single = body[1:-1] if result.rows == 1 else "null"
    return Response(single.encode(), media_type=JSON, headers=headers)
