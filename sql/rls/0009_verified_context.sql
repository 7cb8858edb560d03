-- An org context the tenant role cannot forge.
--
-- Until now the policies trusted the transaction-local settings orgbase.org_id,
-- orgbase.role ..., which any session logged in as orgbase_api can write with
-- set_config(). From here on the context is one transaction-local setting, orgbase.context:
--     kind|org|user|role|key|backend pid|transaction start (us)|proof
-- and counts only when its proof is right: an HMAC-SHA256 of everything before it, made
-- with a key that only the owner of the schema can read. Only the SECURITY DEFINER entry
-- functions make it, each of which checks a credential first:
--   enter_session(session, user, org, request)            a live session of a member
--   enter_api_key(key digest, -, org, request)            a live API key of a live org
--   enter_impersonation(impersonation, session, org, ...)  a platform admin's live impersonation
--   enter_org_purge(org, request)                          an org being deleted (the purge)
-- and the view orgbase.context (which the policies read, once per statement) and the
-- context functions (orgbase.current_org_id() ...) verify it. A hand-set orgbase.org_id
-- has no valid proof, so the verified org is NULL and every policy matches no row.
--
-- A write transaction also takes the org's advisory lock in shared mode (before its entry,
-- see core/postgres.py); deleting an org takes it exclusively, so the deletion waits for
-- writes in flight and every later entry sees the org gone. Reads need no lock.
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

-- The proof of a signed text: HMAC-SHA256 with the key's padded halves, in hex. A plain
-- SQL expression, so the planner inlines it where it is used (STABLE like convert_to:
-- a function declared less volatile than its body is not inlined). Harmless without the key.
CREATE FUNCTION orgbase.context_proof(p_ipad bytea, p_opad bytea, p_signed text)
    RETURNS text LANGUAGE sql STABLE AS $$
    SELECT pg_catalog.encode(pg_catalog.sha256(p_opad OPERATOR(pg_catalog.||)
        pg_catalog.sha256(p_ipad OPERATOR(pg_catalog.||) pg_catalog.convert_to(p_signed, 'UTF8'))),
        'hex')
$$;
GRANT EXECUTE ON FUNCTION orgbase.context_proof(bytea, bytea, text) TO orgbase_api, orgbase_system;

-- What binds a context to this transaction: this backend and this transaction's start.
CREATE FUNCTION orgbase.context_binding() RETURNS text LANGUAGE sql STABLE AS $$
    SELECT pg_catalog.pg_backend_pid()::text OPERATOR(pg_catalog.||) '|' OPERATOR(pg_catalog.||)
        ((pg_catalog.date_part('epoch', pg_catalog.now()) * 1000000)::bigint)::text
$$;
GRANT EXECUTE ON FUNCTION orgbase.context_binding() TO orgbase_api, orgbase_system;

-- The verified context: one row when orgbase.context is signed right for this transaction,
-- none otherwise. A view, not a function: policies read it through a sub-select that the
-- planner keeps in the statement's (cached) plan, where a SECURITY DEFINER function call
-- costs several times as much. It reads the key with its owner's rights (views run as
-- their owner) and shows no column of it, so no condition a caller adds to it can see the
-- key. The functions and operators it uses were bound when it was made: no search_path
-- changes them. The fields are read only once the proof is right.
CREATE VIEW orgbase.context AS
SELECT split_part(c.value, '|', 2)::uuid AS org,
       nullif(split_part(c.value, '|', 3), '')::uuid AS usr,
       split_part(c.value, '|', 4) AS role,
       orgbase.role_rank(split_part(c.value, '|', 4)) AS rank,
       nullif(split_part(c.value, '|', 5), '')::uuid AS key,
       split_part(c.value, '|', 1) AS kind
FROM (SELECT current_setting('orgbase.context', true) AS value) AS c
CROSS JOIN orgbase.context_key AS k
WHERE length(c.value) > 65
  AND right(c.value, 64) = orgbase.context_proof(k.ipad, k.opad, left(c.value, -65))
  AND split_part(c.value, '|', 6) || '|' || split_part(c.value, '|', 7)
      = orgbase.context_binding();
REVOKE ALL ON orgbase.context FROM PUBLIC;
GRANT SELECT ON orgbase.context TO orgbase_api, orgbase_system;

-- The same as a function (for triggers and ad hoc use): every field NULL without a proof.
CREATE FUNCTION orgbase.verified_context(
    OUT org uuid, OUT usr uuid, OUT role text, OUT key uuid, OUT kind text)
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    SELECT c.org, c.usr, c.role, c.key, c.kind INTO org, usr, role, key, kind
    FROM orgbase.context AS c;
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
    AS $$ SELECT NULLIF(split_part(current_setting('orgbase.context', true), '|', 2), '')::uuid $$;
CREATE FUNCTION orgbase.claimed_user_id() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT NULLIF(split_part(current_setting('orgbase.context', true), '|', 3), '')::uuid $$;
REVOKE ALL ON FUNCTION orgbase.claimed_org_id(), orgbase.claimed_user_id() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION orgbase.claimed_org_id(), orgbase.claimed_user_id()
    TO orgbase_api, orgbase_system;

-- The advisory lock key of an org (its first 64 bits): write transactions hold it shared,
-- a deletion exclusively.
CREATE FUNCTION orgbase.org_lock_key(p_org uuid) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT ('x' || left(replace(p_org::text, '-', ''), 16))::bit(64)::bigint $$;
REVOKE ALL ON FUNCTION orgbase.org_lock_key(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION orgbase.org_lock_key(uuid) TO orgbase_api, orgbase_system;

-- The signed part of a context (NULL fields are empty: they keep their place).
CREATE FUNCTION orgbase.context_text(
    p_kind text, p_org uuid, p_user uuid, p_role text, p_key uuid) RETURNS text
    LANGUAGE sql STABLE AS $$
    SELECT pg_catalog.concat_ws('|', p_kind, p_org::text, coalesce(p_user::text, ''), p_role,
                                coalesce(p_key::text, ''), orgbase.context_binding())
$$;
GRANT EXECUTE ON FUNCTION orgbase.context_text(text, uuid, uuid, text, uuid)
    TO orgbase_api, orgbase_system;

-- Sets a context, signed, with its proof (the entry functions only: they hold the key).
-- One SQL expression, inlined into the entry's own statement (what it returns is unused).
CREATE FUNCTION orgbase.set_context(p_signed text, p_proof text, p_request text) RETURNS text
    LANGUAGE sql VOLATILE AS $$
    SELECT pg_catalog.concat_ws(',',
        pg_catalog.set_config('orgbase.context',
            p_signed OPERATOR(pg_catalog.||) '|' OPERATOR(pg_catalog.||) p_proof, true),
        pg_catalog.set_config('orgbase.request_id', coalesce(p_request, ''), true),
        pg_catalog.set_config('application_name', 'orgbase ' || coalesce(p_request, ''), true))
$$;
REVOKE ALL ON FUNCTION orgbase.set_context(text, text, text) FROM PUBLIC;

-- API keys and impersonations are read by the entry functions as the owner: like
-- memberships (0006), FORCE would hide their rows from a non-superuser owner.
ALTER TABLE orgbase.api_keys NO FORCE ROW LEVEL SECURITY;

-- The entries check their credential and set the context in one statement (the context
-- is set only for the row found; OFFSET 0 keeps the signed text computed once), then say
-- why when none was.

-- A user's session. OB401: the session has ended; OB404: not a member of a live org.
CREATE OR REPLACE FUNCTION orgbase.enter_session(
    p_session uuid, p_user uuid, p_org uuid, p_request text) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    member_role text;
    done text;
BEGIN
    SELECT x.role, orgbase.set_context(x.signed, orgbase.context_proof(x.ipad, x.opad, x.signed),
                                       p_request)
    INTO member_role, done
    FROM (SELECT m.role, k.ipad, k.opad,
                 orgbase.context_text('session', p_org, p_user, m.role, NULL) AS signed
          FROM orgbase.sessions s
          JOIN orgbase.users u ON u.id = s.user_id AND u.deleted_at IS NULL
          JOIN orgbase.memberships m ON m.user_id = s.user_id AND m.org_id = p_org
          JOIN orgbase.orgs o ON o.id = m.org_id AND o.deleted_at IS NULL
          CROSS JOIN orgbase.context_key k
          WHERE s.id = p_session AND s.user_id = p_user
            AND s.revoked_at IS NULL AND s.expires_at > now()
          OFFSET 0) AS x;
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
    RETURN member_role;
END
$$;

-- An API key, by the SHA-256 of the key itself (a key's id is not a secret).
-- OB411: the key is unknown, revoked or expired, or its org is gone; OB404: another org.
CREATE FUNCTION orgbase.enter_api_key(
    p_digest bytea, p_unused uuid, p_org uuid, p_request text) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    key_role text;
    done text;
BEGIN
    SELECT x.role,
           CASE WHEN p_org IS NULL OR x.org_id = p_org THEN
               orgbase.set_context(x.signed, orgbase.context_proof(x.ipad, x.opad, x.signed),
                                   p_request)
           END
    INTO key_role, done
    FROM (SELECT a.role, a.org_id, k.ipad, k.opad,
                 orgbase.context_text('api_key', a.org_id, NULL, a.role, a.id) AS signed
          FROM orgbase.api_keys a
          JOIN orgbase.orgs o ON o.id = a.org_id AND o.deleted_at IS NULL
          CROSS JOIN orgbase.context_key k
          WHERE a.key_hash = p_digest AND a.revoked_at IS NULL
            AND (a.expires_at IS NULL OR a.expires_at > now())
          OFFSET 0) AS x;
    IF key_role IS NULL THEN
        RAISE EXCEPTION 'the API key is unknown, revoked or expired' USING ERRCODE = 'OB411';
    END IF;
    IF done IS NULL THEN
        RAISE EXCEPTION 'no such org' USING ERRCODE = 'OB404';
    END IF;
    RETURN key_role;
END
$$;

-- A platform admin's read-only look at one org. OB412 when the admin's session or the
-- impersonation has ended; OB404 when the org is gone.
CREATE FUNCTION orgbase.enter_impersonation(
    p_impersonation uuid, p_session uuid, p_org uuid, p_request text) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    admin_id uuid;
    org_live boolean;
    done text;
BEGIN
    SELECT x.admin_user_id, x.live,
           CASE WHEN x.live THEN
               orgbase.set_context(x.signed, orgbase.context_proof(x.ipad, x.opad, x.signed),
                                   p_request)
           END
    INTO admin_id, org_live, done
    FROM (SELECT i.admin_user_id, o.deleted_at IS NULL AS live, k.ipad, k.opad,
                 orgbase.context_text('impersonation', p_org, i.admin_user_id, 'viewer', NULL)
                     AS signed
          FROM orgbase.impersonations i
          JOIN orgbase.users u ON u.id = i.admin_user_id AND u.deleted_at IS NULL
              AND u.is_platform_admin
          JOIN orgbase.sessions s ON s.id = p_session AND s.user_id = i.admin_user_id
              AND s.revoked_at IS NULL AND s.expires_at > now()
          JOIN orgbase.orgs o ON o.id = i.org_id
          CROSS JOIN orgbase.context_key k
          WHERE i.id = p_impersonation AND i.org_id = p_org
            AND i.ended_at IS NULL AND i.expires_at > now()
          OFFSET 0) AS x;
    IF admin_id IS NULL THEN
        RAISE EXCEPTION 'the impersonation has ended' USING ERRCODE = 'OB412';
    END IF;
    IF NOT org_live THEN
        RAISE EXCEPTION 'no such org' USING ERRCODE = 'OB404';
    END IF;
    RETURN 'viewer';
END
$$;

-- Deleting an org's rows: only for an org already closed (deleted_at set), as its owner.
CREATE FUNCTION orgbase.enter_org_purge(p_org uuid, p_request text) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    done text;
BEGIN
    SELECT orgbase.set_context(x.signed, orgbase.context_proof(x.ipad, x.opad, x.signed),
                               p_request)
    INTO done
    FROM (SELECT k.ipad, k.opad,
                 orgbase.context_text('purge', p_org, NULL, 'owner', NULL) AS signed
          FROM orgbase.orgs o CROSS JOIN orgbase.context_key k
          WHERE o.id = p_org AND o.deleted_at IS NOT NULL
          OFFSET 0) AS x;
    IF done IS NULL THEN
        RAISE EXCEPTION 'only a deleted org is purged' USING ERRCODE = 'OB404';
    END IF;
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
    can_write text := $$(org_id = (SELECT c.org FROM orgbase.context c) AND (
        (SELECT c.rank FROM orgbase.context c) >= 3
        OR ((SELECT c.rank FROM orgbase.context c) = 2
            AND created_by = (SELECT c.usr FROM orgbase.context c))))$$;
    creator_ok text := $$(created_by IS NULL OR created_by = (SELECT c.usr FROM orgbase.context c)
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
        USING (org_id = (SELECT c.org FROM orgbase.context c))$$, target);
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

-- Admins read their org's audit trail through the tenant pool: the verified context too.
DROP POLICY tenant_admin_read ON orgbase.audit_events;
CREATE POLICY tenant_admin_read ON orgbase.audit_events FOR SELECT TO orgbase_api
    USING (org_id = (SELECT c.org FROM orgbase.context c)
           AND (SELECT c.rank FROM orgbase.context c) >= 3);
