"""``/storage/v1/upload/resumable``: TUS 1.0.0 (creation, termination, expiration), as
Supabase Storage serves it to tus-js-client."""

from __future__ import annotations

from uuid import UUID

from litestar import Response, delete, patch, post, route
from litestar.enums import HttpMethod
from litestar.params import FromPath
from litestar.types import ControllerRouterHandler

from orgbase.core.errors import UnsupportedMediaType
from orgbase.storage.access import Access
from orgbase.storage.area import StorageArea
from orgbase.storage.object_routes import upsert_header
from orgbase.storage.paths import PREFIX
from orgbase.storage.receive import asgi_body
from orgbase.storage.resumable import VERSION, check_version, parse_metadata, whole_number
from orgbase.storage.route_parts import TAGS, Ctx, Req, Storage

BASE = f"{PREFIX}/upload/resumable"
EXTENSIONS = "creation,creation-with-upload,termination,expiration"


def _tus(storage: StorageArea, **extra: str) -> dict[str, str]:
    return {"Tus-Resumable": VERSION, "Cache-Control": "no-store", **extra}


@route(
    BASE,
    http_method=[HttpMethod.OPTIONS],
    tags=TAGS,
    summary="TUS capabilities",
    include_in_schema=False,
)
async def tus_options(storage: Storage) -> Response[bytes]:
    headers = _tus(
        storage,
        **{"Tus-Version": VERSION, "Tus-Extension": EXTENSIONS, "Tus-Max-Size": str(1 << 42)},
    )
    return Response(b"", status_code=204, headers=headers)


@post(BASE, tags=TAGS, summary="Start a resumable upload", request_max_body_size=None)
async def tus_create(storage: Storage, active_ctx: Ctx, request: Req) -> Response[bytes]:
    check_version(request.headers)
    length = whole_number(request.headers.get("upload-length"), "Upload-Length")
    metadata = parse_metadata(request.headers.get("upload-metadata"))
    access = Access.of(active_ctx)
    upload, expires = await storage.resumable.create(
        access, length, metadata, upsert_header(request)
    )
    location = f"{str(request.base_url).rstrip('/')}{BASE}/{upload}"
    headers = _tus(
        storage,
        Location=location,
        **{"Upload-Expires": expires.strftime("%a, %d %b %Y %H:%M:%S GMT")},
    )
    # An empty file is whole at creation: tus clients send no PATCH for it.
    if length == 0 or request.headers.get("content-type") == "application/offset+octet-stream":
        offset, _ = await storage.resumable.patch(access, upload, 0, asgi_body(request.receive))
        headers["Upload-Offset"] = str(offset)
    return Response(b"", status_code=201, headers=headers)


@route(
    f"{BASE}/{{upload:uuid}}",
    http_method=[HttpMethod.HEAD],
    tags=TAGS,
    summary="How much of a resumable upload has arrived",
)
async def tus_head(
    storage: Storage, active_ctx: Ctx, upload: FromPath[UUID], request: Req
) -> Response[bytes]:
    check_version(request.headers)
    offset, row = await storage.resumable.offset(Access.of(active_ctx), upload)
    headers = _tus(storage, **{"Upload-Offset": str(offset), "Upload-Length": str(row["size"])})
    return Response(b"", status_code=200, headers=headers)


@patch(
    f"{BASE}/{{upload:uuid}}",
    tags=TAGS,
    summary="Send the next bytes of an upload",
    request_max_body_size=None,
)
async def tus_patch(
    storage: Storage, active_ctx: Ctx, upload: FromPath[UUID], request: Req
) -> Response[bytes]:
    check_version(request.headers)
    if request.headers.get("content-type") != "application/offset+octet-stream":
        raise UnsupportedMediaType(
            "PATCH bodies are application/offset+octet-stream", code="InvalidContentType"
        )
    offset = whole_number(request.headers.get("upload-offset"), "Upload-Offset")
    done, _ = await storage.resumable.patch(
        Access.of(active_ctx), upload, offset, asgi_body(request.receive)
    )
    return Response(b"", status_code=204, headers=_tus(storage, **{"Upload-Offset": str(done)}))


@delete(f"{BASE}/{{upload:uuid}}", tags=TAGS, summary="Abandon a resumable upload", status_code=200)
async def tus_delete(
    storage: Storage, active_ctx: Ctx, upload: FromPath[UUID], request: Req
) -> Response[bytes]:
    check_version(request.headers)
    await storage.resumable.terminate(Access.of(active_ctx), upload)
    return Response(b"", status_code=204, headers=_tus(storage))


tus_handlers: list[ControllerRouterHandler] = [
    tus_options,
    tus_create,
    tus_head,
    tus_patch,
    tus_delete,
]
