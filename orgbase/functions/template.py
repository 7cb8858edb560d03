"""``orgbase functions new NAME``: a function module and its test, from a template."""

from __future__ import annotations

from pathlib import Path

from orgbase.functions.spec import NAME


class TemplateError(ValueError):
    """The name is not a function's, or its files exist already."""


FUNCTION = '''"""{name}: what it does, in a sentence (it is served at /functions/v1/{name})."""

from __future__ import annotations

from typing import Any

from orgbase.functions.runtime import FunctionError

# Who may call it and how (every key is optional; docs/functions.md lists them all).
config = {{
    "access": "members",  # "public": the publishable key is enough
    "min_role": "viewer",
    "methods": ["POST"],
    "timeout_seconds": 10,
}}


async def handler(request: Any, ctx: Any) -> Any:
    """``request``: method, path, query, headers, body (``request.json()``); ``ctx``: the
    caller (``ctx.user_id``, ``ctx.org_id``, ``ctx.role``) and what it may reach as them
    (``ctx.db``, ``ctx.kv``, ``ctx.http``, ``ctx.log``, ``ctx.secrets``)."""
    body = request.json() if request.body else {{}}
    name = body.get("name", "world")
    if not isinstance(name, str) or len(name) > 100:
        raise FunctionError(400, "invalid_name", "name is a text of at most 100 characters")
    ctx.log.info("greeting", name=name)
    return {{"message": f"Hello, {{name}}!", "org_id": ctx.org_id}}
'''

TEST = '''"""Tests of the function {name}: its handler, called as a worker calls it."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path

from orgbase.functions.testing import invoke

MODULE = Path(__file__).resolve().parents[1] / "{name}.py"


def _handler():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("{module}", MODULE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.handler


def test_it_greets_the_caller() -> None:
    status, _, body = asyncio.run(invoke(_handler(), json={{"name": "Ada"}}, org_id="org-1"))
    assert status == 200
    assert body == {{"message": "Hello, Ada!", "org_id": "org-1"}}


def test_it_refuses_a_bad_name() -> None:
    status, _, body = asyncio.run(invoke(_handler(), json={{"name": 42}}))
    assert (status, body["code"]) == (400, "invalid_name")
'''


def new_function(directory: Path, name: str) -> list[Path]:
    """Write ``directory/NAME.py`` and ``directory/tests/test_NAME.py``; their paths."""
    if not NAME.fullmatch(name):
        raise TemplateError(
            "a function's name is a lower-case letter, then lower-case letters, digits, _ or -"
        )
    module = directory / f"{name}.py"
    test = directory / "tests" / f"test_{name.replace('-', '_')}.py"
    for path in (module, test):
        if path.exists():
            raise TemplateError(f"{path} exists already")
    test.parent.mkdir(parents=True, exist_ok=True)
    module.write_text(FUNCTION.format(name=name))
    test.write_text(TEST.format(name=name, module=f"function_{name.replace('-', '_')}"))
    return [module, test]
