"""Attacks through a function: another org's rows through ctx.db, a private address
through ctx.http, a secret into the log. Each must fail."""

from __future__ import annotations

import httpx
import pytest
from structlog.testing import capture_logs

from tests.functions.conftest import SECRET, Client, F, person
from tests.support.receivers import Answer, Receiver


async def test_ctx_db_reaches_no_other_org(fclient: Client) -> None:
    alice, mallory = await person(fclient), await person(fclient)
    for title in ("secret plan", "payroll"):
        made = await fclient.post("/v1/db/items", headers=alice["headers"], json={"title": title})
        assert made.status_code == 201
    made = await fclient.post("/v1/db/items", headers=mallory["headers"], json={"title": "mine"})
    assert made.status_code == 201
    answer = await fclient.post(
        f"{F}/sneak", headers=mallory["headers"], json={"other_org": alice["org"]}
    )
    assert answer.status_code == 200, answer.text
    seen = answer.json()
    assert seen["by_org"] == 0
    assert seen["all"] == 0
    assert seen["audit"] == 0
    assert seen["mine"] == 1
    assert seen["forge"] == "refused:function_statement_refused"
    assert seen["reset"] == "refused:function_statement_refused"
    assert seen["commit"] == "refused:function_statement_refused"
    assert seen["two"] == "refused:42601"  # one statement per call (the extended protocol)
    assert seen["users"] == "refused:42501"  # the tenant role reads no platform table
    assert seen["platform"] == "refused:function_not_privileged"
    # Only a function the operator declared privileged reaches the platform's tables.
    job = await fclient.post(f"{F}/operator_job", headers=mallory["headers"])
    assert job.status_code == 200, job.text
    assert job.json()["orgs"] >= 2


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/hook",
        "http://[::ffff:127.0.0.1]:{port}/hook",
        "http://2130706433:{port}/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://[::1]:{port}/hook",
        "file:///etc/passwd",
    ],
)
async def test_ctx_http_refuses_private_addresses(
    fclient: Client, functions_server: str, url: str
) -> None:
    """Through a gateway process (its receivers must answer while the test waits)."""
    alice = await person(fclient)
    async with Receiver(Answer()) as receiver, httpx.AsyncClient(base_url=functions_server) as http:
        target = url.format(port=receiver.port)
        answer = await http.post(f"{F}/fetcher", headers=alice["headers"], json={"url": target})
        assert answer.status_code == 200, answer.text
        refused = answer.json()
        assert refused.get("refused") in ("function_destination_refused", "invalid_webhook_url")
        assert receiver.received == []


async def test_ctx_http_reaches_an_allowed_host(fclient: Client, functions_server: str) -> None:
    alice = await person(fclient)
    async with (
        Receiver(Answer(body=b"pong")) as receiver,
        httpx.AsyncClient(base_url=functions_server) as http,
    ):
        target = f"http://localhost:{receiver.port}/hook"
        answer = await http.post(f"{F}/fetcher", headers=alice["headers"], json={"url": target})
        assert answer.json() == {"status": 200, "body": "pong"}
        assert len(receiver.received) == 1
        assert "authorization" not in receiver.received[0].headers


async def test_secrets_reach_only_the_functions_that_name_them_and_never_the_log(
    fclient: Client,
) -> None:
    alice = await person(fclient)
    with capture_logs() as logs:
        answer = await fclient.post(f"{F}/secretive", headers=alice["headers"])
    assert answer.json() == {"has_token": True, "other": False}
    assert SECRET not in answer.text
    logged = repr(logs)
    assert "the token is [secret]" in logged
    assert SECRET not in logged


async def test_ctx_kv_docs_and_realtime_are_the_callers_orgs(fclient: Client) -> None:
    alice, bob = await person(fclient), await person(fclient)
    first = await fclient.post(f"{F}/stash", headers=alice["headers"], json={"note": "alice's"})
    assert first.status_code == 200, first.text
    assert first.json() == {
        "before": None,
        "after": "alice's",
        "hits": 1,
        "stored": True,
        "found": ["alice's"],
        "count": 1,
        "reached": 0,
    }
    theirs = await fclient.post(f"{F}/stash", headers=bob["headers"], json={"note": "bob's"})
    seen = theirs.json()
    assert (seen["before"], seen["hits"], seen["found"], seen["count"]) == (None, 1, ["bob's"], 1)
    # The same org namespace as the org's own API: what the function wrote, the API reads.
    kept = await fclient.get("/v1/kv/fn-note", headers=alice["headers"])
    assert kept.json()["value"] == "alice's"
