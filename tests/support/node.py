"""Supabase's JavaScript clients, unchanged, run by node (tests/storage_js, installed from
its lock file by scripts/test_packages.sh): a script prints one JSON line of what it saw."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "storage_js"
SUPABASE_JS = SCRIPTS / "node_modules" / "@supabase" / "supabase-js"


async def run_script(name: str, **env: str) -> dict[str, Any]:
    """Run ``tests/storage_js/<name>`` with ``env`` added; its last line, decoded. Skips
    when node or the installed clients are missing; fails with the script's stderr."""
    if shutil.which("node") is None or not SUPABASE_JS.exists():
        pytest.skip("node and tests/storage_js/node_modules (scripts/test_packages.sh) needed")
    done = await asyncio.to_thread(
        subprocess.run,
        ["node", str(SCRIPTS / name)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return seen
