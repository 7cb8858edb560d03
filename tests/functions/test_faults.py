"""A function that raises, hangs, spins or kills its worker: the caller hears a clear error
(with the request id, without internals), the gateway lives on, and so do the workers
that did nothing wrong."""

from __future__ import annotations

import os
import time

import pytest
from structlog.testing import capture_logs

from tests.functions.conftest import SECRET, Client, F, person

pytestmark = pytest.mark.usefixtures("fclient")


async def _pid(fclient: Client, anon_key: str) -> int:
    answer = await fclient.get(f"{F}/pid", headers={"apikey": anon_key})
    assert answer.status_code == 200, answer.text
    pid: int = answer.json()["pid"]
    return pid


async def test_functions_run_in_worker_processes_without_the_gateways_settings(
    fclient: Client, anon_key: str
) -> None:
    answer = await fclient.get(f"{F}/pid", headers={"apikey": anon_key})
    assert answer.json()["pid"] != os.getpid()
    assert answer.json()["env"] == []  # no ORGBASE_* setting (addresses, keys) in a worker


async def test_a_raising_function_is_a_500_with_the_request_id_and_no_internals(
    fclient: Client, anon_key: str
) -> None:
    with capture_logs() as logs:
        answer = await fclient.post(f"{F}/boom", headers={"apikey": anon_key})
    assert answer.status_code == 500
    body = answer.json()
    assert body["code"] == "function_failed"
    assert body["request_id"] == answer.headers["x-request-id"]
    assert "internal detail" not in answer.text
    assert "postgres://" not in answer.text
    logged = repr(logs)
    assert "internal detail" in logged  # the operator's log has the traceback
    assert SECRET not in logged  # with the secret's value masked


async def test_a_timeout_is_a_504_and_cancels_without_killing_the_worker(
    fclient: Client, anon_key: str
) -> None:
    started = time.monotonic()
    answer = await fclient.get(f"{F}/sleepy?seconds=30", headers={"apikey": anon_key})
    assert (answer.status_code, answer.json()["code"]) == (504, "function_timeout")
    assert time.monotonic() - started < 5
    ok = await fclient.get(f"{F}/sleepy?seconds=0", headers={"apikey": anon_key})
    assert ok.status_code == 200


async def test_a_function_that_never_yields_is_stopped_by_killing_its_worker(
    fclient: Client, anon_key: str
) -> None:
    before = {await _pid(fclient, anon_key) for _ in range(6)}
    answer = await fclient.get(f"{F}/spin", headers={"apikey": anon_key})
    assert (answer.status_code, answer.json()["code"]) == (504, "function_timeout")
    live = await fclient.get("/health/live")
    assert live.status_code == 200
    after = {await _pid(fclient, anon_key) for _ in range(6)}
    assert len(before - after) == 1  # one worker killed and replaced, the other kept
    for pid in before - after:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


async def test_a_crashing_worker_is_a_502_and_is_replaced(fclient: Client, anon_key: str) -> None:
    answer = await fclient.get(f"{F}/crash", headers={"apikey": anon_key})
    assert (answer.status_code, answer.json()["code"]) == (502, "function_crashed")
    assert answer.json()["request_id"]
    alice = await person(fclient)
    again = await fclient.post(f"{F}/whoami", headers=alice["headers"])
    assert again.status_code == 200, again.text
