-- An org's data out and back in (`orgbase org export` / `orgbase org import`,
-- docs/operations/export.md).
--
-- The tenant rows are read and written on the tenant pool under row-level security, in a
-- context of kind 'export' or 'import' (role owner) that only a one-time transfer grant
-- enters: the command makes the grant on the platform pool (its secret's SHA-256 is kept,
-- for two minutes), then enters with the secret; the grant is used up by its entry. An
-- export reads a live org; an import writes into an org made closed (deleted_at set), so
-- nobody reaches it until the whole import went through and it is opened; one cut short
-- stays closed and is removed.
-- The platform's part of an org (members by email, settings and their history, webhook
-- endpoints without secrets, the audit trail) is read and restored by the functions below,
-- on the platform pool, in the same snapshot as the rows (pg_export_snapshot).

CREATE TABLE orgbase.org_transfers (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES orgbase.orgs (id) ON DELETE CASCADE,
    kind text NOT NULL CHECK (kind IN ('export', 'import')),
    secret_hash bytea NOT NULL,
    expires_at timestamptz NOT NULL DEFAULT now() + interval '2 minutes'
);
REVOKE ALL ON orgbase.org_transfers FROM PUBLIC;
GRANT SELECT, INSERT, DELETE ON orgbase.org_transfers TO orgbase_system;

-- A grant for one entry: its id and secret (shown once).
CREATE FUNCTION orgbase.org_transfer_grant(p_org uuid, p_kind text, OUT id uuid, OUT secret text)
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    secret := encode(sha256(convert_to(gen_random_uuid()::text || gen_random_uuid()::text, 'UTF8')), 'hex');
    DELETE FROM orgbase.org_transfers WHERE expires_at < now();
    INSERT INTO orgbase.org_transfers (org_id, kind, secret_hash)
    VALUES (p_org, p_kind, sha256(convert_to(secret, 'UTF8')))
    RETURNING org_transfers.id INTO id;
END
$$;
REVOKE ALL ON FUNCTION orgbase.org_transfer_grant(uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION orgbase.org_transfer_grant(uuid, text) TO orgbase_system;

-- The entry (the tenant pool; same shape as the others: $1..$4). OB412: no such grant.
CREATE FUNCTION orgbase.enter_org_transfer(
    p_transfer uuid, p_secret text, p_org uuid, p_request text) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    transfer_kind text;
    done text;
BEGIN
    DELETE FROM orgbase.org_transfers t
    USING orgbase.orgs o
    WHERE t.id = p_transfer AND t.org_id = p_org AND o.id = t.org_id
      AND t.secret_hash = sha256(convert_to(coalesce(p_secret, ''), 'UTF8'))
      AND t.expires_at > now()
      AND (o.deleted_at IS NULL) = (t.kind = 'export')
    RETURNING t.kind INTO transfer_kind;
    IF transfer_kind IS NULL THEN
        RAISE EXCEPTION 'no such transfer' USING ERRCODE = 'OB412';
    END IF;
    SELECT orgbase.set_context(x.signed, orgbase.context_proof(x.ipad, x.opad, x.signed), p_request)
    INTO done
    FROM (SELECT k.ipad, k.opad,
                 orgbase.context_text(transfer_kind, p_org, NULL, 'owner', NULL) AS signed
          FROM orgbase.context_key k OFFSET 0) AS x;
    RETURN 'owner';
END
$$;
REVOKE ALL ON FUNCTION orgbase.enter_org_transfer(uuid, text, uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION orgbase.enter_org_transfer(uuid, text, uuid, text) TO orgbase_api;

-- An app table's platform policy (0034) lets an export read and an import write too.
CREATE OR REPLACE FUNCTION orgbase.app_table_platform_policy(target regclass) RETURNS void
    LANGUAGE plpgsql AS $fn$
BEGIN
    EXECUTE format('DROP POLICY IF EXISTS tenant_purge ON %s', target);
    EXECUTE format($$CREATE POLICY tenant_purge ON %s FOR ALL TO orgbase_api
        USING (org_id = (SELECT c.org FROM orgbase.context c)
               AND (SELECT c.kind FROM orgbase.context c) IN ('purge', 'export', 'import'))$$,
        target);
    EXECUTE format('GRANT SELECT, INSERT, DELETE ON %s TO orgbase_api', target);
END
$fn$;
DO $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT schema_name, table_name FROM orgbase.tenant_tables WHERE policy = 'restrictive'
    LOOP
        PERFORM orgbase.app_table_platform_policy(format('%I.%I', t.schema_name, t.table_name)::regclass);
    END LOOP;
END
$$;

-- Rows an import writes are the archive's, not new changes: neither audited row by row
-- (the archive brings the org's audit trail) nor announced. (0009's function otherwise.)
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
    IF actor.kind IN ('purge', 'import') THEN
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

-- -- the platform's part of an org ----------------------------------------------------------

-- Everything of a live org but its rows, documents and cache: users by email.
CREATE FUNCTION orgbase.org_archive_platform(p_org uuid) RETURNS jsonb
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT jsonb_build_object(
        'org', (SELECT jsonb_build_object('id', o.id, 'name', o.name, 'created_at', o.created_at)
                FROM orgbase.orgs o WHERE o.id = p_org AND o.deleted_at IS NULL),
        'members', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                        'user_id', u.id, 'email', u.email, 'display_name', u.display_name,
                        'role', m.role) ORDER BY u.email), '[]')
                    FROM orgbase.memberships m JOIN orgbase.users u ON u.id = m.user_id
                    WHERE m.org_id = p_org AND u.deleted_at IS NULL),
        'settings', (SELECT jsonb_build_object('version', s.version, 'settings', s.settings)
                     FROM orgbase.org_settings s WHERE s.org_id = p_org),
        'settings_history', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                                 'version', h.version, 'settings', h.settings,
                                 'updated_at', h.updated_at, 'updated_by', h.updated_by)
                                 ORDER BY h.version), '[]')
                             FROM orgbase.org_settings_history h WHERE h.org_id = p_org),
        'webhooks', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                         'id', e.id, 'url', e.url, 'description', e.description,
                         'events', e.events, 'enabled', e.enabled,
                         'owner_user_id', e.owner_user_id, 'created_at', e.created_at)
                         ORDER BY e.created_at, e.id), '[]')
                     FROM orgbase.webhook_endpoints e WHERE e.org_id = p_org))
$$;
REVOKE ALL ON FUNCTION orgbase.org_archive_platform(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION orgbase.org_archive_platform(uuid) TO orgbase_system;

-- The org's audit trail, oldest first, in pages (after the id given).
CREATE FUNCTION orgbase.org_archive_audit(p_org uuid, p_after bigint, p_limit integer)
    RETURNS TABLE (id bigint, event jsonb)
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT a.id, to_jsonb(a) - 'id' - 'org_id' FROM orgbase.audit_events a
    WHERE a.org_id = p_org AND a.id > p_after ORDER BY a.id LIMIT p_limit
$$;
REVOKE ALL ON FUNCTION orgbase.org_archive_audit(uuid, bigint, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION orgbase.org_archive_audit(uuid, bigint, integer) TO orgbase_system;

-- A new org, closed, from an archive's platform part: the org's id is kept when free;
-- members by email (an address without an account gets one without a password: its
-- owner sets one by recovery); settings and their history; webhook endpoints disabled with
-- a new secret (the archive has none); the audit trail. Answers the org's id and the
-- users' ids by their archived ids.
CREATE FUNCTION orgbase.org_restore_platform(p_doc jsonb, p_name text) RETURNS jsonb
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    old_org uuid := (p_doc -> 'org' ->> 'id')::uuid;
    new_org uuid;
    users jsonb;
BEGIN
    new_org := CASE WHEN EXISTS (SELECT 1 FROM orgbase.orgs WHERE id = old_org)
                    THEN gen_random_uuid() ELSE old_org END;
    INSERT INTO orgbase.orgs (id, name, deleted_at)
    VALUES (new_org, coalesce(p_name, p_doc -> 'org' ->> 'name'), now());
    INSERT INTO orgbase.users (email, display_name)
    SELECT lower(m ->> 'email'), m ->> 'display_name'
    FROM jsonb_array_elements(p_doc -> 'members') m
    ON CONFLICT DO NOTHING;
    SELECT coalesce(jsonb_object_agg(m ->> 'user_id', u.id), '{}') INTO users
    FROM jsonb_array_elements(p_doc -> 'members') m
    JOIN orgbase.users u ON u.email = lower(m ->> 'email') AND u.deleted_at IS NULL;
    INSERT INTO orgbase.memberships (org_id, user_id, role)
    SELECT new_org, (users ->> (m ->> 'user_id'))::uuid, m ->> 'role'
    FROM jsonb_array_elements(p_doc -> 'members') m
    WHERE users ? (m ->> 'user_id');
    INSERT INTO orgbase.org_settings (org_id, version, settings)
    VALUES (new_org, coalesce((p_doc -> 'settings' ->> 'version')::integer, 1),
            coalesce(p_doc -> 'settings' -> 'settings', '{}'));
    INSERT INTO orgbase.org_settings_history (org_id, version, settings, updated_at, updated_by)
    SELECT new_org, (h ->> 'version')::integer, h -> 'settings', (h ->> 'updated_at')::timestamptz,
           (users ->> (h ->> 'updated_by'))::uuid
    FROM jsonb_array_elements(p_doc -> 'settings_history') h;
    INSERT INTO orgbase.webhook_endpoints (org_id, url, description, events, secret, enabled,
                                           disabled_reason, owner_user_id, created_at)
    SELECT new_org, w ->> 'url', w ->> 'description',
           ARRAY(SELECT jsonb_array_elements_text(w -> 'events')),
           'whsec_' || encode(sha256(convert_to(gen_random_uuid()::text, 'UTF8')), 'base64'),
           false, 'imported: an admin enables it (with its new secret)',
           (users ->> (w ->> 'owner_user_id'))::uuid, (w ->> 'created_at')::timestamptz
    FROM jsonb_array_elements(p_doc -> 'webhooks') w;
    RETURN jsonb_build_object('org', new_org, 'users', users);
END
$$;
REVOKE ALL ON FUNCTION orgbase.org_restore_platform(jsonb, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION orgbase.org_restore_platform(jsonb, text) TO orgbase_system;

-- A page of the audit trail into the (closed) org, its actors by the new users' ids.
CREATE FUNCTION orgbase.org_restore_audit(p_org uuid, p_events jsonb, p_users jsonb)
    RETURNS integer LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    WITH put AS (
        INSERT INTO orgbase.audit_events (occurred_at, org_id, actor_user_id, actor_kind,
            actor_key_id, action, target_table, row_key, old_values, new_values, details,
            request_id, ip)
        SELECT (e ->> 'occurred_at')::timestamptz, p_org,
               (p_users ->> (e ->> 'actor_user_id'))::uuid, e ->> 'actor_kind',
               NULL, e ->> 'action', e ->> 'target_table',
               nullif(e -> 'row_key', 'null'), nullif(e -> 'old_values', 'null'),
               nullif(e -> 'new_values', 'null'), nullif(e -> 'details', 'null'),
               e ->> 'request_id', (e ->> 'ip')::inet
        FROM jsonb_array_elements(p_events) e
        WHERE EXISTS (SELECT 1 FROM orgbase.orgs o WHERE o.id = p_org AND o.deleted_at IS NOT NULL)
        RETURNING 1)
    SELECT count(*)::integer FROM put
$$;
REVOKE ALL ON FUNCTION orgbase.org_restore_audit(uuid, jsonb, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION orgbase.org_restore_audit(uuid, jsonb, jsonb) TO orgbase_system;

-- The import went through: the org opens (with an audit record).
CREATE FUNCTION orgbase.org_restore_open(p_org uuid, p_details jsonb) RETURNS boolean
    LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    WITH opened AS (
        UPDATE orgbase.orgs SET deleted_at = NULL, updated_at = now()
        WHERE id = p_org AND deleted_at IS NOT NULL RETURNING id),
    recorded AS (
        INSERT INTO orgbase.audit_events (org_id, actor_kind, action, details)
        SELECT id, 'system', 'org.imported', p_details FROM opened RETURNING 1)
    SELECT EXISTS (SELECT 1 FROM recorded)
$$;
REVOKE ALL ON FUNCTION orgbase.org_restore_open(uuid, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION orgbase.org_restore_open(uuid, jsonb) TO orgbase_system;

-- An import cut short: the closed org goes (its audit trail, members, settings, endpoints;
-- its rows were purged first, on the tenant pool).
CREATE FUNCTION orgbase.org_restore_abandon(p_org uuid) RETURNS boolean
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM orgbase.orgs WHERE id = p_org AND deleted_at IS NOT NULL) THEN
        RETURN false;
    END IF;
    PERFORM orgbase.purge_org_audit(p_org);
    DELETE FROM orgbase.orgs WHERE id = p_org;
    RETURN true;
END
$$;
REVOKE ALL ON FUNCTION orgbase.org_restore_abandon(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION orgbase.org_restore_abandon(uuid) TO orgbase_system;

-- After an import kept ids, a table's id sequence moves past the largest (or a later
-- insert would take an imported id). The tenant pool calls it with the largest id it sees
-- in the org; only in an import's context, only forward, only for a tenant table.
CREATE FUNCTION orgbase.advance_sequence(p_table regclass, p_column text, p_value bigint)
    RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    seq text := pg_get_serial_sequence(p_table::text, p_column);
BEGIN
    IF (SELECT c.kind FROM orgbase.context c) IS DISTINCT FROM 'import' OR seq IS NULL
       OR NOT EXISTS (SELECT 1 FROM orgbase.tenant_tables t JOIN pg_class c ON c.oid = p_table
                      JOIN pg_namespace n ON n.oid = c.relnamespace
                      WHERE t.schema_name = n.nspname AND t.table_name = c.relname) THEN
        RETURN;
    END IF;
    EXECUTE format('SELECT setval(%L, greatest(%s, (SELECT last_value FROM %s)))', seq, p_value, seq);
END
$$;
REVOKE ALL ON FUNCTION orgbase.advance_sequence(regclass, text, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION orgbase.advance_sequence(regclass, text, bigint) TO orgbase_api;

-- The identity or serial columns of a table (their sequences are advanced after an import).
CREATE FUNCTION orgbase.sequence_columns(p_table regclass) RETURNS SETOF text
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT a.attname::text FROM pg_attribute a
    WHERE a.attrelid = p_table AND a.attnum > 0 AND NOT a.attisdropped
      AND pg_get_serial_sequence(p_table::text, a.attname) IS NOT NULL
$$;
GRANT EXECUTE ON FUNCTION orgbase.sequence_columns(regclass) TO orgbase_api;
