"""Reading the local mail catcher through the gateway (GET /v1/dev/mail, dev mode)."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx

CODE = re.compile(r"Your code: (\d{6})")
LINK = re.compile(r"(http\S+/auth/v1/verify\?\S+)")


def wait_for_mail(
    base_url: str, to: str, subject: str | None = None, *, after: int = 0, within: float = 20.0
) -> dict[str, Any]:
    """The newest message to ``to`` (with ``subject``), once more than ``after`` arrived."""
    deadline = time.monotonic() + within
    while True:
        response = httpx.get(f"{base_url}/v1/dev/mail", params={"to": to}, timeout=5)
        assert response.status_code == 200, response.text
        messages = [m for m in response.json() if subject is None or m["subject"] == subject]
        if len(messages) > after:
            found: dict[str, Any] = messages[0]
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"no mail to {to} ({subject}) within {within}s")
        time.sleep(0.2)


def mail_count(base_url: str, to: str, subject: str | None = None) -> int:
    response = httpx.get(f"{base_url}/v1/dev/mail", params={"to": to}, timeout=5)
    assert response.status_code == 200, response.text
    return len([m for m in response.json() if subject is None or m["subject"] == subject])


def code_in(message: dict[str, Any]) -> str:
    match = CODE.search(message["body"])
    assert match, message["body"]
    return match.group(1)


def link_in(message: dict[str, Any]) -> str:
    match = LINK.search(message["body"])
    assert match, message["body"]
    return match.group(1)
