-- The operator's functions (orgbase/functions/): the log of their invocations, per org and
-- function, for the studio's Functions page and the org's admins. A row is written by the
-- gateway that ran the invocation, in batches, after the answer; `error` holds the
-- traceback of a function that raised (shown to platform admins only, never to the caller).
-- An org's rows go with the org; anonymous calls of public functions have no org.

CREATE TABLE orgbase.function_invocations (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id uuid REFERENCES orgbase.orgs (id) ON DELETE CASCADE,
    function text NOT NULL CHECK (length(function) <= 63),
    kind text NOT NULL CHECK (kind IN ('http', 'event', 'schedule')),
    request_id text,
    status integer NOT NULL,
    outcome text NOT NULL,
    duration_ms integer NOT NULL,
    cpu_ms integer NOT NULL DEFAULT 0,
    error text,
    logs jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX function_invocations_org_idx
    ON orgbase.function_invocations (org_id, function, id DESC);
CREATE INDEX function_invocations_function_idx ON orgbase.function_invocations (function, id DESC);
CREATE INDEX function_invocations_age_idx ON orgbase.function_invocations (created_at);

GRANT SELECT, INSERT, DELETE ON orgbase.function_invocations TO orgbase_system;
