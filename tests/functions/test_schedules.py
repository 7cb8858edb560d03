"""Cron schedules with two gateway processes: each tick runs once (the row of the tick is
the lease), and ticks of a downtime are recorded as missed, not replayed."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

import asyncpg

from devstack import LocalStack
from orgbase.core.settings import Settings
from tests.functions.conftest import copy_functions
from tests.support.processes import free_port, start_server, stop_server
from tests.support.receivers import Answer, Receiver
from tests.support.stack import STATE_DIR, server_env

SCHEDULED = Path(__file__).parent / "scheduled"


async def runs(settings: Settings) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(settings.database.migration_url)
    try:
        return await connection.fetch(
            "SELECT tick, status, gateway FROM orgbase.function_schedule_runs"
            " WHERE function = 'tick' ORDER BY tick"
        )
    finally:
        await connection.close()


def received_ticks(receiver: Receiver) -> Counter[str]:
    return Counter(json.loads(r.body)["tick"] for r in receiver.received)


async def test_each_tick_runs_once_across_two_gateways_and_downtime_is_reported(
    stack: LocalStack, base_settings: Settings, tmp_path: Path
) -> None:
    folder = copy_functions(tmp_path / "functions", SCHEDULED)
    async with Receiver(Answer()) as receiver:
        secrets = tmp_path / "secrets.env"
        secrets.write_text(f"RECEIVER=http://localhost:{receiver.port}/hook\n")
        env = server_env(
            stack,
            ORGBASE_APP_FUNCTIONS_DIR=str(folder),
            ORGBASE_FUNCTIONS_SECRETS_FILE=str(secrets),
            ORGBASE_FUNCTIONS_ALLOWED_HOSTS="localhost",
            ORGBASE_FUNCTIONS_WORKERS="1",
            ORGBASE_FUNCTIONS_SCHEDULES="true",
            ORGBASE_FUNCTIONS_SCHEDULE_GRACE_SECONDS="1",
        )
        logs = [STATE_DIR / f"functions_schedule_{n}.log" for n in (1, 2)]
        # Started and stopped off the loop: the receiver must answer meanwhile.
        gateways = [
            await asyncio.to_thread(start_server, env, free_port(), log_file=log) for log in logs
        ]
        await asyncio.sleep(9)
        await asyncio.gather(*(asyncio.to_thread(stop_server, g) for g in gateways))
        first = await runs(base_settings)
        ran = received_ticks(receiver)
        assert len(ran) >= 3
        assert set(ran.values()) == {1}, ran  # no tick twice
        done = {row["tick"].isoformat() for row in first if row["status"] == "done"}
        assert done == set(ran)
        assert all(row["status"] == "done" for row in first)

        await asyncio.sleep(5)  # every gateway down: two ticks or more pass
        again = await asyncio.to_thread(start_server, env, free_port(), log_file=logs[0])
        await asyncio.sleep(4)
        await asyncio.to_thread(stop_server, again)
        after = await runs(base_settings)
        missed = [row["tick"].isoformat() for row in after if row["status"] == "missed"]
        assert len(missed) >= 2
        ran_after = received_ticks(receiver)
        assert not set(missed) & set(ran_after)  # reported, never run late
        assert set(ran_after.values()) == {1}
        assert max(ran_after) > max(missed)  # and the schedule went on
