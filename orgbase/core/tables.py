"""Who owns each table: the one area whose SQL may read or write it.

An area names in SQL only the tables it owns; it reaches another area's data by asking
that area through a protocol in ``core/`` which the gateway wires (``core/accounts.py``,
``core/orgs.py``, ``core/mail.py``). ``tests/unit/test_table_owners.py`` reads every
string of ``orgbase/`` (f-strings and concatenations too) and fails when a module names a
table its area does not own, or when a table of the schema has no owner here.

Areas are the packages under ``orgbase/`` (``services.postgres`` and its siblings each
count as one). ``platform`` is the wiring layer and owns only the migrations' history and
the demo's example table: its commands (``seed-demo``, ``admin create``) go through the
owners' functions like everyone else.

The migrations (``sql/rls/``, ``migrations/``) are the schema's definition and are not
checked: a function or trigger there (the org entries, ``webhook_owner_in_authority``,
the SSO bindings) is the database's own, a deliberate boundary that may span tables.
Calling such a function from Python names no table.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Owner:
    area: str
    why: str


def _owned(area: str, why: str, *tables: str) -> dict[str, Owner]:
    return {table: Owner(area, why) for table in tables}


OWNERS: dict[str, Owner] = {
    **_owned("auth", "accounts, and what proves who they are", "orgbase.users"),
    **_owned(
        "auth",
        "sign-ins: sessions, their tokens, and the proofs that open or raise them",
        "orgbase.sessions",
        "orgbase.refresh_tokens",
        "orgbase.identities",
        "orgbase.auth_codes",
        "orgbase.mfa_factors",
        "orgbase.mfa_challenges",
        "orgbase.mfa_recovery_codes",
    ),
    **_owned(
        "auth",
        "API keys are credentials (the request-auth cache, their revocation journal)",
        "orgbase.api_keys",
        "orgbase.credential_revocations",
    ),
    **_owned(
        "tenants",
        "orgs and who is in them with which role",
        "orgbase.orgs",
        "orgbase.memberships",
        "orgbase.invitations",
    ),
    **_owned(
        "tenants",
        "an org's own settings and sign-in policy (its SSO provider and domains)",
        "orgbase.org_settings",
        "orgbase.org_settings_history",
        "orgbase.org_sso",
        "orgbase.org_sso_domains",
    ),
    **_owned(
        "tenants",
        "a platform admin's read-only look into an org (platform_admin.py)",
        "orgbase.impersonations",
    ),
    **_owned(
        "tenants",
        "the mail queue and its sender; others queue through core.mail.Outbox",
        "orgbase.outbox",
    ),
    **_owned(
        "webhooks",
        "an org's endpoints and the deliveries owed to them",
        "orgbase.webhook_endpoints",
        "orgbase.webhook_deliveries",
    ),
    **_owned(
        "limits",
        "per-org limits and metered usage",
        "orgbase.org_limits",
        "orgbase.org_usage",
    ),
    **_owned(
        "core",
        "every area records its changes through core.audit (one writer, one reader)",
        "orgbase.audit_events",
    ),
    **_owned(
        "services.postgres",
        "the data API's register of tenant tables (schema cache, purge, linter)",
        "orgbase.tenant_tables",
    ),
    **_owned(
        "platform",
        "the signing key of the org context: read only by the migrations' functions",
        "orgbase.context_key",
    ),
    **_owned(
        "platform",
        "`orgbase migrate`'s history of orgbase's and the app's migrations",
        "orgbase.schema_migrations",
        "orgbase.app_migrations",
    ),
    **_owned(
        "platform",
        "one-time grants of `orgbase org export|import`: made and used only by the"
        " migrations' functions (org_transfer_grant, enter_org_transfer)",
        "orgbase.org_transfers",
    ),
    **_owned(
        "platform",
        "the example app's table, which `orgbase seed-demo` fills",
        "api.items",
    ),
}

EXCEPTIONS: dict[tuple[str, str], str] = {}
"""(module, table) -> why that module may name a table its area does not own. Empty: keep
it so, or give each entry its reason."""
