-- The operator's functions on events and on a schedule (orgbase/functions/).
--
-- Triggers use the transactional outbox webhooks use: every reportable change is written
-- to orgbase.audit_events in the transaction of the change, and a trigger on it writes one
-- function_deliveries row per subscribed function, in the same transaction (a change that
-- commits has its deliveries, one that rolls back has none, a crash after the commit loses
-- nothing). Gateways claim due deliveries with FOR UPDATE SKIP LOCKED under a lease; a
-- delivery is done when its function answers 2xx, retried on a schedule otherwise, and
-- dead (kept for the dead-letter view) after the last attempt.
--
-- A claimed delivery enters its org through enter_function_delivery: the claim's secret
-- (its SHA-256 is kept while the claim holds) and the org it was made for, with the role the
-- function's config gives its triggers and no user. So a function run by an event reaches
-- that event's org only, and only while its delivery is claimed.

CREATE TABLE orgbase.function_subscriptions (
    function text NOT NULL CHECK (length(function) <= 63),
    pattern text NOT NULL CHECK (length(pattern) <= 200),
    role text NOT NULL CHECK (role IN ('viewer', 'member', 'admin', 'owner')),
    PRIMARY KEY (function, pattern)
);

CREATE TABLE orgbase.function_deliveries (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    function text NOT NULL,
    org_id uuid NOT NULL REFERENCES orgbase.orgs (id) ON DELETE CASCADE,
    event_id bigint NOT NULL,
    event_type text NOT NULL,
    role text NOT NULL,
    payload jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    claim_hash bytea,
    claimed_until timestamptz,
    last_status integer,
    last_error text,
    delivered_at timestamptz,
    UNIQUE (function, event_id)
);
CREATE INDEX function_deliveries_due_idx ON orgbase.function_deliveries (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX function_deliveries_org_idx ON orgbase.function_deliveries (org_id, id DESC);
CREATE INDEX function_deliveries_dead_idx ON orgbase.function_deliveries (id DESC)
    WHERE status = 'dead';
CREATE INDEX function_deliveries_age_idx ON orgbase.function_deliveries (created_at);

-- One row per (function, tick): inserting it is the lease that makes exactly one gateway
-- run that tick; ticks a downtime skipped are recorded as 'missed', never run late.
CREATE TABLE orgbase.function_schedule_runs (
    function text NOT NULL,
    tick timestamptz NOT NULL,
    status text NOT NULL CHECK (status IN ('running', 'done', 'failed', 'missed')),
    gateway text,
    started_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    detail text,
    PRIMARY KEY (function, tick)
);
CREATE INDEX function_schedule_runs_age_idx ON orgbase.function_schedule_runs (started_at);

GRANT SELECT, INSERT, UPDATE, DELETE ON orgbase.function_subscriptions,
    orgbase.function_deliveries, orgbase.function_schedule_runs TO orgbase_system;

-- The outbox: one delivery per function subscribed to the event. An event written by a
-- function's own trigger run (its request id names the function) does not run that function
-- again: a function that writes what it listens to would otherwise never stop.
CREATE FUNCTION orgbase.function_fanout() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, orgbase AS $$
DECLARE
    kind text;
BEGIN
    -- The common case first: no function listens to anything (one index probe).
    IF NEW.org_id IS NULL OR NOT EXISTS (SELECT 1 FROM orgbase.function_subscriptions) THEN
        RETURN NULL;
    END IF;
    kind := orgbase.webhook_event_type(NEW.action, NEW.target_table);
    IF kind IS NULL OR kind = 'webhook.test' THEN
        RETURN NULL;
    END IF;
    INSERT INTO orgbase.function_deliveries (function, org_id, event_id, event_type, role, payload)
    SELECT s.function, NEW.org_id, NEW.id, kind, s.role, jsonb_build_object(
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
    FROM (SELECT function, max(role) AS role, array_agg(pattern) AS patterns
          FROM orgbase.function_subscriptions GROUP BY function) AS s
    WHERE orgbase.webhook_subscribed(s.patterns, kind)
      AND NOT (coalesce(NEW.request_id, '') LIKE 'fn.%'
               AND split_part(NEW.request_id, '.', 2) = s.function)
    ON CONFLICT (function, event_id) DO NOTHING;
    IF FOUND THEN
        PERFORM pg_notify('orgbase_function_deliveries', '');
    END IF;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION orgbase.function_fanout() FROM PUBLIC;

CREATE TRIGGER function_fanout AFTER INSERT ON orgbase.audit_events
    FOR EACH ROW EXECUTE FUNCTION orgbase.function_fanout();

-- A claimed delivery's entry into its org. OB413: the delivery is not claimed with this
-- secret any more (the lease ran out, it was delivered); OB404: the org is gone.
CREATE FUNCTION orgbase.enter_function_delivery(
    p_delivery bigint, p_secret text, p_org uuid, p_request text) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    delivery_role text;
    org_live boolean;
    done text;
BEGIN
    SELECT x.role, x.live,
           CASE WHEN x.live THEN
               orgbase.set_context(x.signed, orgbase.context_proof(x.ipad, x.opad, x.signed),
                                   p_request)
           END
    INTO delivery_role, org_live, done
    FROM (SELECT d.role, o.deleted_at IS NULL AS live, k.ipad, k.opad,
                 orgbase.context_text('function', p_org, NULL, d.role, NULL) AS signed
          FROM orgbase.function_deliveries d
          JOIN orgbase.orgs o ON o.id = d.org_id
          CROSS JOIN orgbase.context_key k
          WHERE d.id = p_delivery AND d.org_id = p_org AND d.status = 'pending'
            AND d.claimed_until > now() AND p_secret IS NOT NULL
            AND d.claim_hash = sha256(convert_to(p_secret, 'UTF8'))
          OFFSET 0) AS x;
    IF delivery_role IS NULL THEN
        RAISE EXCEPTION 'the delivery is not claimed with this secret' USING ERRCODE = 'OB413';
    END IF;
    IF NOT org_live THEN
        RAISE EXCEPTION 'no such org' USING ERRCODE = 'OB404';
    END IF;
    RETURN delivery_role;
END
$$;
REVOKE ALL ON FUNCTION orgbase.enter_function_delivery(bigint, text, uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION orgbase.enter_function_delivery(bigint, text, uuid, text)
    TO orgbase_api;
