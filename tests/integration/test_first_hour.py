"""What a newcomer meets in the first hour, through a real `orgbase` command and process:
links that point at the port the gateway serves, a quiet fresh start, the CLI finding the
local stack's settings, and an insert that generated clients can read."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from litestar.testing import AsyncTestClient

from devstack import LocalStack
from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp
from orgbase.platform.demo import seed
from tests.support.http import org_member
from tests.support.processes import free_port, start_server, stop_server
from tests.support.stack import STATE_DIR, server_env
from tests.support.waiting import eventually

ORGBASE = str(Path(sys.executable).parent / "orgbase")


@pytest.fixture(scope="module")
def fresh_gateway(stack: LocalStack, base_settings: Settings) -> Iterator[tuple[str, Path]]:
    """A gateway started with `--port` only (no public URL set), and its log file."""
    port = free_port()
    log_file = STATE_DIR / "first_hour_server.log"
    env = server_env(stack)
    env.pop("ORGBASE_TENANCY_PUBLIC_URL", None)
    process = start_server(env, port, log_file=log_file)
    try:
        yield f"http://127.0.0.1:{port}", log_file
    finally:
        stop_server(process)
    del base_settings  # asked for the test database it makes


def test_links_point_at_the_port_the_gateway_serves(fresh_gateway: tuple[str, Path]) -> None:
    base, _ = fresh_gateway
    # A mailed link's landing without a redirect_to goes to the public URL.
    answer = httpx.get(f"{base}/auth/v1/verify?token=nope&type=signup", follow_redirects=False)
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"].startswith(f"{base}#"), answer.headers["location"]


async def test_a_fresh_start_says_nothing_of_an_outage(fresh_gateway: tuple[str, Path]) -> None:
    _, log_file = fresh_gateway

    async def resynced() -> list[str]:
        lines = log_file.read_text().splitlines()
        # The start-up check's line, worded either way, ends the start-up's cache work.
        return lines if any('"event":"caches ' in line for line in lines) else []

    lines = await eventually(resynced, what="the start-up cache check in the log")
    words = ("outage", "dropped", "failed")
    alarming = [line for line in lines if any(word in line for word in words)]
    assert alarming == []


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORGBASE_")}
    return subprocess.run(
        [ORGBASE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_lint_reads_the_local_stack_settings_in_a_checkout(
    stack: LocalStack, tmp_path: Path
) -> None:
    checkout = tmp_path / "checkout"
    (checkout / ".orgbase").mkdir(parents=True)
    settings = {k: v for k, v in server_env(stack).items() if k.startswith("ORGBASE_")}
    (checkout / ".orgbase" / "services.env").write_text(
        "".join(f"{key}={value}\n" for key, value in settings.items())
    )
    linted = _cli("lint", "--format", "json", cwd=checkout)
    assert "reading .orgbase/services.env" in linted.stderr
    assert "is required" not in linted.stderr
    assert "findings" in json.loads(linted.stdout)  # stdout stays machine-readable

    elsewhere = _cli("lint", cwd=tmp_path)
    assert elsewhere.returncode == 1
    assert ".orgbase/services.env" in elsewhere.stderr
    assert "--env-file" in elsewhere.stderr


def test_version_and_seed_demo_help(tmp_path: Path) -> None:
    version = _cli("--version", cwd=tmp_path)
    assert version.returncode == 0
    assert version.stdout.startswith("orgbase, version ")
    helped = _cli("seed-demo", "--help", cwd=tmp_path)
    assert "orgbase migrate" in helped.stdout
    assert "creates the example table" not in helped.stdout
    assert "and the example table" not in helped.stdout


async def test_an_insert_without_representation_has_no_body_and_no_json_type(
    client: AsyncTestClient[OrgbaseApp],
) -> None:
    _, _, headers = await org_member(client)
    created = await client.post("/v1/db/tasks", headers=headers, json={"title": "minimal"})
    assert created.status_code == 201, created.text
    assert created.content == b""
    assert "content-type" not in created.headers  # as PostgREST: nothing to parse
    represented = await client.post(
        "/v1/db/tasks",
        headers={**headers, "Prefer": "return=representation"},
        json={"title": "shown"},
    )
    assert represented.headers["content-type"].startswith("application/json")
    assert represented.json()[0]["title"] == "shown"


async def test_a_supabase_sign_in_of_the_demo_user_lands_in_the_demo_org(
    client: AsyncTestClient[OrgbaseApp], settings: Settings, stack: LocalStack
) -> None:
    """The README's supabase-js step signs in without choosing an org: seed-demo makes the
    demo org the user's last used one, where a GoTrue sign-in enters."""
    email = f"demo-{uuid.uuid4().hex[:8]}@orgbase.local"
    org_id = await seed(settings.database.migration_url, email, "demo-password-2026")
    signed_in = await client.post(
        "/auth/v1/token?grant_type=password",
        headers={"apikey": stack.secrets["publishable"]},
        json={"email": email, "password": "demo-password-2026"},
    )
    assert signed_in.status_code == 200, signed_in.text
    token = signed_in.json()["access_token"]
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["org"] == str(org_id)
