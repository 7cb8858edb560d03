"""Migration 0020 (SSO domains proven per claim, SSO-bound memberships) over data written
in the layout before it: a verified domain (then the only claim of its domain), a pending
one, a member on the verified domain, one provisioned by the org's provider, one outside.
After it, every claim has its own token, the verified one is marked as a platform admin's
approval, two orgs may claim one domain, a second verified claim is refused, and the
memberships that must come through the org's SSO are bound."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import asyncpg
import pytest

from orgbase.platform.migrations import default_directory, migrate
from tests.integration.test_migrations import empty_database  # noqa: F401 - a fixture

FIRST_NEW = "0020"


def _before(tmp_path: Path) -> Path:
    """The shipped migrations before 0020."""
    directory = tmp_path / "before"
    directory.mkdir()
    for path in default_directory().glob("*.sql"):
        if path.name < FIRST_NEW:
            shutil.copy(path, directory / path.name)
    return directory


_OLD_LAYOUT = """
INSERT INTO orgbase.users (id, email) VALUES
    ('{owner}', 'owner@elsewhere.test'), ('{bob}', 'bob@corp.test'),
    ('{provisioned}', 'sso@corp.test'), ('{outside}', 'out@elsewhere.test'),
    ('{squatter}', 'squatter@attack.test');
INSERT INTO orgbase.orgs (id, name) VALUES ('{corp}', 'corp'), ('{squatters}', 'squatter');
INSERT INTO orgbase.memberships (org_id, user_id, role) VALUES
    ('{corp}', '{owner}', 'owner'), ('{corp}', '{bob}', 'member'),
    ('{corp}', '{provisioned}', 'viewer'), ('{corp}', '{outside}', 'member'),
    ('{squatters}', '{squatter}', 'owner');
INSERT INTO orgbase.org_sso_domains (domain, org_id, verified_at) VALUES
    ('corp.test', '{corp}', now()), ('pending.test', '{squatters}', NULL);
INSERT INTO orgbase.identities (user_id, provider, subject, email) VALUES
    ('{provisioned}', 'sso:{corp}', 'subject-1', 'sso@corp.test');
"""


async def test_claims_and_memberships_written_before_0020_read_back(
    empty_database: str,  # noqa: F811 - the imported fixture
    tmp_path: Path,
) -> None:
    await migrate(empty_database, _before(tmp_path))
    owner, bob, provisioned, outside, squatter = (uuid.uuid4() for _ in range(5))
    corp, squatters = uuid.uuid4(), uuid.uuid4()
    ids = {
        "owner": owner,
        "bob": bob,
        "provisioned": provisioned,
        "outside": outside,
        "squatter": squatter,
        "corp": corp,
        "squatters": squatters,
    }
    connection = await asyncpg.connect(empty_database)
    try:
        await connection.execute(_OLD_LAYOUT.format(**ids))  # (uuids made here)
    finally:
        await connection.close()

    applied = await migrate(empty_database)
    assert applied[0].startswith(FIRST_NEW)

    connection = await asyncpg.connect(empty_database)
    try:
        claims = await connection.fetch(
            "SELECT domain, org_id, token, verified_via, verified_at IS NOT NULL AS verified"
            " FROM orgbase.org_sso_domains ORDER BY domain"
        )
        assert [(c["domain"], c["verified"], c["verified_via"]) for c in claims] == [
            ("corp.test", True, "platform_admin"),
            ("pending.test", False, None),
        ]
        assert len({c["token"] for c in claims}) == 2
        assert all(len(c["token"]) >= 32 for c in claims)
        bound = await connection.fetch(
            "SELECT user_id FROM orgbase.memberships WHERE org_id = $1 AND sso_bound", corp
        )
        assert {r["user_id"] for r in bound} == {bob, provisioned}
        # Now a claim is per (org, domain): the squatter's pending claim of corp.test is
        # allowed, a second verified one is not.
        await connection.execute(
            "INSERT INTO orgbase.org_sso_domains (domain, org_id, token)"
            " VALUES ('corp.test', $1, repeat('a', 40))",
            squatters,
        )
        with pytest.raises(asyncpg.UniqueViolationError):
            await connection.execute(
                "UPDATE orgbase.org_sso_domains SET verified_at = now(),"
                " verified_via = 'platform_admin' WHERE org_id = $1 AND domain = 'corp.test'",
                squatters,
            )
    finally:
        await connection.close()
