-- Per-org limits and usage (see orgbase/limits/).
--
-- org_limits: the limits a platform admin set for an org, as a flat JSON object of the
-- names in orgbase/core/org_limits.py; any name absent uses the settings' default. A
-- change is announced on the channel orgbase_limits (payload: the org id) so every gateway
-- reloads its cached copy.
--
-- org_usage: each org's usage per hour and metric, rolled up from the gateways' counters
-- (through Redis). Counters hold totals for the hour, so a repeated rollup writes the same
-- figure (GREATEST) and nothing is counted twice. No foreign key: the usage of a deleted
-- org stays for billing.

CREATE TABLE orgbase.org_limits (
    org_id uuid PRIMARY KEY REFERENCES orgbase.orgs (id) ON DELETE CASCADE,
    overrides jsonb NOT NULL CHECK (jsonb_typeof(overrides) = 'object'),
    updated_by uuid,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE orgbase.org_usage (
    org_id uuid NOT NULL,
    hour timestamptz NOT NULL,
    metric text NOT NULL,
    value bigint NOT NULL,
    PRIMARY KEY (org_id, hour, metric)
);
CREATE INDEX org_usage_hour_idx ON orgbase.org_usage (hour);

GRANT SELECT, INSERT, UPDATE, DELETE ON orgbase.org_limits, orgbase.org_usage TO orgbase_system;
