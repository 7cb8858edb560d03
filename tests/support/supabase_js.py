"""Scripts of tests/supabase_js run by node: Supabase's JavaScript client (supabase-js
2.119), unchanged, installed from its lock file by scripts/test_packages.sh. A script reads
its inputs from the environment and prints one JSON line of what it saw."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

FOLDER = Path(__file__).resolve().parents[1] / "supabase_js"
MODULES = FOLDER / "node_modules" / "@supabase" / "supabase-js"


def need_node() -> None:
    if shutil.which("node") is None or not MODULES.exists():
        pytest.skip("node and tests/supabase_js/node_modules (scripts/test_packages.sh) needed")


async def run_script(name: str, **inputs: str) -> Any:
    """Run ``tests/supabase_js/<name>`` with ``inputs`` in its environment; its last line,
    decoded. Fails the test (with the script's stderr) when the script exits non-zero."""
    need_node()
    done = await asyncio.to_thread(
        subprocess.run,
        ["node", str(FOLDER / name)],
        env={**os.environ, **inputs},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
