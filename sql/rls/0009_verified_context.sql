-- An org context the tenant role cannot forge.
--
-- Until now the policies trusted the transaction-local settings orgbase.org_id,
-- orgbase.role ..., which any session logged in as orgbase_api can write with
-- set_config(). From here on a context counts only when it carries a proof: an HMAC-SHA256
-- over (kind, org, user, role, key, backend pid, transaction start) made with a key that
-- only the owner of the schema can read. The proof is made only by the SECURITY DEFINER
-- entry functions, each of which checks a credential first:
--   enter_session(session, user, org, request)            a live session of a member
--   enter_api_key(key digest, -, org, request)            a live API key of a live org
--   enter_impersonation(impersonation, session, org, ...)  a platform admin's live impersonation
--   enter_org_purge(org, request)                          an org being deleted (the purge)
-- and the context functions (orgbase.current_org_id() ...) verify it, once per statement
-- where policies call them through a sub-select. A hand-set orgbase.org_id has no valid
-- proof, so the verified org is NULL and every policy matches no row.
--
-- Every entry also takes the org's advisory lock in shared mode for the rest of the
-- transaction; deleting an org takes it exclusively, so the deletion waits for writes in
-- flight and every later entry sees the org gone.
--
-- docs/architecture.md ("The org context") explains the model.

REVOKE CREATE ON SCHEMA public FROM PUBLIC;

-- The key. Stored as HMAC's inner and outer padded keys (RFC 2104), 64 bytes each.
CREATE TABLE orgbase.context_key (
    id integer PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    ipad bytea NOT NULL CHECK (length(ipad) = 64),
    opad bytea NOT NULL CHECK (length(opad) = 64)
);
REVOKE ALL ON orgbase.context_key FROM PUBLIC;

INSERT INTO orgbase.context_key (ipad, opad)
SELECT decode(string_agg(lpad(to_hex(get_byte(k, i) # 54), 2, '0'), '' ORDER BY i), 'hex'),
       decode(string_agg(lpad(to_hex(get_byte(k, i) # 92), 2, '0'), '' ORDER BY i), 'hex')
FROM (
    -- 256 random bits (two version-4 UUIDs carry 244), zero-padded to the block size.
    SELECT sha256(convert_to(gen_random_uuid()::text || gen_random_uuid()::text, 'UTF8'))
           || '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea AS k
) AS random_key
CROSS JOIN generate_series(0, 63) AS i;

-- The proof of a context in this transaction (the HMAC, hex). Not callable by the login
-- roles: only the functions below (which run as the owner) use it.
CREATE FUNCTION orgbase.context_proof(
    p_kind text, p_org text, p_user text, p_role text, p_key text) RETURNS text
    LANGUAGE plpgsql STABLE AS $$
-- plpgsql, not sql: its plan is kept for the session instead of made at every call. No
-- SET search_path: only the entry functions (which set it) call it.
DECLARE
    k orgbase.context_key;
BEGIN
    SELECT * INTO k FROM orgbase.context_key;
    RETURN encode(sha256(k.opad || sha256(k.ipad || convert_to(concat_ws('|',
        p_kind, p_org, p_user, p_role, p_key, pg_backend_pid(),
        (extract(epoch FROM now()) * 1000000)::bigint), 'UTF8'))), 'hex');
END
$$;
REVOKE ALL ON FUNCTION orgbase.context_proof(text, text, text, text, text) FROM PUBLIC;

-- The verified context: every field NULL unless the settings carry a valid proof. About
-- 10 us a call; policies call it through a sub-select, so once per statement and table.
CREATE FUNCTION orgbase.verified_context(
    OUT org uuid, OUT usr uuid, OUT role text, OUT key uuid, OUT kind text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_kind text := current_setting('orgbase.kind', true);
    v_org text := current_setting('orgbase.org_id', true);
    v_user text := current_setting('orgbase.user_id', true);
    v_role text := current_setting('orgbase.role', true);
    v_key text := current_setting('orgbase.key_id', true);
    v_proof text := current_setting('orgbase.proof', true);
    k orgbase.context_key;
BEGIN
    IF coalesce(v_proof, '') = '' OR v_role NOT IN ('viewer', 'member', 'admin', 'owner') THEN
        RETURN;
    END IF;
    SELECT * INTO k FROM orgbase.context_key;
    IF encode(sha256(k.opad || sha256(k.ipad || convert_to(concat_ws('|',
            v_kind, v_org, v_user, v_role, v_key, pg_backend_pid(),
            (extract(epoch FROM now()) * 1000000)::bigint), 'UTF8'))), 'hex') = v_proof THEN
        org := v_org::uuid;
        usr := nullif(v_user, '')::uuid;
        role := v_role;
        key := nullif(v_key, '')::uuid;
        kind := v_kind;
    END IF;
END
$$;
REVOKE ALL ON FUNCTION orgbase.verified_context() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION orgbase.verified_context() TO orgbase_api, orgbase_system;

-- The context functions the policies use keep their names and now verify.
CREATE OR REPLACE FUNCTION orgbase.current_org_id() RETURNS uuid
    LANGUAGE sql STABLE AS $$ SELECT (orgbase.verified_context()).org $$;
CREATE OR REPLACE FUNCTION orgbase.current_user_id() RETURNS uuid
    LANGUAGE sql STABLE AS $$ SELECT (orgbase.verified_context()).usr $$;
CREATE OR REPLACE FUNCTION orgbase.current_member_role() RETURNS text
    LANGUAGE sql STABLE AS $$ SELECT (orgbase.verified_context()).role $$;
CREATE OR REPLACE FUNCTION orgbase.current_key_id() RETURNS uuid
    LANGUAGE sql STABLE AS $$ SELECT (orgbase.verified_context()).key $$;
CREATE OR REPLACE FUNCTION orgbase.current_role_rank() RETURNS integer
    LANGUAGE sql STABLE AS $$ SELECT orgbase.role_rank((orgbase.verified_context()).role) $$;

-- What the transaction claims, unverified: only for column defaults, which the policies'
-- WITH CHECK then verifies (a forged claim fails there). Cheaper per inserted row.
CREATE FUNCTION orgbase.claimed_org_id() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT NULLIF(current_setting('orgbase.org_id', true), '')::uuid $$;
CREATE FUNCTION orgbase.claimed_user_id() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT NULLIF(current_setting('orgbase.user_id', true), '')::uuid $$;
REVOKE ALL ON FUNCTION orgbase.claimed_org_id(), orgbase.claimed_user_id() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION orgbase.claimed_org_id(), orgbase.claimed_user_id()
    TO orgbase_api, orgbase_system;

-- The advisory lock key of an org (its first 64 bits).
CREATE FUNCTION orgbase.org_lock_key(p_org uuid) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT ('x' || left(replace(p_org::text, '-', ''), 16))::bit(64)::bigint $$;
REVOKE ALL ON FUNCTION orgbase.org_lock_key(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION orgbase.org_lock_key(uuid) TO orgbase_api, orgbase_system;

-- Sets a checked context with its proof (called by the entry functions only).
CREATE FUNCTION orgbase.set_context(
    p_kind text, p_org uuid, p_user uuid, p_role text, p_key uuid, p_request text)
    RETURNS void
    LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM set_config('orgbase.kind', p_kind, true),
            set_config('orgbase.org_id', p_org::text, true),
            set_config('orgbase.user_id', coalesce(p_user::text, ''), true),
            set_config('orgbase.role', p_role, true),
            set_config('orgbase.key_id', coalesce(p_key::text, ''), true),
            set_config('orgbase.request_id', coalesce(p_request, ''), true),
            set_config('application_name', 'orgbase ' || coalesce(p_request, ''), true),
            set_config('orgbase.proof', orgbase.context_proof(
                p_kind, p_org::text, coalesce(p_user::text, ''), p_role,
                coalesce(p_key::text, '')), true);
END
$$;
REVOKE ALL ON FUNCTION orgbase.set_context(text, uuid, uuid, text, uuid, text) FROM PUBLIC;

-- API keys and impersonations are read by the entry functions as the owner: like
-- memberships (0006), FORCE would hide their rows from a non-superuser owner.
ALTER TABLE orgbase.api_keys NO FORCE ROW LEVEL SECURITY;

-- A user's session. OB401: the session has ended; OB404: not a member of a live org.
CREATE OR REPLACE FUNCTION orgbase.enter_session(
    p_session uuid, p_user uuid, p_org uuid, p_request text) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    member_role text;
BEGIN
    PERFORM pg_advisory_xact_lock_shared(orgbase.org_lock_key(p_org));
    SELECT m.role INTO member_role
    FROM orgbase.sessions s
    JOIN orgbase.users u ON u.id = s.user_id AND u.deleted_at IS NULL
    JOIN orgbase.memberships m ON m.user_id = s.user_id AND m.org_id = p_org
    JOIN orgbase.orgs o ON o.id = m.org_id AND o.deleted_at IS NULL
    WHERE s.id = p_session AND s.user_id = p_user
      AND s.revoked_at IS NULL AND s.expires_at > now();
    IF member_role IS NULL THEN
        IF NOT EXISTS (
            SELECT 1 FROM orgbase.sessions s
            JOIN orgbase.users u ON u.id = s.user_id AND u.deleted_at IS NULL
            WHERE s.id = p_session AND s.user_id = p_user
              AND s.revoked_at IS NULL AND s.expires_at > now()) THEN
            RAISE EXCEPTION 'the session has ended' USING ERRCODE = 'OB401';
        END IF;
        RAISE EXCEPTION 'no such org' USING ERRCODE = 'OB404';
    END IF;
    PERFORM orgbase.set_context('session', p_org, p_user, member_role, NULL, p_request);
    RETURN member_role;
END
$$;

-- An API key, by the SHA-256 of the key itself (a key's id is not a secret).
-- OB411: the key is unknown, revoked or expired, or its org is gone; OB404: another org.
CREATE FUNCTION orgbase.enter_api_key(
    p_digest bytea, p_unused uuid, p_org uuid, p_request text) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k orgbase.api_keys;
BEGIN
    IF p_org IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock_shared(orgbase.org_lock_key(p_org));
    END IF;
    SELECT a.* INTO k
    FROM orgbase.api_keys a JOIN orgbase.orgs o ON o.id = a.org_id AND o.deleted_at IS NULL
    WHERE a.key_hash = p_digest AND a.revoked_at IS NULL
      AND (a.expires_at IS NULL OR a.expires_at > now());
    IF k.id IS NULL THEN
        RAISE EXCEPTION 'the API key is unknown, revoked or expired' USING ERRCODE = 'OB411';
    END IF;
    IF p_org IS NOT NULL AND k.org_id <> p_org THEN
        RAISE EXCEPTION 'no such org' USING ERRCODE = 'OB404';
    END IF;
    PERFORM orgbase.set_context('api_key', k.org_id, NULL, k.role, k.id, p_request);
    RETURN k.role;
END
$$;

-- A platform admin's read-only look at one org. OB412 when the admin's session or the
-- impersonation has ended; OB404 when the org is gone.
CREATE FUNCTION orgbase.enter_impersonation(
    p_impersonation uuid, p_session uuid, p_org uuid, p_request text) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    admin_id uuid;
BEGIN
    PERFORM pg_advisory_xact_lock_shared(orgbase.org_lock_key(p_org));
    SELECT i.admin_user_id INTO admin_id
    FROM orgbase.impersonations i
    JOIN orgbase.users u ON u.id = i.admin_user_id AND u.deleted_at IS NULL
        AND u.is_platform_admin
    JOIN orgbase.sessions s ON s.id = p_session AND s.user_id = i.admin_user_id
        AND s.revoked_at IS NULL AND s.expires_at > now()
    WHERE i.id = p_impersonation AND i.org_id = p_org
      AND i.ended_at IS NULL AND i.expires_at > now();
    IF admin_id IS NULL THEN
        RAISE EXCEPTION 'the impersonation has ended' USING ERRCODE = 'OB412';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM orgbase.orgs WHERE id = p_org AND deleted_at IS NULL) THEN
        RAISE EXCEPTION 'no such org' USING ERRCODE = 'OB404';
    END IF;
    PERFORM orgbase.set_context('impersonation', p_org, admin_id, 'viewer', NULL, p_request);
    RETURN 'viewer';
END
$$;

-- Deleting an org's rows: only for an org already closed (deleted_at set), as its owner.
CREATE FUNCTION orgbase.enter_org_purge(p_org uuid, p_request text) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM orgbase.orgs WHERE id = p_org AND deleted_at IS NOT NULL) THEN
        RAISE EXCEPTION 'only a deleted org is purged' USING ERRCODE = 'OB404';
    END IF;
    PERFORM orgbase.set_context('purge', p_org, NULL, 'owner', NULL, p_request);
    RETURN 'owner';
END
$$;

REVOKE ALL ON FUNCTION orgbase.enter_session(uuid, uuid, uuid, text),
    orgbase.enter_api_key(bytea, uuid, uuid, text),
    orgbase.enter_impersonation(uuid, uuid, uuid, text),
    orgbase.enter_org_purge(uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION orgbase.enter_session(uuid, uuid, uuid, text),
    orgbase.enter_api_key(bytea, uuid, uuid, text),
    orgbase.enter_impersonation(uuid, uuid, uuid, text),
    orgbase.enter_org_purge(uuid, text) TO orgbase_api;

-- Is this user a member of this org? (created_by must name one.)
CREATE FUNCTION orgbase.is_member(p_org uuid, p_user uuid) RETURNS boolean
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN EXISTS (
        SELECT 1 FROM orgbase.memberships WHERE org_id = p_org AND user_id = p_user);
END
$$;
REVOKE ALL ON FUNCTION orgbase.is_member(uuid, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION orgbase.is_member(uuid, uuid) TO orgbase_api;

-- Changing created_by to someone else: only to a member of the row's org.
CREATE FUNCTION orgbase.check_created_by() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NEW.created_by IS NOT NULL
       AND NEW.created_by IS DISTINCT FROM OLD.created_by
       AND NOT orgbase.is_member(NEW.org_id, NEW.created_by) THEN
        RAISE EXCEPTION 'created_by must be a member of the org'
            USING ERRCODE = 'check_violation', COLUMN = 'created_by';
    END IF;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION orgbase.check_created_by() FROM PUBLIC;

-- The standard policies, now with one verification per statement for reads, and
-- created_by limited to the writer or (for admins) a member of the org.
CREATE OR REPLACE FUNCTION orgbase.enable_tenancy_base(target regclass) RETURNS void
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
    creator_ok text := $$(created_by IS NULL OR created_by = (SELECT orgbase.current_user_id())
        OR orgbase.is_member(org_id, created_by))$$;
BEGIN
    SELECT c.relname, n.nspname INTO rel_name, rel_schema
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.oid = target AND c.relkind IN ('r', 'p');
    IF rel_name IS NULL THEN
        RAISE EXCEPTION 'enable_tenancy: % is not a table', target;
    END IF;

    EXECUTE format('ALTER TABLE %s ADD COLUMN IF NOT EXISTS org_id uuid', target);
    EXECUTE format('ALTER TABLE %s ALTER COLUMN org_id SET DEFAULT orgbase.claimed_org_id()', target);
    EXECUTE format('ALTER TABLE %s ALTER COLUMN org_id SET NOT NULL', target);
    EXECUTE format('ALTER TABLE %s ADD COLUMN IF NOT EXISTS created_by uuid', target);
    EXECUTE format('ALTER TABLE %s ALTER COLUMN created_by SET DEFAULT orgbase.claimed_user_id()', target);

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
    -- A verified context always has a role (viewer or above): the org alone decides reads.
    EXECUTE format($$CREATE POLICY tenant_select ON %s FOR SELECT TO orgbase_api
        USING (org_id = (SELECT orgbase.current_org_id()))$$, target);
    EXECUTE format('CREATE POLICY tenant_insert ON %s FOR INSERT TO orgbase_api WITH CHECK (%s AND %s)',
        target, can_write, creator_ok);
    EXECUTE format('CREATE POLICY tenant_update ON %s FOR UPDATE TO orgbase_api USING %s WITH CHECK %s',
        target, can_write, can_write);
    EXECUTE format('CREATE POLICY tenant_delete ON %s FOR DELETE TO orgbase_api USING %s',
        target, can_write);

    EXECUTE format('DROP TRIGGER IF EXISTS orgbase_created_by ON %s', target);
    EXECUTE format('CREATE TRIGGER orgbase_created_by BEFORE UPDATE OF created_by ON %s'
        ' FOR EACH ROW EXECUTE FUNCTION orgbase.check_created_by()', target);

    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO orgbase_api', target);
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
REVOKE ALL ON FUNCTION orgbase.enable_tenancy_base(regclass) FROM PUBLIC;

-- Row changes: the actor from the verified context, read once per row. A purge (deleting
-- a deleted org's rows) is neither audited row by row nor announced.
CREATE OR REPLACE FUNCTION orgbase.audit_row_change() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, orgbase AS $$
DECLARE
    old_row jsonb := CASE WHEN TG_OP IN ('UPDATE', 'DELETE') THEN to_jsonb(OLD) END;
    new_row jsonb := CASE WHEN TG_OP IN ('INSERT', 'UPDATE') THEN to_jsonb(NEW) END;
    any_row jsonb := coalesce(new_row, old_row);
    key jsonb;
    actor record;
BEGIN
    SELECT * INTO actor FROM orgbase.verified_context();
    IF actor.kind = 'purge' THEN
        RETURN NULL;
    END IF;
    SELECT jsonb_object_agg(k, any_row -> k) INTO key FROM unnest(TG_ARGV) AS k;
    INSERT INTO orgbase.audit_events
        (action, org_id, actor_user_id, actor_kind, actor_key_id, target_table, row_key,
         old_values, new_values, request_id)
    VALUES (
        'row.' || lower(TG_OP),
        (any_row ->> 'org_id')::uuid,
        actor.usr,
        CASE WHEN actor.usr IS NOT NULL THEN 'user' WHEN actor.key IS NOT NULL THEN 'api_key'
             ELSE 'system' END,
        actor.key,
        TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME,
        key,
        old_row,
        new_row,
        orgbase.current_request_id());
    PERFORM pg_notify('orgbase_rows', json_build_object(
        'org', any_row ->> 'org_id',
        'table', TG_TABLE_NAME,
        'op', lower(TG_OP),
        'key', key)::text);
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION orgbase.audit_row_change() FROM PUBLIC;

-- The tenant tables made so far get the new policies, defaults and trigger.
DO $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT schema_name, table_name FROM orgbase.tenant_tables LOOP
        IF to_regclass(format('%I.%I', t.schema_name, t.table_name)) IS NOT NULL THEN
            PERFORM orgbase.enable_tenancy_base(
                format('%I.%I', t.schema_name, t.table_name)::regclass);
        END IF;
    END LOOP;
END
$$;
