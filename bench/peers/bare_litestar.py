"""Peer: a bare Litestar + asyncpg + msgspec endpoint for the same request (JWT -> RLS ->
20 rows as JSON), with no sessions, no membership check, no logging; the org set as a plain
setting (``peer.items``, see bench/data_bench.py). Run by
bench/data_bench.py with uvicorn: ``bench.peers.bare_litestar:app``.

Environment: BENCH_DSN (the orgbase_api login), BENCH_JWKS (the public keys file).
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import jwt
import msgspec
from litestar import Litestar, Request, Response, get
from litestar.exceptions import NotAuthorizedException

_QUERY = """
WITH ctx AS MATERIALIZED (SELECT set_config('orgbase.org_id', $1, true) AS org,
    set_config('orgbase.user_id', $2, true) AS usr, set_config('orgbase.role', 'viewer', true) AS r)
SELECT q.* FROM ctx CROSS JOIN LATERAL (
    SELECT id, title, status, created_at FROM peer.items WHERE ctx.org IS NOT NULL
    ORDER BY id LIMIT $3) q
"""


class Item(msgspec.Struct):
    id: int
    title: str
    status: str | None
    created_at: Any


def _keys() -> dict[str, jwt.PyJWK]:
    with open(os.environ["BENCH_JWKS"]) as handle:
        document = json.load(handle)
    return {k["kid"]: jwt.PyJWK(k) for k in document["keys"]}


KEYS: dict[str, jwt.PyJWK] = {}
"""Each key verifies its own algorithm (orgbase signs ES256 by default)."""
POOL: list[asyncpg.Pool] = []


@asynccontextmanager
async def lifespan(_: Litestar) -> AsyncIterator[None]:
    KEYS.update(_keys())
    POOL.append(await asyncpg.create_pool(os.environ["BENCH_DSN"], min_size=8, max_size=8))
    yield
    await POOL[0].close()


@get("/items")
async def items(request: Request[Any, Any, Any], limit: int = 20) -> Response[bytes]:
    header = request.headers.get("authorization", "")
    token = header.removeprefix("Bearer ")
    try:
        kid = jwt.get_unverified_header(token)["kid"]
        key = KEYS[kid]
        claims = jwt.decode(token, key.key, algorithms=[key.algorithm_name], audience="orgbase")
    except (jwt.InvalidTokenError, KeyError) as exc:
        raise NotAuthorizedException() from exc
    rows = await POOL[0].fetch(_QUERY, claims["org"], claims["sub"], limit)
    body = msgspec.json.encode(
        [Item(r["id"], r["title"], r["status"], r["created_at"]) for r in rows]
    )
    return Response(body, media_type="application/json")


app = Litestar([items], lifespan=[lifespan])
