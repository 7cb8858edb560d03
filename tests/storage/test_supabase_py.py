"""supabase-py's storage client (storage3), unchanged, against a real gateway: buckets,
upload, download, list, sign, move, copy, remove; another org sees none of it."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient
from storage3.exceptions import StorageApiError
from supabase import ClientOptions, create_client

from orgbase.platform.app import OrgbaseApp
from tests.storage.conftest import org_person


def supabase_for(url: str, anon_key: str, token: str) -> Any:
    options = ClientOptions(headers={"Authorization": f"Bearer {token}"})
    return create_client(url, anon_key, options=options)


async def test_supabase_py_storage_round_trip(
    client: AsyncTestClient[OrgbaseApp], live_server: str, anon_key: str
) -> None:
    alice = await org_person(client)
    mallory = await org_person(client)
    await asyncio.to_thread(round_trip, live_server, anon_key, alice, mallory)


def round_trip(live_server: str, anon_key: str, alice: Any, mallory: Any) -> None:
    storage = supabase_for(live_server, anon_key, alice["token"]).storage
    bucket = f"avatars-{uuid.uuid4().hex[:6]}"
    storage.create_bucket(bucket, options={"public": False, "file_size_limit": 1 << 20})
    assert bucket in [b.id for b in storage.list_buckets()]
    assert storage.get_bucket(bucket).public is False

    files = storage.from_(bucket)
    body = b"hello from supabase-py " * 100
    uploaded = files.upload("folder/hello.txt", body, {"content-type": "text/plain"})
    assert uploaded.path == "folder/hello.txt"
    assert files.download("folder/hello.txt") == body
    with pytest.raises(StorageApiError) as refused:
        files.upload("folder/hello.txt", b"again")
    assert str(refused.value.status) == "409"
    files.update("folder/hello.txt", b"replaced", {"content-type": "text/plain"})
    assert files.download("folder/hello.txt") == b"replaced"

    listed = files.list("folder")
    assert [entry["name"] for entry in listed] == ["hello.txt"]
    assert listed[0]["metadata"]["size"] == len(b"replaced")
    top = files.list()
    assert [(e["name"], e["id"]) for e in top] == [("folder", None)]

    signed = files.create_signed_url("folder/hello.txt", 60)
    assert httpx.get(signed["signedURL"]).content == b"replaced"
    many = files.create_signed_urls(["folder/hello.txt", "folder/missing.txt"], 60)
    assert many[0]["error"] is None
    assert many[1]["error"] is not None

    files.move("folder/hello.txt", "folder/moved.txt")
    assert files.exists("folder/moved.txt")
    assert not files.exists("folder/hello.txt")
    files.copy("folder/moved.txt", "copy.txt")
    assert files.download("copy.txt") == b"replaced"
    assert files.info("copy.txt")["size"] == len(b"replaced")

    # Another org: none of it, not even the bucket's name.
    other = supabase_for(live_server, anon_key, mallory["token"]).storage
    assert bucket not in [b.id for b in other.list_buckets()]
    with pytest.raises(StorageApiError) as hidden:
        other.from_(bucket).download("copy.txt")
    assert str(hidden.value.status) == "404"
    with pytest.raises(StorageApiError):
        other.from_(bucket).list()

    removed = files.remove(["folder/moved.txt", "copy.txt"])
    assert sorted(r["name"] for r in removed) == ["copy.txt", "folder/moved.txt"]
    assert files.list() == []
    storage.empty_bucket(bucket)
    storage.delete_bucket(bucket)
    assert bucket not in [b.id for b in storage.list_buckets()]
