"""supabase-js's storage client and tus-js-client (the client Supabase's docs give for
resumable uploads), unchanged, run by node against a real gateway
(tests/supabase_js/storage.mjs)."""

from __future__ import annotations

import uuid

from tests.storage.conftest import Client, org_person
from tests.support.supabase_js import need_node, run_script


async def test_supabase_js_storage_round_trip(
    client: Client, live_server: str, anon_key: str
) -> None:
    need_node()
    owner = await org_person(client)
    stranger = await org_person(client)
    bucket = f"js-{uuid.uuid4().hex[:8]}"
    seen = await run_script(
        "storage.mjs",
        ORGBASE_URL=live_server,
        ANON_KEY=anon_key,
        TOKEN=owner["token"],
        OTHER_TOKEN=stranger["token"],
        BUCKET=bucket,
    )
    assert bucket in seen["buckets"]
    assert seen["uploaded"] == f"{bucket}/docs/hello.txt"
    assert seen["duplicateStatus"] == "409"
    assert seen["downloaded"] == "hello from supabase-js"
    assert seen["listed"] == ["hello.txt"]
    assert seen["signedBody"] == "hello from supabase-js"
    assert seen["exists"] is True
    assert seen["missing"] is False
    assert seen["bigSize"] == 7 * 1024 * 1024
    assert bucket not in seen["strangerBuckets"]
    assert seen["strangerDownload"] in ("404", 404)
    assert sorted(seen["removed"]) == ["big.bin", "copy.txt", "docs/moved.txt"]
