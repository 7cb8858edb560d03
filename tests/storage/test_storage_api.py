"""The storage API through a real gateway: uploads (raw and multipart), downloads with
ranges and ETags, public links, signed URLs (and their tampering), the presets per
bucket, bad names and lying types, limits per bucket."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time

import pytest
from litestar.testing import AsyncTestClient

from orgbase.core.settings import Settings
from orgbase.platform.app import create_app
from orgbase.storage import names
from orgbase.storage.signing import Grant, Signer
from tests.storage.conftest import Client, S, make_bucket, org_person, org_with, put_object
from tests.support.stack import with_overrides


async def test_raw_and_multipart_uploads_read_back_whole(client: Client) -> None:
    owner = await org_person(client)
    bucket = await make_bucket(client, owner["headers"])
    data = bytes(range(256)) * 4096  # 1 MiB
    raw = await put_object(client, owner["headers"], bucket, "raw.bin", data)
    assert raw.status_code == 200, raw.text
    assert raw.json()["Key"] == f"{bucket}/raw.bin"
    form = await client.post(
        f"{S}/object/{bucket}/dir/form.txt",
        headers=owner["headers"],
        files={"file": ("form.txt", b"form body", "text/plain")},
        data={"cacheControl": "60"},
    )
    assert form.status_code == 200, form.text
    got = await client.get(f"{S}/object/{bucket}/raw.bin", headers=owner["headers"])
    assert got.content == data
    assert got.headers["etag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    assert got.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in got.headers["content-security-policy"]
    text = await client.get(
        f"{S}/object/authenticated/{bucket}/dir/form.txt", headers=owner["headers"]
    )
    assert text.content == b"form body"
    assert text.headers["content-type"].startswith("text/plain")
    assert text.headers["cache-control"] == "max-age=60"
    info = await client.get(f"{S}/object/info/{bucket}/raw.bin", headers=owner["headers"])
    assert info.json()["sha256"] == hashlib.sha256(data).hexdigest()


async def test_ranges_etags_and_head(client: Client) -> None:
    owner = await org_person(client)
    bucket = await make_bucket(client, owner["headers"])
    data = b"0123456789" * 10
    await put_object(client, owner["headers"], bucket, "r.txt", data, "text/plain")
    url, h = f"{S}/object/{bucket}/r.txt", owner["headers"]
    part = await client.get(url, headers={**h, "range": "bytes=10-19"})
    assert part.status_code == 206
    assert part.content == data[10:20]
    assert part.headers["content-range"] == "bytes 10-19/100"
    tail = await client.get(url, headers={**h, "range": "bytes=-5"})
    assert tail.content == data[-5:]
    past = await client.get(url, headers={**h, "range": "bytes=100-"})
    assert past.status_code == 416
    assert past.json()["code"] == "InvalidRange"
    assert past.headers["content-range"] == "bytes */100"
    etag = part.headers["etag"]
    same = await client.get(url, headers={**h, "if-none-match": etag})
    assert same.status_code == 304
    assert same.content == b""
    head = await client.head(url, headers=h)
    assert head.status_code == 200
    assert head.headers["content-length"] == "100"
    assert head.content == b""


async def test_upsert_and_duplicates(client: Client) -> None:
    owner = await org_person(client)
    bucket = await make_bucket(client, owner["headers"])
    h = owner["headers"]
    assert (await put_object(client, h, bucket, "a", b"one")).status_code == 200
    again = await put_object(client, h, bucket, "a", b"two")
    assert again.status_code == 409
    assert again.json()["code"] == "Duplicate"
    assert again.json()["statusCode"] == "409"
    assert (
        await put_object(client, h, bucket, "a", b"two", **{"x-upsert": "true"})
    ).status_code == 200
    assert (await client.get(f"{S}/object/{bucket}/a", headers=h)).content == b"two"


@pytest.mark.parametrize(
    "name",
    [
        "../escape",
        "a/../../b",
        "a/./b",
        "%2e%2e/x",
        "a//b",
        "/etc/passwd",
        "x" * 1100,
        "a\x00b",
        "a%2500",
    ],
)
async def test_bad_names_are_refused_and_nothing_is_stored(client: Client, name: str) -> None:
    owner = await org_person(client)
    bucket = await make_bucket(client, owner["headers"])
    h = owner["headers"]
    # In a path the client may resolve dot segments before sending: then no route (404,
    # 405) or the name refused (400); either way nothing is stored.
    # (The HTTP client resolves dot segments and the router merges repeated slashes: what
    # is stored then is the resolved name, never one with a dot segment.)
    answer = await put_object(client, h, bucket, name.replace("\x00", "%00"), b"x")
    if answer.status_code == 200:
        assert names.object_name(answer.json()["Key"].split("/", 1)[1])
        await client.request(
            "DELETE",
            f"{S}/object/{bucket}",
            headers=h,
            json={"prefixes": [answer.json()["Key"].split("/", 1)[1]]},
        )
    else:
        assert answer.status_code in (400, 404, 405), answer.text
    if answer.status_code == 400:
        assert answer.json()["code"] == "InvalidKey"
    # In a body the name arrives as it was written.
    await put_object(client, h, bucket, "seed", b"x")
    for path, body in (
        ("move", {"bucketId": bucket, "sourceKey": "seed", "destinationKey": name}),
        ("copy", {"bucketId": bucket, "sourceKey": "seed", "destinationKey": name}),
    ):
        answer = await client.post(f"{S}/object/{path}", headers=h, json=body)
        assert answer.status_code == 400, answer.text
        assert answer.json()["code"] == "InvalidKey"
    listed = await client.post(f"{S}/object/list/{bucket}", headers=h, json={})
    assert [e["name"] for e in listed.json()] == ["seed"]


async def test_absolute_and_nul_names_in_raw_paths(client: Client) -> None:
    owner = await org_person(client)
    h = owner["headers"]
    bucket = await make_bucket(client, h)
    nul = await client.post(f"{S}/object/{bucket}/a%00.txt", headers=h, content=b"x")
    assert nul.status_code == 400
    assert nul.json()["code"] == "InvalidKey"
    # A leading slash in a path is merged by the router: the name stays in the bucket (a
    # name never reaches the file system: blobs have keys of their own).
    absolute = await client.post(f"{S}/object/{bucket}//etc/passwd", headers=h, content=b"x")
    assert absolute.json()["Key"] == f"{bucket}/etc/passwd"
    listed = await client.post(f"{S}/object/list/{bucket}", headers=h, json={})
    assert [e["name"] for e in listed.json()] == ["etc"]


async def test_lying_types_and_bucket_limits(client: Client) -> None:
    owner = await org_person(client)
    h = owner["headers"]
    bucket = await make_bucket(
        client, h, file_size_limit=1000, allowed_mime_types=["image/png", "text/*"]
    )
    html_as_png = await put_object(
        client, h, bucket, "x.png", b"<html><script>1</script>", "image/png"
    )
    assert html_as_png.status_code == 415
    assert html_as_png.json()["code"] == "InvalidMimeType"
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 100
    assert (await put_object(client, h, bucket, "ok.png", png, "image/png")).status_code == 200
    assert (await put_object(client, h, bucket, "t.txt", b"hi", "text/plain")).status_code == 200
    pdf = await put_object(client, h, bucket, "x.pdf", b"%PDF-1.4", "application/pdf")
    assert pdf.status_code == 415
    big = await put_object(client, h, bucket, "big.txt", b"x" * 1001, "text/plain")
    assert big.status_code == 413
    assert big.json()["code"] == "EntityTooLarge"
    listed = await client.post(f"{S}/object/list/{bucket}", headers=h, json={})
    assert sorted(e["name"] for e in listed.json()) == ["ok.png", "t.txt"]


async def test_public_links_need_a_public_bucket(client: Client) -> None:
    owner = await org_person(client)
    h = owner["headers"]
    public = await make_bucket(client, h, public=True)
    private = await make_bucket(client, h)
    for bucket in (public, private):
        await put_object(client, h, bucket, "p.txt", b"public?", "text/plain")
    org = owner["org"]
    open_link = await client.get(f"{S}/org/{org}/object/public/{public}/p.txt")
    assert open_link.status_code == 200
    assert open_link.content == b"public?"
    closed = await client.get(f"{S}/org/{org}/object/public/{private}/p.txt")
    assert closed.status_code == 404
    assert (await client.get(f"{S}/object/public/{public}/p.txt", headers=h)).status_code == 200
    other = await org_person(client)
    wrong_org = await client.get(f"{S}/org/{other['org']}/object/public/{public}/p.txt")
    assert wrong_org.status_code == 404


async def test_signed_urls_and_their_tampering(client: Client) -> None:
    owner = await org_person(client)
    h = owner["headers"]
    bucket = await make_bucket(client, h)
    await put_object(client, h, bucket, "s.txt", b"signed", "text/plain")
    await put_object(client, h, bucket, "other.txt", b"not this", "text/plain")
    signed = await client.post(f"{S}/object/sign/{bucket}/s.txt", headers=h, json={"expiresIn": 60})
    url = signed.json()["signedURL"]
    assert (await client.get(f"{S}{url}")).content == b"signed"
    token = url.split("token=")[1]
    # Another object with the same token, a changed token, and an expired one.
    moved = await client.get(f"{S}/object/sign/{bucket}/other.txt?token={token}")
    assert moved.status_code == 400
    assert moved.json()["code"] == "InvalidSignature"
    body, mac = token.split(".")
    flipped = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]
    tampered = await client.get(f"{S}/object/sign/{bucket}/s.txt?token={flipped}.{mac}")
    assert tampered.json()["code"] == "InvalidSignature"
    # A token made with another key.
    forged = Signer(b"k" * 32).sign(
        Grant("read", owner["org"], bucket, "s.txt", int(time.time()) + 60)
    )
    assert (await client.get(f"{S}/object/sign/{bucket}/s.txt?token={forged}")).status_code == 400
    short = await client.post(f"{S}/object/sign/{bucket}/s.txt", headers=h, json={"expiresIn": 1})
    await asyncio.sleep(2.1)
    expired = await client.get(f"{S}{short.json()['signedURL']}")
    assert expired.status_code == 400
    assert expired.json()["code"] == "ExpiredSignature"


async def test_signed_upload_urls(client: Client) -> None:
    owner = await org_person(client)
    h = owner["headers"]
    bucket = await make_bucket(client, h)
    made = await client.post(f"{S}/object/upload/sign/{bucket}/up.txt", headers=h)
    assert made.status_code == 200, made.text
    url = made.json()["url"]
    done = await client.put(
        f"{S}{url}", content=b"via token", headers={"content-type": "text/plain"}
    )
    assert done.status_code == 200, done.text
    assert (await client.get(f"{S}/object/{bucket}/up.txt", headers=h)).content == b"via token"
    again = await client.put(f"{S}{url}", content=b"again", headers={"content-type": "text/plain"})
    assert again.status_code == 409
    elsewhere = url.replace("up.txt", "other.txt")
    assert (await client.put(f"{S}{elsewhere}", content=b"x")).status_code == 400


async def test_presets_are_enforced_in_postgresql(client: Client) -> None:
    _, people = await org_with(client, ("admin", "member", "viewer"))
    owner = people["owner"]
    members = await make_bucket(client, owner)
    private = await make_bucket(client, owner, policy="owner_private")
    admins = await make_bucket(client, owner, policy="admin_write")
    # Viewers read, never write; members write members' and owner_private buckets.
    assert (await put_object(client, people["viewer"], members, "v", b"x")).status_code == 403
    assert (await put_object(client, people["member"], members, "m", b"x")).status_code == 200
    assert (
        await client.get(f"{S}/object/{members}/m", headers=people["viewer"])
    ).status_code == 200
    assert (await put_object(client, people["member"], admins, "m", b"x")).status_code in (403, 409)
    assert (await put_object(client, people["admin"], admins, "a", b"x")).status_code == 200
    assert (await client.get(f"{S}/object/{admins}/a", headers=people["member"])).status_code == 200
    # owner_private: the owner and the org's admins, nobody else.
    assert (await put_object(client, people["member"], private, "mine", b"x")).status_code == 200
    assert (
        await client.get(f"{S}/object/{private}/mine", headers=people["viewer"])
    ).status_code == 404
    assert (
        await client.get(f"{S}/object/{private}/mine", headers=people["admin"])
    ).status_code == 200
    listed = await client.post(f"{S}/object/list/{private}", headers=people["viewer"], json={})
    assert listed.json() == []
    # Buckets are the admins': making one, and emptying one.
    refused = await client.post(f"{S}/bucket", headers=people["member"], json={"id": "nope"})
    assert refused.status_code == 403
    emptied = await client.post(f"{S}/bucket/{members}/empty", headers=people["viewer"])
    assert emptied.status_code == 403
    assert (await client.get(f"{S}/object/{members}/m", headers=owner)).status_code == 200


async def test_an_upsert_over_an_object_the_caller_cannot_see_is_refused(client: Client) -> None:
    """The policy's answer (403), as signing such an upload gets, not 409 Duplicate."""
    _, people = await org_with(client, ("member",))
    private = await make_bucket(client, people["owner"], policy="owner_private")
    await put_object(client, people["owner"], private, "owners", b"owner's")
    replaced = await put_object(
        client, people["member"], private, "owners", b"mine", **{"x-upsert": "true"}
    )
    assert (replaced.status_code, replaced.json()["code"]) == (403, "AccessDenied"), replaced.text
    # A resumable upload is refused when it starts, not at its last byte.
    fields = {"bucketName": private, "objectName": "owners", "contentType": "text/plain"}
    started = await client.post(
        f"{S}/upload/resumable",
        headers={
            **people["member"],
            "Tus-Resumable": "1.0.0",
            "Upload-Length": "4",
            "x-upsert": "true",
            "Upload-Metadata": ",".join(
                f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in fields.items()
            ),
        },
    )
    assert (started.status_code, started.json()["code"]) == (403, "AccessDenied"), started.text
    kept = await client.get(f"{S}/object/{private}/owners", headers=people["owner"])
    assert kept.content == b"owner's"


async def test_another_org_sees_nothing(client: Client) -> None:
    a = await org_person(client)
    b = await org_person(client)
    bucket = await make_bucket(client, a["headers"], id="avatars")
    same_name = await make_bucket(client, b["headers"], id="avatars")  # buckets are per org
    assert same_name == bucket
    await put_object(client, a["headers"], bucket, "secret.txt", b"a's", "text/plain")
    assert (
        await client.get(f"{S}/object/avatars/secret.txt", headers=b["headers"])
    ).status_code == 404
    assert (
        await client.post(f"{S}/object/list/avatars", headers=b["headers"], json={})
    ).json() == []
    moved = await client.post(
        f"{S}/object/move",
        headers=b["headers"],
        json={"bucketId": "avatars", "sourceKey": "secret.txt", "destinationKey": "mine.txt"},
    )
    assert moved.status_code == 404
    signed = await client.post(
        f"{S}/object/sign/avatars/secret.txt", headers=b["headers"], json={"expiresIn": 60}
    )
    assert signed.status_code == 404
    removed = await client.request(
        "DELETE", f"{S}/object/avatars", headers=b["headers"], json={"prefixes": ["secret.txt"]}
    )
    assert removed.json() == []
    assert (
        await client.get(f"{S}/object/avatars/secret.txt", headers=a["headers"])
    ).content == b"a's"


async def test_refusals_before_routing_have_the_storage_shape(client: Client) -> None:
    owner = await org_person(client)
    bad = await client.post(
        f"{S}/bucket",
        headers={**owner["headers"], "content-type": "application/json"},
        content=b'{"id": "\xff"}',
    )
    assert bad.status_code == 400
    assert bad.json()["statusCode"] == "400"
    assert bad.json()["error"] == bad.json()["code"] == "invalid_utf8"


async def test_storage_switched_off_is_not_served(settings: Settings) -> None:
    """``ORGBASE_STORAGE_ENABLED=false``: /storage/v1 is not routed (404), the rest is."""
    app = create_app(with_overrides(settings, storage={"enabled": False}))
    async with AsyncTestClient(app=app) as client:
        person = await org_person(client, "no-files")
        headers = person["headers"]
        listed = await client.get("/storage/v1/bucket", headers=headers)
        assert listed.status_code == 404, listed.text
        made = await client.post("/storage/v1/bucket", json={"id": "b"}, headers=headers)
        assert made.status_code == 404, made.text
        assert (await client.get("/health/live")).status_code == 200
