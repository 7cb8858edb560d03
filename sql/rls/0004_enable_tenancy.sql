-- orgbase.enable_tenancy('api.table') turns an operator's table into a tenant table:
--   org_id     uuid NOT NULL DEFAULT the current org (clients cannot write another org:
--              every write policy has WITH CHECK)
--   created_by uuid DEFAULT the current user
--   an index led by org_id (then the primary key), ENABLE + FORCE row-level security,
--   the standard policies (viewers read; members insert and change their own rows; admins
--   and owners change every row of their org) and the grants to orgbase_api.
-- Policies compare against (SELECT orgbase.current_org_id()): the sub-select runs once per
-- statement, not once per row. Call it on a new or empty table (existing rows have no org).
-- Running it again refreshes the policies.

CREATE TABLE orgbase.tenant_tables (
    schema_name text NOT NULL,
    table_name text NOT NULL,
    enabled_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schema_name, table_name)
);
GRANT SELECT ON orgbase.tenant_tables TO orgbase_api, orgbase_system;

CREATE OR REPLACE FUNCTION orgbase.enable_tenancy(target regclass) RETURNS void
    LANGUAGE plpgsql AS $fn$
DECLARE
    rel_name text;
    rel_schema text;
    pk_columns text;
    seq regclass;
    can_write text := $$(org_id = (SELECT orgbase.current_org_id()) AND (
        (SELECT orgbase.current_role_rank()) >= 3
        OR ((SELECT orgbase.current_role_rank()) = 2
            AND created_by = (SELECT orgbase.current_user_id()))))$$;
BEGIN
    SELECT c.relname, n.nspname INTO rel_name, rel_schema
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.oid = target AND c.relkind IN ('r', 'p');
    IF rel_name IS NULL THEN
        RAISE EXCEPTION 'enable_tenancy: % is not a table', target;
    END IF;

    EXECUTE format('ALTER TABLE %s ADD COLUMN IF NOT EXISTS org_id uuid', target);
    EXECUTE format('ALTER TABLE %s ALTER COLUMN org_id SET DEFAULT orgbase.current_org_id()', target);
    EXECUTE format('ALTER TABLE %s ALTER COLUMN org_id SET NOT NULL', target);
    EXECUTE format('ALTER TABLE %s ADD COLUMN IF NOT EXISTS created_by uuid', target);
    EXECUTE format('ALTER TABLE %s ALTER COLUMN created_by SET DEFAULT orgbase.current_user_id()', target);

    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.ord) INTO pk_columns
    FROM pg_index i
    CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
    WHERE i.indrelid = target AND i.indisprimary;
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %s (org_id%s)',
        left(rel_name, 50) || '_org_id_idx', target,
        CASE WHEN pk_columns IS NULL THEN '' ELSE ', ' || pk_columns END);

    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', target);
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', target);

    EXECUTE format('DROP POLICY IF EXISTS tenant_select ON %s', target);
    EXECUTE format('DROP POLICY IF EXISTS tenant_insert ON %s', target);
    EXECUTE format('DROP POLICY IF EXISTS tenant_update ON %s', target);
    EXECUTE format('DROP POLICY IF EXISTS tenant_delete ON %s', target);
    EXECUTE format($$CREATE POLICY tenant_select ON %s FOR SELECT TO orgbase_api
        USING (org_id = (SELECT orgbase.current_org_id())
               AND (SELECT orgbase.current_role_rank()) >= 1)$$, target);
    EXECUTE format('CREATE POLICY tenant_insert ON %s FOR INSERT TO orgbase_api WITH CHECK %s',
        target, can_write);
    EXECUTE format('CREATE POLICY tenant_update ON %s FOR UPDATE TO orgbase_api USING %s WITH CHECK %s',
        target, can_write, can_write);
    EXECUTE format('CREATE POLICY tenant_delete ON %s FOR DELETE TO orgbase_api USING %s',
        target, can_write);

    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO orgbase_api', target);
    -- serial columns need their sequence; identity columns do not, but it does no harm.
    FOR seq IN
        SELECT d.objid::regclass FROM pg_depend d JOIN pg_class s ON s.oid = d.objid
        WHERE d.refobjid = target AND s.relkind = 'S' AND d.deptype IN ('a', 'i')
    LOOP
        EXECUTE format('GRANT USAGE, SELECT ON SEQUENCE %s TO orgbase_api', seq);
    END LOOP;

    INSERT INTO orgbase.tenant_tables (schema_name, table_name)
    VALUES (rel_schema, rel_name)
    ON CONFLICT (schema_name, table_name) DO NOTHING;
END
$fn$;

REVOKE ALL ON FUNCTION orgbase.enable_tenancy(regclass) FROM PUBLIC;
