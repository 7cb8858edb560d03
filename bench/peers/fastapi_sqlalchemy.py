"""Peer: FastAPI + SQLAlchemy async ORM + pydantic for the same request (JWT -> RLS -> 20
rows as JSON). Run by bench/data_bench.py with uvicorn:
``bench.peers.fastapi_sqlalchemy:app``.

Environment: BENCH_DSN (the orgbase_api login), BENCH_JWKS (the public keys file).
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any

import jwt
from fastapi import Depends, FastAPI, Header, HTTPException
from pydantic import BaseModel, ConfigDict
from sqlalchemy import BigInteger, DateTime, String, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "items"
    __table_args__ = {"schema": "peer"}  # noqa: RUF012 - SQLAlchemy's declaration style
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    title: Mapped[str] = mapped_column(String)
    status: Mapped[str | None] = mapped_column(String)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ItemOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    title: str
    status: str | None
    created_at: datetime


engine = create_async_engine(
    os.environ["BENCH_DSN"].replace("postgresql://", "postgresql+asyncpg://"),
    pool_size=8,
    max_overflow=0,
)
Session = async_sessionmaker(engine, expire_on_commit=False)
KEYS: dict[str, jwt.PyJWK] = {}
"""Each key verifies its own algorithm (orgbase signs ES256 by default)."""


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    with open(os.environ["BENCH_JWKS"]) as handle:
        KEYS.update({k["kid"]: jwt.PyJWK(k) for k in json.load(handle)["keys"]})
    yield
    await engine.dispose()


app = FastAPI(lifespan=lifespan)


def claims(authorization: Annotated[str, Header()] = "") -> dict[str, Any]:
    token = authorization.removeprefix("Bearer ")
    try:
        kid = jwt.get_unverified_header(token)["kid"]
        key = KEYS[kid]
        decoded: dict[str, Any] = jwt.decode(
            token, key.key, algorithms=[key.algorithm_name], audience="orgbase"
        )
    except (jwt.InvalidTokenError, KeyError) as exc:
        raise HTTPException(status_code=401) from exc
    return decoded


@app.get("/items", response_model=list[ItemOut])
async def items(user: Annotated[dict[str, Any], Depends(claims)], limit: int = 20) -> list[Item]:
    async with Session() as session, session.begin():
        await session.execute(
            text(
                "SELECT set_config('orgbase.org_id', :org, true),"
                " set_config('orgbase.user_id', :usr, true),"
                " set_config('orgbase.role', 'viewer', true)"
            ),
            {"org": user["org"], "usr": user["sub"]},
        )
        result = await session.scalars(select(Item).order_by(Item.id).limit(limit))
        return list(result)


_: AsyncSession | None = None
