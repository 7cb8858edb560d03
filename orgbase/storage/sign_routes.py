"""Signed URLs: made by a caller who may read (or write) the object, used by anyone who
holds them until they expire: ``/object/sign/...`` to download, ``/object/upload/sign/...``
to upload (as Supabase Storage serves them)."""

from __future__ import annotations

import time
from typing import Any

from litestar import put
from litestar.params import FromPath
from litestar.response.base import ASGIResponse
from litestar.types import ControllerRouterHandler

from orgbase.core.errors import OrgbaseError
from orgbase.storage import names
from orgbase.storage.access import Access
from orgbase.storage.area import StorageArea
from orgbase.storage.forms import upload_of
from orgbase.storage.object_routes import path_name, upsert_header
from orgbase.storage.paths import PREFIX
from orgbase.storage.publish import Incoming, Target
from orgbase.storage.route_parts import TAGS, Ctx, Req, Storage, posting, reading
from orgbase.storage.schemas import SignBody, SignManyBody, decode, seconds
from orgbase.storage.signing import Grant

SIGN = f"{PREFIX}/object/sign"
UPLOAD_SIGN = f"{PREFIX}/object/upload/sign"


def _token(request: Req) -> str:
    return request.query_params.get("token") or ""


async def _signed_url(
    storage: StorageArea, access: Access, bucket: str, name: str, expires_in: int
) -> str:
    await storage.objects.find(access, bucket, name)  # the signer may read it
    grant = Grant("read", access.org, bucket, name, int(time.time()) + expires_in)
    return f"/object/sign/{bucket}/{name}?token={storage.signer.sign(grant)}"


@posting(f"{SIGN}/{{bucket:str}}/{{name:path}}", "Sign a download URL")
async def sign_one(
    storage: Storage, active_ctx: Ctx, bucket: FromPath[str], name: FromPath[str], request: Req
) -> dict[str, Any]:
    body = decode(await request.body(), SignBody)
    expires = seconds(body.expiresIn, storage.settings.signed_url_max_seconds)
    url = await _signed_url(
        storage, Access.of(active_ctx), names.bucket_id(bucket), path_name(name), expires
    )
    return {"signedURL": url}


@posting(f"{SIGN}/{{bucket:str}}", "Sign several download URLs")
async def sign_many(
    storage: Storage, active_ctx: Ctx, bucket: FromPath[str], request: Req
) -> list[dict[str, Any]]:
    body = decode(await request.body(), SignManyBody)
    expires = seconds(body.expiresIn, storage.settings.signed_url_max_seconds)
    access = Access.of(active_ctx)
    answers: list[dict[str, Any]] = []
    for path in body.paths[:1000]:
        try:
            url = await _signed_url(
                storage, access, names.bucket_id(bucket), names.object_name(path), expires
            )
        except OrgbaseError:
            answers.append(
                {
                    "error": "Either the object does not exist or you do not have access to it",
                    "path": path,
                    "signedURL": None,
                }
            )
            continue
        answers.append({"error": None, "path": path, "signedURL": url})
    return answers


@reading(f"{SIGN}/{{bucket:str}}/{{name:path}}", "Download through a signed URL")
async def signed_download(
    storage: Storage, bucket: FromPath[str], name: FromPath[str], request: Req
) -> ASGIResponse:
    grant = storage.signer.verify(_token(request), "read", bucket, path_name(name))
    await storage.admitted(request.scope, grant.org)
    access = Access.granted(grant.org, None)
    return await storage.downloads.answer(request, access, grant.bucket, grant.name)


@posting(f"{UPLOAD_SIGN}/{{bucket:str}}/{{name:path}}", "Sign an upload URL")
async def sign_upload(
    storage: Storage, active_ctx: Ctx, bucket: FromPath[str], name: FromPath[str], request: Req
) -> dict[str, Any]:
    access = Access.of(active_ctx)
    target = Target(names.bucket_id(bucket), path_name(name), upsert_header(request))
    await storage.publisher.admit(access, target, Incoming("application/octet-stream"))
    await storage.publisher.check_write(access, target)
    expires = int(time.time()) + storage.settings.signed_upload_seconds
    grant = Grant(
        "upload", access.org, target.bucket, target.name, expires, access.owner, target.upsert
    )
    token = storage.signer.sign(grant)
    return {
        "url": f"/object/upload/sign/{target.bucket}/{target.name}?token={token}",
        "token": token,
    }


@put(
    f"{UPLOAD_SIGN}/{{bucket:str}}/{{name:path}}",
    tags=TAGS,
    summary="Upload through a signed URL",
    request_max_body_size=None,
)
async def signed_upload(
    storage: Storage, bucket: FromPath[str], name: FromPath[str], request: Req
) -> dict[str, Any]:
    grant = storage.signer.verify(_token(request), "upload", bucket, path_name(name))
    await storage.admitted(request.scope, grant.org)
    access = Access.granted(grant.org, grant.signer)
    incoming, chunks = await upload_of(request.headers, request.receive)
    target = Target(grant.bucket, grant.name, grant.upsert)
    stored = await storage.publisher.store(access, target, incoming, chunks)
    return {"Id": str(stored.id), "Key": stored.key}


sign_handlers: list[ControllerRouterHandler] = [
    sign_one,
    sign_many,
    signed_download,
    sign_upload,
    signed_upload,
]
