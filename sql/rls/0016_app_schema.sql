-- The operator's own schema: policy presets for enable_tenancy, functions in api callable
-- through the data API (RPC), and a separate history for the operator's app migrations.

-- App migrations (ORGBASE_APP_MIGRATIONS_DIR) keep their own history: their numbers never
-- collide with orgbase's.
CREATE TABLE IF NOT EXISTS orgbase.app_migrations (
    version text PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- Which preset a tenant table uses (the linter and the org purge read it).
ALTER TABLE orgbase.tenant_tables ADD COLUMN policy text NOT NULL DEFAULT 'org'
    CHECK (policy IN ('org', 'owner_private', 'admin_write', 'shared_read'));

-- Functions the migration owner creates in api are callable by the tenant role. (PUBLIC's
-- EXECUTE is a global default that a schema's defaults cannot take away: the app
-- migration runner revokes it for the length of each app migration.)
ALTER DEFAULT PRIVILEGES IN SCHEMA api GRANT EXECUTE ON FUNCTIONS TO orgbase_api;

-- The presets' write and read conditions, on the verified context (each sub-select runs
-- once per statement):
--   org            viewers read; members write their own rows; admins and owners every row
--   owner_private  a row is seen and changed by its creator, and by the org's admins
--   admin_write    everyone in the org reads; only admins and owners write
--   shared_read    a reference table without org: every org reads, only operators write
--                  (through migrations or SQL as the owner; the tenant role has SELECT only)
CREATE OR REPLACE FUNCTION orgbase.apply_tenancy_preset(target regclass, preset text)
    RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    in_org text := $$org_id = (SELECT c.org FROM orgbase.context c)$$;
    is_admin text := $$(SELECT c.rank FROM orgbase.context c) >= 3$$;
    is_writer text := $$(SELECT c.rank FROM orgbase.context c) >= 2$$;
    is_creator text := $$created_by = (SELECT c.usr FROM orgbase.context c)$$;
    creator_ok text := $$(created_by IS NULL OR created_by = (SELECT c.usr FROM orgbase.context c)
        OR orgbase.is_member(org_id, created_by))$$;
    read_if text;
    write_if text;
BEGIN
    IF preset = 'owner_private' THEN
        read_if := format('(%s AND (%s OR %s))', in_org, is_admin, is_creator);
        write_if := format('(%s AND (%s OR (%s AND %s)))', in_org, is_admin, is_writer, is_creator);
    ELSIF preset = 'admin_write' THEN
        read_if := format('(%s)', in_org);
        write_if := format('(%s AND %s)', in_org, is_admin);
    ELSE
        RAISE EXCEPTION 'apply_tenancy_preset: unknown preset %', preset;
    END IF;
    EXECUTE format('DROP POLICY IF EXISTS tenant_select ON %s', target);
    EXECUTE format('DROP POLICY IF EXISTS tenant_insert ON %s', target);
    EXECUTE format('DROP POLICY IF EXISTS tenant_update ON %s', target);
    EXECUTE format('DROP POLICY IF EXISTS tenant_delete ON %s', target);
    EXECUTE format('CREATE POLICY tenant_select ON %s FOR SELECT TO orgbase_api USING %s',
        target, read_if);
    EXECUTE format('CREATE POLICY tenant_insert ON %s FOR INSERT TO orgbase_api WITH CHECK (%s AND %s)',
        target, write_if, creator_ok);
    EXECUTE format('CREATE POLICY tenant_update ON %s FOR UPDATE TO orgbase_api USING %s WITH CHECK %s',
        target, write_if, write_if);
    EXECUTE format('CREATE POLICY tenant_delete ON %s FOR DELETE TO orgbase_api USING %s',
        target, write_if);
END
$fn$;
REVOKE ALL ON FUNCTION orgbase.apply_tenancy_preset(regclass, text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION orgbase.enable_shared_read(target regclass) RETURNS void
    LANGUAGE plpgsql AS $fn$
DECLARE
    rel_name text;
    rel_schema text;
BEGIN
    SELECT c.relname, n.nspname INTO rel_name, rel_schema
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.oid = target AND c.relkind IN ('r', 'p');
    -- Every org reads every row: a table holding org rows must never become one.
    IF EXISTS (SELECT 1 FROM pg_attribute
               WHERE attrelid = target AND attname = 'org_id' AND NOT attisdropped) THEN
        RAISE EXCEPTION 'enable_tenancy: % has org_id; shared_read is for reference tables without org rows', target
            USING HINT = 'create a separate table for the shared rows';
    END IF;
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', target);
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', target);
    EXECUTE format('DROP POLICY IF EXISTS tenant_select ON %s', target);
    EXECUTE format('DROP POLICY IF EXISTS tenant_insert ON %s', target);
    EXECUTE format('DROP POLICY IF EXISTS tenant_update ON %s', target);
    EXECUTE format('DROP POLICY IF EXISTS tenant_delete ON %s', target);
    -- Any verified context (a member of some org) reads; nobody writes through the API.
    EXECUTE format($$CREATE POLICY tenant_select ON %s FOR SELECT TO orgbase_api
        USING ((SELECT c.rank FROM orgbase.context c) >= 1)$$, target);
    EXECUTE format('REVOKE ALL ON %s FROM orgbase_api', target);
    EXECUTE format('GRANT SELECT ON %s TO orgbase_api', target);
    INSERT INTO orgbase.tenant_tables (schema_name, table_name, policy)
    VALUES (rel_schema, rel_name, 'shared_read')
    ON CONFLICT (schema_name, table_name) DO UPDATE SET policy = 'shared_read';
END
$fn$;
REVOKE ALL ON FUNCTION orgbase.enable_shared_read(regclass) FROM PUBLIC;

-- enable_tenancy(table) keeps its meaning (the org preset); a preset is named with
-- enable_tenancy(table, policy => 'owner_private'). Running it again switches presets.
DROP FUNCTION orgbase.enable_tenancy(regclass);
CREATE FUNCTION orgbase.enable_tenancy(target regclass, policy text DEFAULT 'org')
    RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
    IF policy NOT IN ('org', 'owner_private', 'admin_write', 'shared_read') THEN
        RAISE EXCEPTION 'enable_tenancy: unknown policy %', policy
            USING HINT = 'one of org, owner_private, admin_write, shared_read';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_class WHERE oid = target AND relkind IN ('r', 'p')) THEN
        RAISE EXCEPTION 'enable_tenancy: % is not a table', target;
    END IF;
    IF policy = 'shared_read' THEN
        PERFORM orgbase.enable_shared_read(target);
    ELSE
        PERFORM orgbase.enable_tenancy_base(target);
        PERFORM orgbase.install_audit_trigger(target);
        IF policy <> 'org' THEN
            PERFORM orgbase.apply_tenancy_preset(target, policy);
        END IF;
        UPDATE orgbase.tenant_tables t SET policy = enable_tenancy.policy
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.oid = target AND t.schema_name = n.nspname AND t.table_name = c.relname;
    END IF;
    PERFORM pg_notify('orgbase_schema', 'tenancy');
END
$fn$;
REVOKE ALL ON FUNCTION orgbase.enable_tenancy(regclass, text) FROM PUBLIC;
