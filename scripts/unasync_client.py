"""Write orgbase/client/sync_client.py from async_client.py (the unasync pattern).

The sync client is the async one without ``await``: generating it keeps the two APIs
identical. tests/unit/test_client_generated.py fails when they drift; run
``.venv/bin/python scripts/unasync_client.py`` after changing the async client.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

CLIENT = Path(__file__).resolve().parents[1] / "orgbase" / "client"
RENAMES = {
    "AsyncOrgbase": "Orgbase",
    "AsyncClientBase": "SyncClientBase",
    "AsyncAuth": "SyncAuth",
    "AsyncOrgs": "SyncOrgs",
    "AsyncDatabase": "SyncDatabase",
    "httpx.AsyncClient": "httpx.Client",
    "__aenter__": "__enter__",
    "__aexit__": "__exit__",
    "aclose": "close",
}


def unasync(source: str) -> str:
    text = source.replace(
        '"""The asynchronous client."""',
        '"""The synchronous client: generated from async_client.py (scripts/unasync_client.py)."""',
    )
    for old, new in RENAMES.items():
        text = text.replace(old, new)
    text = re.sub(r"\basync def ", "def ", text)
    text = re.sub(r"\bawait ", "", text)
    # Renamed imports may need sorting again; then the lines are formatted.
    text = _ruff(text, "check", "--select", "I", "--fix", "--quiet")
    return _ruff(text, "format")


def _ruff(text: str, *command: str) -> str:
    ruff = Path(sys.executable).parent / "ruff"
    stdin_name = ("--stdin-filename", str(CLIENT / "sync_client.py"), "-")
    return subprocess.run(  # noqa: S603 - our own ruff on our own source
        [str(ruff), *command, *stdin_name],
        input=text,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def main() -> int:
    generated = unasync((CLIENT / "async_client.py").read_text())
    target = CLIENT / "sync_client.py"
    if "--check" in sys.argv:
        return 0 if target.read_text() == generated else 1
    target.write_text(generated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
