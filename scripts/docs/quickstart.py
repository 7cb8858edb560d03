"""Run the README's quickstart as a newcomer would paste it, so it cannot rot (`make check`).

The shell blocks marked ``<!-- make check runs this block -->`` run in one bash, in
order, against a gateway this script serves on a free port (the README's
``127.0.0.1:8000`` is replaced by it); the code blocks marked ``<!-- make check: the same
as FILE -->`` must equal that file, which a shell block runs. The README's relative links
must name files that exist. Expects the local stack up, migrated and seeded (the
Makefile does that first).

    .venv/bin/python -m scripts.docs.quickstart
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
ENV_FILE = ROOT / ".orgbase" / "services.env"
RUN_MARK = "<!-- make check runs this block -->"
SAME_MARK = re.compile(r"<!-- make check: the same as (\S+) -->")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
README_PORT = "127.0.0.1:8000"
START_WITHIN = 60.0


@dataclass(frozen=True)
class Block:
    language: str
    text: str
    mark: str


def blocks(readme: str) -> list[Block]:
    """Every fenced block with the marker comment on the line before it ('' if none)."""
    found = []
    for match in FENCE.finditer(readme):
        before = readme[: match.start()].rstrip("\n").rsplit("\n", 1)[-1].strip()
        found.append(
            Block(match.group(1), match.group(2), before if before.startswith("<!--") else "")
        )
    return found


def problems(readme: str) -> list[str]:
    """What is wrong before anything runs: a broken link, a block unlike its file."""
    wrong = []
    for target in LINK.findall(readme):
        if "://" not in target and not (ROOT / target).exists():
            wrong.append(f"README links to {target}, which does not exist")
    for block in blocks(readme):
        same = SAME_MARK.fullmatch(block.mark)
        if same and (ROOT / same.group(1)).read_text() != block.text:
            wrong.append(f"the README's {block.language} block differs from {same.group(1)}")
    if not any(block.mark == RUN_MARK for block in blocks(readme)):
        wrong.append(f"no block of the README is marked {RUN_MARK}")
    return wrong


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _clean_env() -> dict[str, str]:
    """A newcomer's shell: no orgbase settings in the environment (the CLI reads the
    checkout's .orgbase/services.env), only the local stack's own variables."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("ORGBASE_") or k.startswith("ORGBASE_LOCAL_")
    }


def serve(port: int) -> subprocess.Popen[bytes]:
    orgbase = ROOT / ".venv" / "bin" / "orgbase"
    command = [str(orgbase), "serve", "--env-file", str(ENV_FILE), "--port", str(port)]
    with (ROOT / ".orgbase" / "quickstart_server.log").open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=_clean_env(), stdout=log, stderr=log)
    deadline = time.monotonic() + START_WITHIN
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    raise SystemExit("the quickstart's gateway did not start: see .orgbase/quickstart_server.log")


def run(readme: str) -> int:
    port = _free_port()
    script = "\n".join(b.text for b in blocks(readme) if b.mark == RUN_MARK)
    script = script.replace(README_PORT, f"127.0.0.1:{port}")
    gateway = serve(port)
    try:
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=ROOT,
            env=_clean_env(),
            timeout=600,
            check=False,
        )
    finally:
        gateway.terminate()
        gateway.wait(30)
    return done.returncode


def main() -> int:
    readme = README.read_text()
    wrong = problems(readme)
    for problem in wrong:
        print(f"quickstart: {problem}", file=sys.stderr)
    if wrong:
        return 1
    status = run(readme)
    print(f"quickstart: the README's blocks {'ran' if status == 0 else 'FAILED'}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
