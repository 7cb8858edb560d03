"""``/storage/v1/bucket``: an org's buckets, as Supabase Storage serves them."""

from __future__ import annotations

from typing import Any

from litestar import delete, get, put
from litestar.params import FromPath
from litestar.types import ControllerRouterHandler

from orgbase.storage.access import Access
from orgbase.storage.paths import PREFIX
from orgbase.storage.route_parts import TAGS, Ctx, Req, Storage, posting
from orgbase.storage.schemas import BucketBody, decode


@get(f"{PREFIX}/bucket", tags=TAGS, summary="The org's buckets")
async def list_buckets(storage: Storage, active_ctx: Ctx) -> list[dict[str, Any]]:
    return [b.to_json() for b in await storage.buckets.all(Access.of(active_ctx))]


@get(f"{PREFIX}/bucket/{{bucket:str}}", tags=TAGS, summary="One bucket")
async def get_bucket(storage: Storage, active_ctx: Ctx, bucket: FromPath[str]) -> dict[str, Any]:
    return (await storage.buckets.get(Access.of(active_ctx), bucket)).to_json()


@posting(f"{PREFIX}/bucket", "Create a bucket (admins)")
async def create_bucket(storage: Storage, active_ctx: Ctx, request: Req) -> dict[str, Any]:
    body = decode(await request.body(), BucketBody)
    made = await storage.buckets.create(Access.of(active_ctx), body)
    return {"name": made.id}


@put(f"{PREFIX}/bucket/{{bucket:str}}", tags=TAGS, summary="Change a bucket (admins)")
async def update_bucket(
    storage: Storage, active_ctx: Ctx, bucket: FromPath[str], request: Req
) -> dict[str, Any]:
    body = decode(await request.body(), BucketBody)
    await storage.buckets.update(Access.of(active_ctx), bucket, body)
    return {"message": "Successfully updated"}


@delete(
    f"{PREFIX}/bucket/{{bucket:str}}", tags=TAGS, summary="Delete an empty bucket", status_code=200
)
async def delete_bucket(storage: Storage, active_ctx: Ctx, bucket: FromPath[str]) -> dict[str, Any]:
    await storage.buckets.delete(Access.of(active_ctx), bucket)
    return {"message": "Successfully deleted"}


@posting(f"{PREFIX}/bucket/{{bucket:str}}/empty", "Delete every object")
async def empty_bucket(storage: Storage, active_ctx: Ctx, bucket: FromPath[str]) -> dict[str, Any]:
    await storage.objects.empty(Access.of(active_ctx), bucket)
    return {"message": "Successfully emptied"}


bucket_handlers: list[ControllerRouterHandler] = [
    list_buckets,
    get_bucket,
    create_bucket,
    update_bucket,
    delete_bucket,
    empty_bucket,
]
