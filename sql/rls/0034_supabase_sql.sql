-- Supabase's SQL surface, so a Supabase app's migrations run unchanged:
--   the roles anon, authenticated and service_role (no login), which a request on an app
--   table (schema public) runs as: the data API switches to the caller's role with
--   set_config('role', ..., true) after the org entry, so `GRANT ... TO authenticated`
--   and `CREATE POLICY ... TO authenticated` mean what they mean in Supabase;
--   the schema auth: auth.uid(), auth.role(), auth.email(), auth.jwt() read the verified
--   context (orgbase.context, 0009), never a setting the tenant role can write
--   (request.jwt.claims and friends mean nothing here); auth.users, a copy of the
--   accounts without any credential, kept by a trigger, so `references auth.users` and
--   joins work;
--   orgbase.enable_tenancy on an app table adds org isolation as a RESTRICTIVE policy,
--   which combines (AND) with the app's own policies.
-- docs/supabase-sql.md explains the model.

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['anon', 'authenticated', 'service_role'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS', r);
        END IF;
        EXECUTE format('ALTER ROLE %I NOLOGIN NOSUPERUSER NOBYPASSRLS', r);
    END LOOP;
END
$$;

-- The tenant login may switch to the three roles (set_config('role')), but does not hold
-- their rights itself (NOINHERIT): an app's grants and policies apply to a request only
-- once it switched, i.e. only on app tables and only as the caller's role.
GRANT anon, authenticated, service_role TO orgbase_api;
ALTER ROLE orgbase_api NOINHERIT;

-- What the policies and the entry read, for the three roles too.
GRANT USAGE ON SCHEMA orgbase TO anon, authenticated, service_role;
GRANT SELECT ON orgbase.context TO anon, authenticated, service_role;
GRANT EXECUTE ON FUNCTION orgbase.context_proof(bytea, bytea, text), orgbase.context_binding(),
    orgbase.verified_context(), orgbase.claimed_org_id(), orgbase.claimed_user_id(),
    orgbase.is_member(uuid, uuid), orgbase.org_lock_key(uuid)
    TO anon, authenticated, service_role;

-- The role a request on an app table runs as, from the verified context: a user's
-- session (or an admin's read-only impersonation) is authenticated, an org's API key is
-- service_role (it still stays inside its org: nothing here bypasses row-level security).
CREATE FUNCTION orgbase.app_role(p_kind text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_kind WHEN 'session' THEN 'authenticated' WHEN 'impersonation' THEN 'authenticated'
                       WHEN 'api_key' THEN 'service_role' END
$$;
GRANT EXECUTE ON FUNCTION orgbase.app_role(text) TO orgbase_api, anon, authenticated, service_role;

-- A statement after the entry (in the same transaction) reads the role the entry set; the
-- arguments keep the entry's parameters ($1..$4) so a query's own still start at $5.
CREATE FUNCTION orgbase.entered_role(p1 uuid, p2 text, p3 uuid, p4 text) RETURNS text
    LANGUAGE sql STABLE AS $$ SELECT c.role FROM orgbase.context c $$;
CREATE FUNCTION orgbase.entered_role(p1 bytea, p2 uuid, p3 uuid, p4 text) RETURNS text
    LANGUAGE sql STABLE AS $$ SELECT c.role FROM orgbase.context c $$;
REVOKE ALL ON FUNCTION orgbase.entered_role(uuid, text, uuid, text),
    orgbase.entered_role(bytea, uuid, uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION orgbase.entered_role(uuid, text, uuid, text),
    orgbase.entered_role(bytea, uuid, uuid, text) TO anon, authenticated, service_role;

-- -- auth.users ----------------------------------------------------------------------------

CREATE SCHEMA IF NOT EXISTS auth;
REVOKE ALL ON SCHEMA auth FROM PUBLIC;
GRANT USAGE ON SCHEMA auth TO orgbase_api, anon, authenticated, service_role;

-- The columns of GoTrue's auth.users that apps read; no password, token or factor.
CREATE TABLE auth.users (
    id uuid PRIMARY KEY,
    aud text NOT NULL DEFAULT 'authenticated',
    role text NOT NULL DEFAULT 'authenticated',
    email text,
    email_confirmed_at timestamptz,
    last_sign_in_at timestamptz,
    raw_app_meta_data jsonb NOT NULL DEFAULT '{"provider": "email", "providers": ["email"]}',
    raw_user_meta_data jsonb NOT NULL DEFAULT '{}',
    is_anonymous boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
);
-- A caller sees its own row and those of the members of the org it entered.
ALTER TABLE auth.users ENABLE ROW LEVEL SECURITY;
CREATE POLICY users_visible ON auth.users FOR SELECT
    USING (id = (SELECT c.usr FROM orgbase.context c)
           OR orgbase.is_member((SELECT c.org FROM orgbase.context c), id));
REVOKE ALL ON auth.users FROM PUBLIC;
GRANT SELECT ON auth.users TO orgbase_api, anon, authenticated, service_role;
-- auth.users(email) for joins by address.
CREATE INDEX users_email_idx ON auth.users (email);

-- Kept from orgbase.users (the accounts, owned by the auth area) by a trigger.
CREATE FUNCTION orgbase.mirror_auth_user() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        DELETE FROM auth.users WHERE id = OLD.id;
        RETURN NULL;
    END IF;
    INSERT INTO auth.users AS a (id, email, email_confirmed_at, last_sign_in_at,
                                 raw_user_meta_data, created_at, updated_at, deleted_at)
    VALUES (NEW.id, NEW.email, NEW.email_confirmed_at, NEW.last_sign_in_at,
            NEW.user_metadata, NEW.created_at, NEW.updated_at, NEW.deleted_at)
    ON CONFLICT (id) DO UPDATE SET
        email = EXCLUDED.email, email_confirmed_at = EXCLUDED.email_confirmed_at,
        last_sign_in_at = EXCLUDED.last_sign_in_at,
        raw_user_meta_data = EXCLUDED.raw_user_meta_data,
        updated_at = EXCLUDED.updated_at, deleted_at = EXCLUDED.deleted_at;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION orgbase.mirror_auth_user() FROM PUBLIC;
CREATE TRIGGER mirror_auth_user AFTER INSERT OR UPDATE OR DELETE ON orgbase.users
    FOR EACH ROW EXECUTE FUNCTION orgbase.mirror_auth_user();

INSERT INTO auth.users (id, email, email_confirmed_at, last_sign_in_at, raw_user_meta_data,
                        created_at, updated_at, deleted_at)
SELECT id, email, email_confirmed_at, last_sign_in_at, user_metadata, created_at, updated_at,
       deleted_at
FROM orgbase.users;

-- -- auth.uid(), auth.role(), auth.email(), auth.jwt() ------------------------------------
-- From the verified context only. Write (SELECT auth.uid()) in a policy, as Supabase
-- advises: then it runs once per statement, not once per row.

CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    AS $$ SELECT c.usr FROM orgbase.context c $$;

CREATE FUNCTION auth.role() RETURNS text LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    AS $$ SELECT orgbase.app_role(c.kind) FROM orgbase.context c $$;

CREATE FUNCTION auth.email() RETURNS text LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$ SELECT u.email FROM auth.users u JOIN orgbase.context c ON u.id = c.usr $$;

-- The claims apps read (Supabase's auth.jwt()), made from the verified context.
CREATE FUNCTION auth.jwt() RETURNS jsonb LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'sub', c.usr, 'role', orgbase.app_role(c.kind), 'aud', 'authenticated',
        'email', u.email, 'org', c.org, 'org_role', c.role,
        'app_metadata', coalesce(u.raw_app_meta_data, '{}'::jsonb)
            || jsonb_build_object('org', c.org, 'org_role', c.role),
        'user_metadata', coalesce(u.raw_user_meta_data, '{}'::jsonb)))
    FROM orgbase.context c LEFT JOIN auth.users u ON u.id = c.usr
$$;

REVOKE ALL ON FUNCTION auth.uid(), auth.role(), auth.email(), auth.jwt() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.uid(), auth.role(), auth.email(), auth.jwt()
    TO orgbase_api, anon, authenticated, service_role;

-- -- public: the app's schema, with Supabase's default privileges ---------------------------
-- Tables, sequences and functions the migration owner creates in public are granted to the
-- three roles (row-level security decides what each request sees); the data API serves a
-- public table only when row-level security is on (services/postgres/schema.py).
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT EXECUTE ON FUNCTIONS TO anon, authenticated, service_role;

-- -- org isolation for an app table ------------------------------------------------------
ALTER TABLE orgbase.tenant_tables DROP CONSTRAINT tenant_tables_policy_check;
ALTER TABLE orgbase.tenant_tables ADD CONSTRAINT tenant_tables_policy_check
    CHECK (policy IN ('org', 'owner_private', 'admin_write', 'shared_read', 'restrictive'));

-- What the tenant login (not switched to an app role) may do on an app table: delete an
-- org's rows in its purge context (an org's deletion), nothing else.
CREATE FUNCTION orgbase.app_table_platform_policy(target regclass) RETURNS void
    LANGUAGE plpgsql AS $fn$
BEGIN
    EXECUTE format('DROP POLICY IF EXISTS tenant_purge ON %s', target);
    EXECUTE format($$CREATE POLICY tenant_purge ON %s FOR ALL TO orgbase_api
        USING (org_id = (SELECT c.org FROM orgbase.context c)
               AND (SELECT c.kind FROM orgbase.context c) = 'purge')$$, target);
    EXECUTE format('GRANT SELECT, DELETE ON %s TO orgbase_api', target);
END
$fn$;
REVOKE ALL ON FUNCTION orgbase.app_table_platform_policy(regclass) FROM PUBLIC;

-- An app table (outside api) keeps its own policies; the org is added as a RESTRICTIVE
-- policy for every role, so `auth.uid() = user_id` holds inside the org.
CREATE FUNCTION orgbase.enable_app_tenancy(target regclass) RETURNS void
    LANGUAGE plpgsql AS $fn$
DECLARE
    rel_name text;
    rel_schema text;
    pk_columns text;
    in_org text := $$org_id = (SELECT c.org FROM orgbase.context c)$$;
BEGIN
    SELECT c.relname, n.nspname INTO rel_name, rel_schema
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = target;
    EXECUTE format('ALTER TABLE %s ADD COLUMN IF NOT EXISTS org_id uuid', target);
    EXECUTE format('ALTER TABLE %s ALTER COLUMN org_id SET DEFAULT orgbase.claimed_org_id()', target);
    EXECUTE format('ALTER TABLE %s ALTER COLUMN org_id SET NOT NULL', target);
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
    EXECUTE format('DROP POLICY IF EXISTS tenant_org ON %s', target);
    EXECUTE format('CREATE POLICY tenant_org ON %s AS RESTRICTIVE FOR ALL USING (%s) WITH CHECK (%s)',
        target, in_org, in_org);
    PERFORM orgbase.app_table_platform_policy(target);
    PERFORM orgbase.install_audit_trigger(target);
    INSERT INTO orgbase.tenant_tables (schema_name, table_name, policy)
    VALUES (rel_schema, rel_name, 'restrictive')
    ON CONFLICT (schema_name, table_name) DO UPDATE SET policy = 'restrictive';
    PERFORM pg_notify('orgbase_schema', 'tenancy');
END
$fn$;
REVOKE ALL ON FUNCTION orgbase.enable_app_tenancy(regclass) FROM PUBLIC;

-- enable_tenancy keeps its presets for api tables (0019's, renamed); on any other schema's
-- table it adds the restrictive org policy (a preset there would replace the app's own).
-- (0019's body, named after its new name: plpgsql qualifies the parameter by it.)
DROP FUNCTION orgbase.enable_tenancy(regclass, text);
CREATE FUNCTION orgbase.enable_api_tenancy(target regclass, policy text DEFAULT 'org')
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
        UPDATE orgbase.tenant_tables t SET policy = enable_api_tenancy.policy
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.oid = target AND t.schema_name = n.nspname AND t.table_name = c.relname;
    END IF;
    PERFORM pg_notify('orgbase_schema', 'tenancy');
END
$fn$;
CREATE FUNCTION orgbase.enable_tenancy(target regclass, policy text DEFAULT 'org')
    RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    rel_schema text;
BEGIN
    SELECT n.nspname INTO rel_schema FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.oid = target AND c.relkind IN ('r', 'p');
    IF rel_schema IS NULL OR rel_schema = 'api' THEN
        PERFORM orgbase.enable_api_tenancy(target, policy);
        RETURN;
    END IF;
    IF policy <> 'org' THEN
        RAISE EXCEPTION 'enable_tenancy: % keeps its own policies; only the org is added', target
            USING HINT = 'call orgbase.enable_tenancy(table) without a policy';
    END IF;
    PERFORM orgbase.enable_app_tenancy(target);
END
$fn$;
REVOKE ALL ON FUNCTION orgbase.enable_tenancy(regclass, text),
    orgbase.enable_api_tenancy(regclass, text) FROM PUBLIC;
