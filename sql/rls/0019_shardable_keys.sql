-- Keep tenant tables shardable by org_id (docs/scaling.md): on Citus a distributed table
-- can only enforce a unique constraint that includes its distribution column. A tenant
-- table's uniqueness is per org anyway: UNIQUE (email) across orgs would also tell one org
-- that another holds a value. So enable_tenancy now
--   - rewrites a UNIQUE constraint without org_id into UNIQUE (org_id, ...) (same name);
--   - refuses a unique index without org_id that is not a constraint (an expression or
--     partial index it cannot safely rewrite), and a UNIQUE constraint without org_id that
--     a foreign key depends on, naming what to change.
-- Primary keys are left alone (a surrogate key is unique on its own); the move to Citus
-- widens them to (org_id, ...) then, as docs/scaling.md describes.

CREATE OR REPLACE FUNCTION orgbase.scope_unique_keys_to_org(target regclass) RETURNS void
    LANGUAGE plpgsql AS $fn$
DECLARE
    org_attnum smallint;
    item record;
    columns text;
BEGIN
    SELECT a.attnum INTO org_attnum FROM pg_attribute a
    WHERE a.attrelid = target AND a.attname = 'org_id' AND NOT a.attisdropped;
    IF org_attnum IS NULL THEN
        RAISE EXCEPTION 'scope_unique_keys_to_org: % has no org_id column', target;
    END IF;

    -- Unique indexes that are not the primary key and do not contain org_id.
    FOR item IN
        SELECT i.indexrelid, i.indexrelid::regclass AS index_name, c.oid AS constraint_oid,
               c.conname, c.contype
        FROM pg_index i
        LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = target
                                 AND c.contype IN ('u', 'x')
        WHERE i.indrelid = target AND i.indisunique AND NOT i.indisprimary
          AND NOT (org_attnum = ANY (i.indkey::smallint[]))
    LOOP
        IF item.constraint_oid IS NULL OR item.contype <> 'u' THEN
            RAISE EXCEPTION 'enable_tenancy: the unique index % of % does not include org_id',
                item.index_name, target
                USING HINT = 'tenant tables are unique per org: create it as UNIQUE (org_id, ...)',
                      ERRCODE = 'invalid_table_definition';
        END IF;
        IF EXISTS (SELECT 1 FROM pg_constraint f
                   WHERE f.contype = 'f' AND f.conindid = item.indexrelid) THEN
            RAISE EXCEPTION 'enable_tenancy: a foreign key references %.% (without org_id)',
                target, item.conname
                USING HINT = 'reference (org_id, ...) instead: make the key UNIQUE (org_id, ...) first',
                      ERRCODE = 'invalid_table_definition';
        END IF;
        SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.ord) INTO columns
        FROM pg_constraint c
        CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
        WHERE c.oid = item.constraint_oid;
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', target, item.conname);
        EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I UNIQUE (org_id, %s)',
            target, item.conname, columns);
    END LOOP;
END
$fn$;
REVOKE ALL ON FUNCTION orgbase.scope_unique_keys_to_org(regclass) FROM PUBLIC;

-- The wrapper of 0016 (policy presets) with the unique keys scoped to the org; reference
-- tables (shared_read) have no org_id and are left as they are.
CREATE OR REPLACE FUNCTION orgbase.enable_tenancy(target regclass, policy text DEFAULT 'org')
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
        PERFORM orgbase.scope_unique_keys_to_org(target);
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
