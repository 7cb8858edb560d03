"""The sync SDK is generated from the async one; they must not drift apart."""

from __future__ import annotations

import subprocess
import sys

from tests.support.stack import ROOT


def test_sync_client_matches_the_async_client() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "unasync_client.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, "run scripts/unasync_client.py to regenerate sync_client.py"
