"""`/v1/docs/{collection}`: org-scoped documents. Bodies and answers are MongoDB Extended
JSON (relaxed): ``{"$oid": "..."}`` for ObjectIds, ``{"$date": "..."}`` for dates."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from bson import json_util
from bson.errors import BSONError
from bson.json_util import RELAXED_JSON_OPTIONS
from litestar import Request, Response, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, QueryParameter
from litestar.status_codes import HTTP_200_OK
from litestar.types import ControllerRouterHandler

from orgbase.core.context import READS_ONLY, OrgContext
from orgbase.core.errors import Invalid
from orgbase.services.mongo import schemas
from orgbase.services.mongo.indexes import IndexService
from orgbase.services.mongo.schemas import (
    CollectionInfo,
    Counted,
    Deleted,
    Document,
    IndexInfo,
    IndexName,
    Updated,
    answer,
)
from orgbase.services.mongo.service import DocumentService

Req = Request[Any, Any, Any]
Reply = Response[bytes]
Docs = NamedDependency[DocumentService]
Indexes = NamedDependency[IndexService]
Ctx = NamedDependency[OrgContext]
Collection = FromPath[str]
Json = Annotated[str | None, QueryParameter(max_length=20000)]
BASE = "/v1/docs/{collection:str}"
# DocumentService.update_one or .replace: (service, ctx, collection, _id, body).
WriteById = Callable[[DocumentService, OrgContext, str, str, Any], Awaitable[dict[str, Any]]]


def _decode(raw: bytes | str | None, what: str = "body") -> Any:
    if raw is None or (isinstance(raw, bytes | str) and not raw.strip()):
        return None
    try:
        return json_util.loads(raw)
    except (ValueError, TypeError, ArithmeticError, BSONError, RecursionError) as exc:
        # Not JSON, or Extended JSON with an impossible value ({"$oid": "zz"}, a $date
        # out of range, a bad $numberDecimal...).
        raise Invalid(
            f"the {what} is not valid (extended) JSON",
            code="malformed_body",
            details=str(exc)[:200],
        ) from None


async def _body(request: Request[Any, Any, Any]) -> Any:
    return _decode(await request.body())


async def _optional_fields(request: Request[Any, Any, Any], schema: dict[str, Any]) -> Any:
    """An optional body: none at all means every field left out; JSON null is refused."""
    raw = await request.body()
    return _fields(_decode(raw), schema) if raw.strip() else {}


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid(f"{what} must be a JSON object", code="invalid_body")
    return value


def _fields(value: Any, schema: dict[str, Any]) -> dict[str, Any]:
    """The body as an object with only the fields its schema names (the document's)."""
    body = _object(value, "the body")
    unknown = set(body) - set(schema["properties"])
    if unknown:
        raise Invalid(f"unknown fields: {sorted(unknown)[:10]}", code="invalid_body")
    missing = [name for name in schema["required"] if name not in body]
    if missing:
        raise Invalid(f"missing fields: {missing}", code="invalid_body")
    return body


def _json(value: Any, status: int = HTTP_200_OK) -> Response[bytes]:
    body = json_util.dumps(value, json_options=RELAXED_JSON_OPTIONS).encode()
    return Response(body, status_code=status, media_type="application/json")


def _int(value: Any, name: str, default: int | None, code: str) -> int | None:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(f"{name} must be an integer", code=code)
    return value


def _action(
    verb: str,
    summary: str,
    answers: ResponseSpec,
    body: Any,
    *,
    optional: bool = False,
    reads: bool = False,
) -> post:
    """A POST operation on a collection, ``{BASE}/{verb}``, that answers 200 with JSON
    (``reads``: it changes nothing, an impersonation may call it)."""
    opt: dict[str, Any] = {"request_body": body, READS_ONLY: reads}
    if optional:
        opt["request_body_optional"] = True
    return post(
        f"{BASE}/{verb}",
        tags=["documents"],
        status_code=HTTP_200_OK,
        summary=summary,
        responses={200: answers},
        opt=opt,
    )


# What the POST operations on a collection answer, and the bodies they take.
DOCUMENTS = answer(list[Document], "The documents")
COUNTED = answer(Counted, "How many match")
OUTPUT = answer(list[Document], "The pipeline's output")
UPDATED = answer(Updated, "What matched and changed")
DELETED = answer(Deleted, "How many were deleted")
QUERY, FILTER = schemas.QUERY_BODY, schemas.FILTER_BODY
PIPELINE, UPDATE = schemas.PIPELINE_BODY, schemas.UPDATE_BODY


@get("/v1/docs", tags=["documents"], summary="The org's collections with their document counts")
async def list_collections(docs: Docs, active_ctx: Ctx) -> list[CollectionInfo]:
    return [CollectionInfo(c["name"], c["count"]) for c in await docs.collections(active_ctx)]


@post(
    BASE,
    tags=["documents"],
    summary="Insert a document or a list; returns them with _id",
    responses={201: answer(Document | list[Document], "The stored document(s)")},
    opt={"request_body": schemas.INSERT_BODY},
)
async def insert(request: Req, collection: Collection, docs: Docs, active_ctx: Ctx) -> Reply:
    payload = await _body(request)
    many = isinstance(payload, list)
    stored = await docs.insert(active_ctx, collection, payload if many else [payload])
    return _json(stored if many else stored[0], 201)


@get(
    BASE,
    tags=["documents"],
    summary="List documents: ?filter=<json>&sort=<json>&projection=<json>&skip=&limit=",
    responses={200: answer(list[Document], "The documents")},
)
async def list_documents(  # noqa: PLR0917 - one parameter per query option
    collection: Collection,
    docs: Docs,
    active_ctx: Ctx,
    filter: Json = None,
    sort: Json = None,
    projection: Json = None,
    skip: Annotated[int, QueryParameter(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int | None, QueryParameter(ge=0, le=1_000_000)] = None,
) -> Response[bytes]:
    found = await docs.find(
        active_ctx,
        collection,
        filter_=_decode(filter, "filter"),
        projection=_decode(projection, "projection"),
        sort=_decode(sort, "sort"),
        skip=skip,
        limit=limit,
    )
    return _json(found)


@_action(
    "query",
    "Query: {filter, projection, sort, skip, limit}",
    DOCUMENTS,
    QUERY,
    optional=True,
    reads=True,
)
async def query(request: Req, collection: Collection, docs: Docs, active_ctx: Ctx) -> Reply:
    body = await _optional_fields(request, schemas.QUERY_BODY)
    found = await docs.find(
        active_ctx,
        collection,
        filter_=body.get("filter"),
        projection=body.get("projection"),
        sort=body.get("sort"),
        skip=_int(body.get("skip"), "skip", 0, "invalid_skip") or 0,
        limit=_int(body.get("limit"), "limit", None, "invalid_limit"),
    )
    return _json(found)


@_action("count", "Count: {filter}", COUNTED, FILTER, optional=True, reads=True)
async def count(request: Req, collection: Collection, docs: Docs, active_ctx: Ctx) -> Reply:
    body = await _optional_fields(request, schemas.FILTER_BODY)
    return _json({"count": await docs.count(active_ctx, collection, body.get("filter"))})


@_action(
    "aggregate", "Aggregate: {pipeline} (org-scoped; no code stages)", OUTPUT, PIPELINE, reads=True
)
async def aggregate(request: Req, collection: Collection, docs: Docs, active_ctx: Ctx) -> Reply:
    body = _fields(await _body(request), schemas.PIPELINE_BODY)
    return _json(await docs.aggregate(active_ctx, collection, body["pipeline"]))


@_action("update", "Update by filter: {filter, update, upsert?}", UPDATED, UPDATE)
async def update_many(request: Req, collection: Collection, docs: Docs, active_ctx: Ctx) -> Reply:
    body = _fields(await _body(request), schemas.UPDATE_BODY)
    upsert = body.get("upsert", False)
    if not isinstance(upsert, bool):
        raise Invalid("upsert is true or false", code="invalid_body")
    result = await docs.update_many(
        active_ctx, collection, body.get("filter"), body.get("update"), upsert=upsert
    )
    return _json(result)


@_action("delete", "Delete by filter: {filter}", DELETED, FILTER)
async def delete_many(request: Req, collection: Collection, docs: Docs, active_ctx: Ctx) -> Reply:
    body = _fields(await _body(request), schemas.FILTER_BODY)
    return _json({"deleted": await docs.delete_many(active_ctx, collection, body.get("filter"))})


@get(
    f"{BASE}/indexes",
    tags=["documents"],
    summary="The collection's indexes",
    responses={200: answer(list[IndexInfo], "The indexes (the org field left out)")},
)
async def list_indexes(
    collection: Collection, indexes: Indexes, active_ctx: Ctx
) -> Response[bytes]:
    return _json(await indexes.list_indexes(active_ctx, collection))


@post(
    f"{BASE}/indexes",
    tags=["documents"],
    summary="Create an index (admins): {keys, unique?, name?}",
    responses={201: answer(IndexName, "The index's name")},
    opt={"request_body": schemas.INDEX_BODY},
)
async def create_index(
    request: Request[Any, Any, Any], collection: Collection, indexes: Indexes, active_ctx: Ctx
) -> Response[bytes]:
    body = _fields(await _body(request), schemas.INDEX_BODY)
    unique = body.get("unique", False)
    name = body.get("name")
    if not isinstance(unique, bool) or not (name is None or isinstance(name, str)):
        raise Invalid("unique is a boolean, name a string", code="invalid_index")
    created = await indexes.create_index(
        active_ctx, collection, body.get("keys"), unique=unique, name=name
    )
    return _json({"name": created}, 201)


@delete(f"{BASE}/indexes/{{name:str}}", tags=["documents"], summary="Drop an index (admins)")
async def drop_index(
    collection: Collection, name: FromPath[str], indexes: Indexes, active_ctx: Ctx
) -> None:
    await indexes.drop_index(active_ctx, collection, name)


@get(
    f"{BASE}/{{document_id:str}}",
    tags=["documents"],
    summary="One document by _id",
    responses={200: answer(Document, "The document")},
)
async def read(
    collection: Collection, document_id: FromPath[str], docs: Docs, active_ctx: Ctx
) -> Response[bytes]:
    return _json(await docs.get(active_ctx, collection, document_id))


def _write_by_id(write: WriteById) -> Callable[..., Awaitable[Response[bytes]]]:
    """A handler that writes one document by ``_id`` with the request body (an update or
    a replacement) and answers the document as it now is."""

    async def handler(
        request: Request[Any, Any, Any],
        collection: Collection,
        document_id: FromPath[str],
        docs: Docs,
        active_ctx: Ctx,
    ) -> Response[bytes]:
        return _json(await write(docs, active_ctx, collection, document_id, await _body(request)))

    # The OpenAPI operation id is made from the name: one per route, as before the fold.
    handler.__name__ = handler.__qualname__ = write.__name__
    return handler


def _by_id(
    route: type[patch | put], write: WriteById, summary: str, answers: str, body: Any
) -> HTTPRouteHandler:
    """The route that writes one document by ``_id`` (PATCH: operators, PUT: a replacement)."""
    return route(
        f"{BASE}/{{document_id:str}}",
        tags=["documents"],
        summary=summary,
        responses={200: answer(Document, answers)},
        opt={"request_body": body},
    )(_write_by_id(write))


UPDATE_ONE_BODY, REPLACEMENT = schemas.UPDATE_OPERATORS_BODY, schemas.REPLACEMENT_BODY
update_one = _by_id(
    patch,
    DocumentService.update_one,
    "Update by _id with update operators",
    "The document after the update",
    UPDATE_ONE_BODY,
)
replace = _by_id(put, DocumentService.replace, "Replace by _id", "The new document", REPLACEMENT)


@delete(f"{BASE}/{{document_id:str}}", tags=["documents"], summary="Delete by _id")
async def delete_one(
    collection: Collection, document_id: FromPath[str], docs: Docs, active_ctx: Ctx
) -> None:
    await docs.delete_one(active_ctx, collection, document_id)


document_handlers: list[ControllerRouterHandler] = [
    list_collections,
    insert,
    list_documents,
    query,
    count,
    aggregate,
    update_many,
    delete_many,
    list_indexes,
    create_index,
    drop_index,
    read,
    update_one,
    replace,
    delete_one,
]
