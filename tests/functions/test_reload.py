"""With reload on (dev mode's default), a changed function is served from its new code
within a few seconds, by new workers; a new module becomes a new function."""

from __future__ import annotations

from pathlib import Path

from litestar.testing import AsyncTestClient

from orgbase.core.settings import Settings
from orgbase.platform.app import create_app
from tests.functions.conftest import F, person
from tests.support.stack import with_overrides
from tests.support.waiting import eventually

VERSION = """
config = {{"access": "members"}}


async def handler(request, ctx):
    return {{"version": {n}}}
"""


async def test_a_changed_function_is_reloaded(base_settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "functions"
    folder.mkdir()
    (folder / "hello.py").write_text(VERSION.format(n=1))
    settings = with_overrides(
        base_settings,
        app={"functions_dir": str(folder)},
        functions={"reload": True, "workers": 1},
    )
    async with AsyncTestClient(app=create_app(settings)) as client:
        alice = await person(client)
        first = await client.get(f"{F}/hello", headers=alice["headers"])
        assert first.json() == {"version": 1}
        (folder / "hello.py").write_text(VERSION.format(n=2))
        (folder / "second.py").write_text(VERSION.format(n=3))

        async def reloaded() -> bool:
            answer = await client.get(f"{F}/hello", headers=alice["headers"])
            return bool(answer.json() == {"version": 2})

        await eventually(reloaded, within=15, what="the new code served")
        second = await client.get(f"{F}/second", headers=alice["headers"])
        assert second.json() == {"version": 3}
