"""supabase-js's storage client and tus-js-client (the client Supabase's docs give for
resumable uploads), unchanged, run by node against a real gateway
(tests/supabase_js/storage.mjs, installed from its lock file by scripts/test_packages.sh)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.storage.conftest import Client, org_person

SCRIPT = Path(__file__).resolve().parents[1] / "supabase_js" / "storage.mjs"
MODULES = SCRIPT.parent / "node_modules" / "@supabase" / "supabase-js"


async def test_supabase_js_storage_round_trip(
    client: Client, live_server: str, anon_key: str
) -> None:
    if shutil.which("node") is None or not MODULES.exists():
        pytest.skip("node and tests/supabase_js/node_modules (scripts/test_packages.sh) needed")
    owner = await org_person(client)
    stranger = await org_person(client)
    bucket = f"js-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "ORGBASE_URL": live_server,
        "ANON_KEY": anon_key,
        "TOKEN": owner["token"],
        "OTHER_TOKEN": stranger["token"],
        "BUCKET": bucket,
    }
    done = await asyncio.to_thread(
        subprocess.run,
        ["node", str(SCRIPT)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
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
