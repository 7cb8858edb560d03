-- Webhooks: an org's endpoints and the deliveries owed to them (a transactional outbox).
--
-- Every change orgbase reports is already written to orgbase.audit_events in the
-- transaction of the change (row changes by trigger, members, invitations, settings and
-- API keys by the services). A trigger on that table turns each reportable event into one
-- delivery per subscribed endpoint, in the same transaction: a change that commits has its
-- deliveries, one that rolls back has none, and a crash after the commit loses nothing.
-- Gateways claim due deliveries with FOR UPDATE SKIP LOCKED (see orgbase/webhooks/).

CREATE TABLE orgbase.webhook_endpoints (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES orgbase.orgs (id) ON DELETE CASCADE,
    url text NOT NULL CHECK (length(url) <= 2000),
    description text CHECK (length(description) <= 500),
    events text[] NOT NULL CHECK (cardinality(events) BETWEEN 1 AND 50),
    secret text NOT NULL,
    previous_secret text,
    previous_secret_until timestamptz,
    enabled boolean NOT NULL DEFAULT true,
    disabled_reason text,
    created_by uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_org_idx ON orgbase.webhook_endpoints (org_id, created_at);
CREATE INDEX webhook_endpoints_live_idx ON orgbase.webhook_endpoints (org_id) WHERE enabled;

CREATE TABLE orgbase.webhook_deliveries (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id text NOT NULL,
    endpoint_id uuid NOT NULL REFERENCES orgbase.webhook_endpoints (id) ON DELETE CASCADE,
    org_id uuid NOT NULL REFERENCES orgbase.orgs (id) ON DELETE CASCADE,
    event_type text NOT NULL,
    payload jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_attempt_at timestamptz,
    last_status integer,
    last_error text,
    last_latency_ms integer,
    last_response text,
    delivered_at timestamptz
);
CREATE INDEX webhook_deliveries_due_idx ON orgbase.webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_log_idx ON orgbase.webhook_deliveries (endpoint_id, id DESC);
CREATE INDEX webhook_deliveries_age_idx ON orgbase.webhook_deliveries (created_at);

GRANT SELECT, INSERT, UPDATE, DELETE ON orgbase.webhook_endpoints, orgbase.webhook_deliveries
    TO orgbase_system;

-- The webhook event an audit event is reported as (NULL: not reported). Row changes of
-- tenant tables are db.<table>.<op>; the rest keep their action, members' departures
-- (left or removed) are member.removed and a rollback of the settings is an update.
CREATE FUNCTION orgbase.webhook_event_type(action text, target_table text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN action IN ('row.insert', 'row.update', 'row.delete') AND target_table LIKE 'api.%'
            THEN 'db.' || substr(target_table, 5) || '.' || substr(action, 5)
        WHEN action IN ('member.added', 'member.role_changed') THEN action
        WHEN action IN ('member.removed', 'member.left') THEN 'member.removed'
        WHEN action IN ('invitation.created', 'invitation.revoked', 'invitation.accepted')
            THEN action
        WHEN action IN ('settings.updated', 'settings.rolled_back') THEN 'settings.updated'
        WHEN action IN ('api_key.created', 'api_key.revoked') THEN action
        WHEN action LIKE 'docs.%' THEN action
        WHEN action = 'webhook.test' THEN action
    END
$$;

-- Does an endpoint's subscription list take this event? Exact names, or patterns where
-- '*' stands for any run of characters ('db.*', 'db.items.*', '*').
CREATE FUNCTION orgbase.webhook_subscribed(events text[], event_type text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    -- The pattern's own LIKE wildcards are escaped first, then '*' becomes '%'.
    SELECT EXISTS (
        SELECT 1 FROM unnest(events) AS pattern
        WHERE event_type LIKE replace(replace(replace(replace(
            pattern, '\', '\\'), '%', '\%'), '_', '\_'), '*', '%'))
$$;

CREATE FUNCTION orgbase.webhook_fanout() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, orgbase AS $$
DECLARE
    kind text;
BEGIN
    -- The common case first: an org with no live endpoint costs one index probe.
    IF NEW.org_id IS NULL OR NOT EXISTS (
        SELECT 1 FROM orgbase.webhook_endpoints WHERE org_id = NEW.org_id AND enabled) THEN
        RETURN NULL;
    END IF;
    kind := orgbase.webhook_event_type(NEW.action, NEW.target_table);
    IF kind IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO orgbase.webhook_deliveries (message_id, endpoint_id, org_id, event_type, payload)
    SELECT 'msg_' || NEW.id, e.id, NEW.org_id, kind, jsonb_build_object(
        'type', kind,
        'timestamp', to_char(NEW.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'data', jsonb_strip_nulls(jsonb_build_object(
            'org_id', NEW.org_id,
            'event_id', NEW.id,
            'actor', jsonb_strip_nulls(jsonb_build_object(
                'kind', NEW.actor_kind, 'user_id', NEW.actor_user_id,
                'api_key_id', NEW.actor_key_id)),
            'table', CASE WHEN NEW.target_table LIKE 'api.%'
                          THEN substr(NEW.target_table, 5) END,
            'key', NEW.row_key,
            'row', CASE WHEN NEW.action = 'row.delete' THEN NEW.old_values
                        ELSE NEW.new_values END,
            'old', CASE WHEN NEW.action = 'row.update' THEN NEW.old_values END,
            'details', NEW.details,
            'request_id', NEW.request_id)))
    FROM orgbase.webhook_endpoints e
    WHERE e.org_id = NEW.org_id AND e.enabled AND orgbase.webhook_subscribed(e.events, kind)
      -- A test event goes to the endpoint it names only.
      AND (kind <> 'webhook.test' OR e.id = (NEW.row_key ->> 'endpoint_id')::uuid);
    IF FOUND THEN
        PERFORM pg_notify('orgbase_webhooks', '');
    END IF;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION orgbase.webhook_fanout() FROM PUBLIC;

CREATE TRIGGER webhook_fanout AFTER INSERT ON orgbase.audit_events
    FOR EACH ROW EXECUTE FUNCTION orgbase.webhook_fanout();
