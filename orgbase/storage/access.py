"""Who a storage operation acts as, in PostgreSQL terms.

A caller with a credential enters its org through the verified context (row-level
security and the bucket's preset decide); a signed URL or a public link has no credential
of the org, so its statements run as the storage schema's SECURITY DEFINER functions,
which check what the grant allows (the gateway checked the grant's HMAC first)."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from orgbase.core.context import OrgContext
from orgbase.core.postgres import TenantEntry


@dataclass(frozen=True, slots=True)
class Access:
    org: UUID
    entry: TenantEntry | None
    """None: a grant (signed URL, public link), not a credential."""
    owner: UUID | None
    """Who owns what this access stores (the user or API key; a grant's signer)."""
    ctx: OrgContext | None = None

    @classmethod
    def of(cls, ctx: OrgContext) -> Access:
        return cls(ctx.org_id, TenantEntry.for_context(ctx), ctx.user_id or ctx.key_id, ctx)

    @classmethod
    def granted(cls, org: UUID, signer: UUID | None) -> Access:
        return cls(org, None, signer)
