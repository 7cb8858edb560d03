"""``orgbase migration new NAME``: the next app migration file, from a template."""

from __future__ import annotations

import re
from pathlib import Path

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

TEMPLATE = """\
-- {file}: applied once by `orgbase migrate`, in its own transaction, after orgbase's
-- own migrations. Never edit it once applied (it is refused by checksum): add a new one.

-- A tenant table: enable_tenancy adds org_id (the caller's org) and created_by (the
-- caller), an index led by org_id, ENABLE + FORCE row-level security and the policies
-- of a preset: 'org' (viewers read, members change their own rows, admins every row),
-- 'owner_private' (rows seen by their creator and the org's admins), 'admin_write'
-- (everyone reads, admins write) or 'shared_read' (no org: every org reads, only
-- migrations write).
--
-- CREATE TABLE api.projects (
--     id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
--     name text NOT NULL,
--     created_at timestamptz NOT NULL DEFAULT now()
-- );
-- SELECT orgbase.enable_tenancy('api.projects', policy => 'org');
--
-- A child table: lead the foreign key with org_id, so a row can never point at another
-- org's parent (`orgbase lint` checks it).
--
-- CREATE TABLE api.tasks (
--     id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
--     project_id bigint NOT NULL,
--     title text NOT NULL
-- );
-- SELECT orgbase.enable_tenancy('api.tasks');
-- ALTER TABLE api.projects ADD UNIQUE (org_id, id);
-- ALTER TABLE api.tasks ADD FOREIGN KEY (org_id, project_id) REFERENCES api.projects (org_id, id);
--
-- A function, served at /v1/db/rpc/open_projects (GET too: it is STABLE). It runs as the
-- tenant role with the caller's context: row-level security applies inside. Keep it
-- SECURITY INVOKER (the default) and give it a fixed search_path.
--
-- CREATE FUNCTION api.open_projects(max_count int DEFAULT 20) RETURNS SETOF api.projects
--     LANGUAGE sql STABLE SET search_path = pg_catalog, api AS $$
--     SELECT * FROM api.projects ORDER BY created_at DESC LIMIT max_count
-- $$;
"""


class TemplateError(ValueError):
    pass


def next_version(directory: Path) -> int:
    numbers = [
        int(p.name.partition("_")[0])
        for p in directory.glob("*.sql")
        if p.name.partition("_")[0].isdigit()
    ]
    return max(numbers, default=0) + 1


def new_migration(directory: Path, name: str) -> Path:
    slug = name.strip().lower().replace("-", "_").replace(" ", "_")
    if not _NAME.match(slug):
        raise TemplateError(
            f"migration name {name!r}: use letters, digits and _ (starting with a letter)"
        )
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{next_version(directory):04d}_{slug}.sql"
    if path.exists():
        raise TemplateError(f"{path} exists")
    path.write_text(TEMPLATE.format(file=path.name))
    return path
