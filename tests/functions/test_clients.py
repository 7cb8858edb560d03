"""Supabase's published clients, unchanged, invoke orgbase's functions: supabase-js
(``tests/supabase_js/functions.mjs``, run by node) and supabase-py, against a real gateway
process."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from supabase import ClientOptions, create_client
from supabase_functions.errors import FunctionsHttpError

from tests.functions.conftest import Client, person
from tests.support.supabase_js import run_script


async def test_supabase_js_functions_invoke(
    fclient: Client, functions_server: str, anon_key: str
) -> None:
    alice, bob = await person(fclient), await person(fclient)
    seen = await run_script(
        "functions.mjs",
        ORGBASE_URL=functions_server,
        ANON_KEY=anon_key,
        TOKEN=alice["token"],
        OTHER_TOKEN=bob["token"],
    )
    assert seen["first"] == {
        "user_id": alice["user"]["id"],
        "org_id": alice["org"],
        "role": "owner",
    }
    assert seen["second"]["org_id"] == bob["org"]
    assert seen["anonymousError"] == "FunctionsHttpError"
    assert (seen["anonymousStatus"], seen["anonymousCode"]) == (401, "auth_required")
    assert seen["echoBody"] == json.dumps({"hello": "world"}, separators=(",", ":"))
    assert seen["echoType"] == "application/json"
    assert seen["echoExtra"] == "1"
    assert seen["text"] == "plain words"
    assert seen["bytes"] == [0, 1, *b"binary"]
    assert (seen["refusedStatus"], seen["refusedCode"]) == (422, "invalid_amount")


def supabase_for(url: str, anon_key: str, token: str | None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return create_client(url, anon_key, options=ClientOptions(headers=headers))


async def test_supabase_py_functions_invoke(
    fclient: Client, functions_server: str, anon_key: str
) -> None:
    alice, bob = await person(fclient), await person(fclient)
    await asyncio.to_thread(_invoke_as_supabase_py, functions_server, anon_key, alice, bob)


def _invoke_as_supabase_py(url: str, anon_key: str, alice: Any, bob: Any) -> None:
    mine = supabase_for(url, anon_key, alice["token"]).functions
    answer = json.loads(mine.invoke("whoami"))
    assert answer["org_id"] == alice["org"]
    theirs = json.loads(supabase_for(url, anon_key, bob["token"]).functions.invoke("whoami"))
    assert theirs["org_id"] == bob["org"]
    echoed = json.loads(mine.invoke("echo", invoke_options={"body": {"n": 1}}))
    assert echoed["body"] == '{"n":1}'
    assert mine.invoke("echo?as=text", invoke_options={"method": "GET"}) == b"plain words"
    with pytest.raises(FunctionsHttpError) as refused:
        supabase_for(url, anon_key, None).functions.invoke("whoami")
    assert refused.value.status == 401
