-- Tenancy: soft-deleted orgs, invitations, the mail outbox, platform impersonations,
-- an API-key actor in the context, and row-change audit triggers on tenant tables.

ALTER TABLE orgbase.orgs ADD COLUMN deleted_at timestamptz;

CREATE TABLE orgbase.invitations (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES orgbase.orgs (id) ON DELETE CASCADE,
    email text NOT NULL CHECK (email = lower(email)),
    role text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    token_hash bytea NOT NULL UNIQUE,
    invited_by uuid REFERENCES orgbase.users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    accepted_at timestamptz,
    accepted_by uuid REFERENCES orgbase.users (id) ON DELETE SET NULL,
    revoked_at timestamptz
);
CREATE INDEX invitations_org_idx ON orgbase.invitations (org_id, created_at DESC);
ALTER TABLE orgbase.invitations ENABLE ROW LEVEL SECURITY;
ALTER TABLE orgbase.invitations FORCE ROW LEVEL SECURITY;
CREATE POLICY system_all ON orgbase.invitations TO orgbase_system USING (true) WITH CHECK (true);

-- Mail waiting to be sent (invitations); a dispatcher delivers it through SMTP.
CREATE TABLE orgbase.outbox (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind text NOT NULL,
    recipient text NOT NULL,
    subject text NOT NULL,
    body text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    available_at timestamptz NOT NULL DEFAULT now(),
    attempts integer NOT NULL DEFAULT 0,
    last_error text,
    sent_at timestamptz
);
CREATE INDEX outbox_pending_idx ON orgbase.outbox (available_at) WHERE sent_at IS NULL;

-- A platform admin looking at one org, read-only, for a limited time, with a reason.
CREATE TABLE orgbase.impersonations (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    admin_user_id uuid NOT NULL REFERENCES orgbase.users (id) ON DELETE CASCADE,
    org_id uuid NOT NULL REFERENCES orgbase.orgs (id) ON DELETE CASCADE,
    reason text NOT NULL CHECK (length(reason) BETWEEN 3 AND 500),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    ended_at timestamptz
);

GRANT SELECT, INSERT, UPDATE, DELETE ON orgbase.invitations, orgbase.outbox,
    orgbase.impersonations TO orgbase_system;

-- The API key acting (when a request authenticates with one).
CREATE OR REPLACE FUNCTION orgbase.current_key_id() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT NULLIF(current_setting('orgbase.key_id', true), '')::uuid $$;
REVOKE ALL ON FUNCTION orgbase.current_key_id() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION orgbase.current_key_id() TO orgbase_api, orgbase_system;

-- Row changes on tenant tables land in the audit log, with the actor and request id of
-- the context. SECURITY DEFINER: the tenant role may not write audit_events itself.
-- The trigger's arguments are the table's primary key columns (the row key).
CREATE OR REPLACE FUNCTION orgbase.audit_row_change() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, orgbase AS $$
DECLARE
    old_row jsonb := CASE WHEN TG_OP IN ('UPDATE', 'DELETE') THEN to_jsonb(OLD) END;
    new_row jsonb := CASE WHEN TG_OP IN ('INSERT', 'UPDATE') THEN to_jsonb(NEW) END;
    any_row jsonb := coalesce(new_row, old_row);
    key jsonb;
    actor uuid := orgbase.current_user_id();
    api_key uuid := orgbase.current_key_id();
BEGIN
    SELECT jsonb_object_agg(k, any_row -> k) INTO key FROM unnest(TG_ARGV) AS k;
    INSERT INTO orgbase.audit_events
        (action, org_id, actor_user_id, actor_kind, actor_key_id, target_table, row_key,
         old_values, new_values, request_id)
    VALUES (
        'row.' || lower(TG_OP),
        (any_row ->> 'org_id')::uuid,
        actor,
        CASE WHEN actor IS NOT NULL THEN 'user' WHEN api_key IS NOT NULL THEN 'api_key'
             ELSE 'system' END,
        api_key,
        TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME,
        key,
        old_row,
        new_row,
        orgbase.current_request_id());
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION orgbase.audit_row_change() FROM PUBLIC;

CREATE OR REPLACE FUNCTION orgbase.install_audit_trigger(target regclass) RETURNS void
    LANGUAGE plpgsql AS $fn$
DECLARE
    pk_args text;
BEGIN
    SELECT string_agg(quote_literal(a.attname), ', ' ORDER BY k.ord) INTO pk_args
    FROM pg_index i
    CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
    WHERE i.indrelid = target AND i.indisprimary;
    EXECUTE format('DROP TRIGGER IF EXISTS orgbase_audit ON %s', target);
    EXECUTE format(
        'CREATE TRIGGER orgbase_audit AFTER INSERT OR UPDATE OR DELETE ON %s'
        ' FOR EACH ROW EXECUTE FUNCTION orgbase.audit_row_change(%s)',
        target, coalesce(pk_args, ''));
END
$fn$;
REVOKE ALL ON FUNCTION orgbase.install_audit_trigger(regclass) FROM PUBLIC;

-- enable_tenancy now also installs the audit trigger.
CREATE OR REPLACE FUNCTION orgbase.enable_tenancy_with_audit(target regclass) RETURNS void
    LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM orgbase.enable_tenancy_base(target);
    PERFORM orgbase.install_audit_trigger(target);
END
$fn$;

ALTER FUNCTION orgbase.enable_tenancy(regclass) RENAME TO enable_tenancy_base;
ALTER FUNCTION orgbase.enable_tenancy_with_audit(regclass) RENAME TO enable_tenancy;
REVOKE ALL ON FUNCTION orgbase.enable_tenancy(regclass) FROM PUBLIC;
REVOKE ALL ON FUNCTION orgbase.enable_tenancy_base(regclass) FROM PUBLIC;

-- Tables made tenant tables before this migration get their trigger now.
DO $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT schema_name, table_name FROM orgbase.tenant_tables LOOP
        IF to_regclass(format('%I.%I', t.schema_name, t.table_name)) IS NOT NULL THEN
            PERFORM orgbase.install_audit_trigger(format('%I.%I', t.schema_name, t.table_name)::regclass);
        END IF;
    END LOOP;
END
$$;
