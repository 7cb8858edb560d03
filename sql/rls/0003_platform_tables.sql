-- Platform tables: accounts, orgs, memberships, sessions, refresh tokens, API keys, audit
-- events and versioned org settings. Org-owned tables have RLS enabled and forced:
-- orgbase_system reaches them through an explicit policy, orgbase_api only where a policy
-- scoped to the current org lets it.

CREATE TABLE orgbase.users (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email text NOT NULL CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 320),
    password_hash text,
    display_name text CHECK (length(display_name) <= 200),
    is_platform_admin boolean NOT NULL DEFAULT false,
    password_changed_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
);
CREATE UNIQUE INDEX users_email_key ON orgbase.users (email) WHERE deleted_at IS NULL;

CREATE TABLE orgbase.orgs (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_by uuid REFERENCES orgbase.users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE orgbase.memberships (
    org_id uuid NOT NULL REFERENCES orgbase.orgs (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES orgbase.users (id) ON DELETE CASCADE,
    role text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX memberships_user_idx ON orgbase.memberships (user_id);

CREATE TABLE orgbase.sessions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES orgbase.users (id) ON DELETE CASCADE,
    user_agent text,
    ip inet,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    revoked_reason text
);
CREATE INDEX sessions_user_idx ON orgbase.sessions (user_id) WHERE revoked_at IS NULL;
CREATE INDEX sessions_recent_idx ON orgbase.sessions (last_seen_at) WHERE revoked_at IS NULL;

CREATE TABLE orgbase.refresh_tokens (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    session_id uuid NOT NULL REFERENCES orgbase.sessions (id) ON DELETE CASCADE,
    token_hash bytea NOT NULL UNIQUE,
    parent_id uuid REFERENCES orgbase.refresh_tokens (id) ON DELETE SET NULL,
    org_id uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    rotated_at timestamptz
);
CREATE INDEX refresh_tokens_session_idx ON orgbase.refresh_tokens (session_id);

CREATE TABLE orgbase.api_keys (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES orgbase.orgs (id) ON DELETE CASCADE,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    prefix text NOT NULL,
    key_hash bytea NOT NULL UNIQUE,
    role text NOT NULL CHECK (role IN ('admin', 'member', 'viewer')),
    created_by uuid REFERENCES orgbase.users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    revoked_at timestamptz,
    last_used_at timestamptz
);
CREATE INDEX api_keys_org_idx ON orgbase.api_keys (org_id);

-- Append-only: no role the gateway uses may UPDATE or DELETE (no grant, and a trigger).
CREATE TABLE orgbase.audit_events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    org_id uuid,
    actor_user_id uuid,
    actor_kind text NOT NULL DEFAULT 'user'
        CHECK (actor_kind IN ('user', 'api_key', 'system', 'anonymous')),
    actor_key_id uuid,
    action text NOT NULL,
    target_table text,
    row_key jsonb,
    old_values jsonb,
    new_values jsonb,
    details jsonb,
    request_id text,
    ip inet
);
CREATE INDEX audit_events_org_idx ON orgbase.audit_events (org_id, id DESC);
CREATE INDEX audit_events_actor_idx ON orgbase.audit_events (actor_user_id, id DESC);

CREATE OR REPLACE FUNCTION orgbase.refuse_audit_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only' USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_events_append_only
    BEFORE UPDATE OR DELETE ON orgbase.audit_events
    FOR EACH ROW EXECUTE FUNCTION orgbase.refuse_audit_change();

CREATE TABLE orgbase.org_settings (
    org_id uuid PRIMARY KEY REFERENCES orgbase.orgs (id) ON DELETE CASCADE,
    version integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    settings jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(settings) = 'object'),
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by uuid
);

CREATE TABLE orgbase.org_settings_history (
    org_id uuid NOT NULL REFERENCES orgbase.orgs (id) ON DELETE CASCADE,
    version integer NOT NULL,
    settings jsonb NOT NULL,
    updated_at timestamptz NOT NULL,
    updated_by uuid,
    PRIMARY KEY (org_id, version)
);

-- Privileges: the system role runs the platform; the api role reads its org's audit trail.
GRANT SELECT, INSERT, UPDATE, DELETE ON orgbase.users, orgbase.orgs, orgbase.memberships,
    orgbase.sessions, orgbase.refresh_tokens, orgbase.api_keys, orgbase.org_settings,
    orgbase.org_settings_history TO orgbase_system;
GRANT SELECT, INSERT ON orgbase.audit_events TO orgbase_system;
GRANT SELECT ON orgbase.audit_events TO orgbase_api;

-- Row-level security on org-owned platform tables.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['memberships', 'api_keys', 'audit_events', 'org_settings',
                             'org_settings_history']
    LOOP
        EXECUTE format('ALTER TABLE orgbase.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE orgbase.%I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY system_all ON orgbase.%I TO orgbase_system USING (true) WITH CHECK (true)',
            t);
    END LOOP;
END
$$;

-- Admins and owners read their own org's audit trail through the tenant pool.
CREATE POLICY tenant_admin_read ON orgbase.audit_events FOR SELECT TO orgbase_api
    USING (org_id = (SELECT orgbase.current_org_id()) AND (SELECT orgbase.current_role_rank()) >= 3);
