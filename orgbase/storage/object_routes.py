"""``/storage/v1/object``: uploads, downloads (the caller's, public links, signed URLs),
listing, moving, copying, removing and signing, as Supabase Storage serves them."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import delete, get, put
from litestar.params import FromPath
from litestar.response.base import ASGIResponse
from litestar.types import ControllerRouterHandler

from orgbase.core.context import READS_ONLY
from orgbase.storage import names
from orgbase.storage.access import Access
from orgbase.storage.area import StorageArea
from orgbase.storage.forms import upload_of
from orgbase.storage.paths import PREFIX
from orgbase.storage.publish import Target
from orgbase.storage.route_parts import TAGS, Ctx, Req, Storage, posting, reading
from orgbase.storage.schemas import ListBody, MoveBody, RemoveBody, decode

OBJECT = f"{PREFIX}/object"


def path_name(value: str) -> str:
    return names.object_name(value.removeprefix("/"))


def upsert_header(request: Req) -> bool:
    return (request.headers.get("x-upsert") or "").strip().lower() == "true"


async def _store(storage: StorageArea, request: Req, access: Access, target: Target) -> Any:
    incoming, chunks = await upload_of(request.headers, request.receive)
    stored = await storage.publisher.store(access, target, incoming, chunks)
    return {"Id": str(stored.id), "Key": stored.key}


@posting(f"{OBJECT}/{{bucket:str}}/{{name:path}}", "Upload an object", request_max_body_size=None)
async def upload(
    storage: Storage, active_ctx: Ctx, bucket: FromPath[str], name: FromPath[str], request: Req
) -> dict[str, Any]:
    target = Target(bucket, path_name(name), upsert_header(request))
    result: dict[str, Any] = await _store(storage, request, Access.of(active_ctx), target)
    return result


@put(
    f"{OBJECT}/{{bucket:str}}/{{name:path}}",
    tags=TAGS,
    summary="Replace an object",
    request_max_body_size=None,
)
async def replace(
    storage: Storage, active_ctx: Ctx, bucket: FromPath[str], name: FromPath[str], request: Req
) -> dict[str, Any]:
    target = Target(bucket, path_name(name), True)
    result: dict[str, Any] = await _store(storage, request, Access.of(active_ctx), target)
    return result


@reading(
    [
        f"{OBJECT}/{{bucket:str}}/{{name:path}}",
        f"{OBJECT}/authenticated/{{bucket:str}}/{{name:path}}",
    ],
    "Download an object",
)
async def download(
    storage: Storage, active_ctx: Ctx, bucket: FromPath[str], name: FromPath[str], request: Req
) -> ASGIResponse:
    return await storage.downloads.answer(request, Access.of(active_ctx), bucket, path_name(name))


@reading(
    f"{PREFIX}/org/{{org_id:uuid}}/object/public/{{bucket:str}}/{{name:path}}",
    "A public bucket's object, without a credential",
)
async def public_download(
    storage: Storage,
    org_id: FromPath[UUID],
    bucket: FromPath[str],
    name: FromPath[str],
    request: Req,
) -> ASGIResponse:
    access = Access.granted(org_id, None)

    async def admit() -> None:  # once the object is found: no usage for made-up orgs
        await storage.admitted(request.scope, org_id)

    return await storage.downloads.answer(
        request, access, bucket, path_name(name), public=True, found=admit
    )


@reading(
    f"{OBJECT}/public/{{bucket:str}}/{{name:path}}",
    "A public bucket's object in the credential's org",
)
async def public_in_org(
    storage: Storage, active_ctx: Ctx, bucket: FromPath[str], name: FromPath[str], request: Req
) -> ASGIResponse:
    access = Access.granted(active_ctx.org_id, None)
    return await storage.downloads.answer(request, access, bucket, path_name(name), public=True)


@get(f"{OBJECT}/info/{{bucket:str}}/{{name:path}}", tags=TAGS, summary="An object's metadata")
async def info(
    storage: Storage, active_ctx: Ctx, bucket: FromPath[str], name: FromPath[str]
) -> dict[str, Any]:
    found = await storage.objects.find(Access.of(active_ctx), bucket, path_name(name))
    return found.info()


@posting(f"{OBJECT}/list/{{bucket:str}}", "List a folder", opt={READS_ONLY: True})
async def list_objects(
    storage: Storage, active_ctx: Ctx, bucket: FromPath[str], request: Req
) -> list[dict[str, Any]]:
    body = decode(await request.body(), ListBody)
    return await storage.objects.listing(Access.of(active_ctx), names.bucket_id(bucket), body)


@posting(f"{OBJECT}/move", "Move or rename an object")
async def move(storage: Storage, active_ctx: Ctx, request: Req) -> dict[str, Any]:
    body = decode(await request.body(), MoveBody)
    target = (body.destinationBucket or body.bucketId, body.destinationKey)
    await storage.objects.move(Access.of(active_ctx), (body.bucketId, body.sourceKey), target)
    return {"message": "Successfully moved"}


@posting(f"{OBJECT}/copy", "Copy an object")
async def copy(storage: Storage, active_ctx: Ctx, request: Req) -> dict[str, Any]:
    body = decode(await request.body(), MoveBody)
    target = (body.destinationBucket or body.bucketId, body.destinationKey)
    stored = await storage.objects.copy(
        Access.of(active_ctx), (body.bucketId, body.sourceKey), target, upsert_header(request)
    )
    return {"Id": str(stored.id), "Key": stored.key}


@delete(f"{OBJECT}/{{bucket:str}}", tags=TAGS, summary="Remove objects", status_code=200)
async def remove(
    storage: Storage, active_ctx: Ctx, bucket: FromPath[str], request: Req
) -> list[dict[str, Any]]:
    body = decode(await request.body(), RemoveBody)
    return await storage.objects.remove(Access.of(active_ctx), bucket, body.prefixes)


object_handlers: list[ControllerRouterHandler] = [
    upload,
    replace,
    download,
    public_download,
    public_in_org,
    info,
    list_objects,
    move,
    copy,
    remove,
]
