"""/functions/v1/{name} through a real gateway (the app on the real stack): the examples,
every kind of answer, who may call, and what the caller hears when a function fails."""

from __future__ import annotations

from typing import Any

from tests.functions.conftest import Client, F, person


async def test_whoami_answers_the_callers_user_org_and_role(fclient: Client) -> None:
    alice = await person(fclient)
    answer = await fclient.post(f"{F}/whoami", headers=alice["headers"])
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "user_id": alice["user"]["id"],
        "org_id": alice["org"],
        "role": "owner",
    }


async def test_count_items_counts_only_the_callers_org(fclient: Client) -> None:
    alice, bob = await person(fclient), await person(fclient)
    for title in ("a", "b", "c"):
        made = await fclient.post("/v1/db/items", headers=alice["headers"], json={"title": title})
        assert made.status_code == 201, made.text
    made = await fclient.post("/v1/db/items", headers=bob["headers"], json={"title": "x"})
    assert made.status_code == 201
    counted = await fclient.get(f"{F}/count_items", headers=alice["headers"])
    assert counted.status_code == 200, counted.text
    assert counted.json() == {"org_id": alice["org"], "count": 3}
    counted = await fclient.get(f"{F}/count_items", headers=bob["headers"])
    assert counted.json() == {"org_id": bob["org"], "count": 1}


async def test_the_request_reaches_the_function_without_credentials(
    fclient: Client, anon_key: str
) -> None:
    alice = await person(fclient)
    sent = await fclient.put(
        f"{F}/echo/a/b?x=1&y=two",
        headers={**alice["headers"], "apikey": anon_key, "x-custom": "yes"},
        content=b"hello",
    )
    assert sent.status_code == 200, sent.text
    seen = sent.json()
    assert seen["method"] == "PUT"
    assert seen["path"] == "/a/b"
    assert seen["query"] == {"x": "1", "y": "two"}
    assert seen["body"] == "hello"
    assert seen["headers"]["x-custom"] == "yes"
    assert "authorization" not in seen["headers"]
    assert "apikey" not in seen["headers"]
    assert seen["kind"] == "user"
    assert seen["org_id"] == alice["org"]


async def test_answers_of_every_kind(fclient: Client, anon_key: str) -> None:
    key = {"apikey": anon_key}
    text = await fclient.get(f"{F}/echo?as=text", headers=key)
    assert (text.status_code, text.text) == (200, "plain words")
    assert text.headers["content-type"].startswith("text/plain")
    binary = await fclient.get(f"{F}/echo?as=bytes", headers=key)
    assert binary.content == b"\x00\x01binary"
    assert binary.headers["content-type"] == "application/octet-stream"
    empty = await fclient.get(f"{F}/echo?as=empty", headers=key)
    assert (empty.status_code, empty.content) == (204, b"")
    teapot = await fclient.get(f"{F}/echo?as=teapot", headers=key)
    assert teapot.status_code == 418
    assert teapot.headers["x-tea"] == "earl grey"
    assert teapot.json() == {"brewing": True}
    refused = await fclient.post(f"{F}/echo?as=refuse", headers=key)
    assert refused.status_code == 422
    body: dict[str, Any] = refused.json()
    assert body["code"] == "invalid_amount"
    assert body["details"] == {"min": 1}
    assert body["request_id"] == refused.headers["x-request-id"]


async def test_unknown_function_wrong_method_and_broken_modules(
    fclient: Client, anon_key: str
) -> None:
    alice = await person(fclient)
    missing = await fclient.post(f"{F}/nope", headers=alice["headers"])
    assert (missing.status_code, missing.json()["code"]) == (404, "function_not_found")
    wrong = await fclient.delete(f"{F}/whoami", headers=alice["headers"])
    assert (wrong.status_code, wrong.json()["code"]) == (405, "method_not_allowed")
    for broken in ("badconfig", "badimport"):
        answer = await fclient.post(f"{F}/{broken}", headers=alice["headers"])
        assert (answer.status_code, answer.json()["code"]) == (503, "function_unavailable")
    still = await fclient.get(f"{F}/echo", headers={"apikey": anon_key})
    assert still.status_code == 200


async def test_the_publishable_key_alone_is_not_a_session(fclient: Client, anon_key: str) -> None:
    for headers in (
        {"apikey": anon_key},
        {"apikey": anon_key, "Authorization": f"Bearer {anon_key}"},
        {},
    ):
        answer = await fclient.post(f"{F}/whoami", headers=headers)
        assert answer.status_code == 401, headers
        assert answer.json()["code"] == "auth_required"
    public = await fclient.get(f"{F}/echo", headers={"apikey": anon_key})
    assert public.status_code == 200
    assert public.json()["kind"] == "anonymous"
    without_key = await fclient.get(f"{F}/echo")
    assert (without_key.status_code, without_key.json()["code"]) == (401, "apikey_invalid")


async def test_a_forged_or_dead_token_is_refused(fclient: Client) -> None:
    alice = await person(fclient)
    header, payload, signature = alice["token"].split(".")
    forged = f"{header}.{payload}.{signature[::-1]}"
    answer = await fclient.post(f"{F}/whoami", headers={"Authorization": f"Bearer {forged}"})
    assert answer.status_code == 401
    logout = await fclient.post("/v1/auth/logout", headers=alice["headers"], json={})
    assert logout.status_code in (200, 204)
    answer = await fclient.post(f"{F}/whoami", headers=alice["headers"])
    assert (answer.status_code, answer.json()["code"]) == (401, "session_revoked")
