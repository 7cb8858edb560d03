"""``POST /v1/orgs/{org_id}/exports``: an owner downloads the org's archive (the archive of
``orgbase org export``, docs/operations/export.md), audited as ``org.exported``.

Everything the org holds leaves with it, so it takes what security settings take: a person
(not an API key, not an impersonation) who is the org's owner, signed in with a second
factor (aal2). The archive is made while the request waits and answered whole (fine for
the orgs a request's time allows; larger ones use the command line).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from litestar import Response, post
from litestar.di import NamedDependency
from litestar.types import ControllerRouterHandler

from orgbase.core import audit, rbac
from orgbase.core.audit import AuditEvent
from orgbase.core.context import OrgContext, RequestMeta
from orgbase.core.resources import Resources
from orgbase.core.settings import Settings
from orgbase.platform.org_transfer import export_org

Ctx = NamedDependency[OrgContext]
Meta = NamedDependency[RequestMeta]


@post(
    "/v1/orgs/{org_id:uuid}/exports",
    tags=["orgs"],
    summary="Download the org's archive (owners, with a second factor)",
    status_code=200,
    media_type="application/gzip",
)
async def export_archive(
    ctx: Ctx,
    meta: Meta,
    gateway_settings: NamedDependency[Settings],
    resources: NamedDependency[Resources],
) -> Response[bytes]:
    rbac.require_security_admin(ctx, "exporting the org", minimum="owner")
    with tempfile.TemporaryDirectory(prefix="orgbase-export-") as work:
        path = Path(work) / "org.tar.gz"
        manifest = await export_org(gateway_settings, ctx.org_id, path)
        body = path.read_bytes()
    files = len(manifest["files"])
    async with resources.db.system_connection() as connection:
        event = AuditEvent.in_org(
            ctx, meta, "org.exported", details={"files": files, "bytes": len(body)}
        )
        await audit.record(connection, event)
    name = f"org-{ctx.org_id}.tar.gz"
    return Response(
        body,
        media_type="application/gzip",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


export_handlers: list[ControllerRouterHandler] = [export_archive]
