-- The example app migration: the demo's tenant table. Installs made before app migrations
-- existed already have api.items (seed-demo created it): IF NOT EXISTS adopts it, and
-- enable_tenancy only refreshes its policies.
CREATE TABLE IF NOT EXISTS api.items (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title text NOT NULL,
    status text,
    created_at timestamptz NOT NULL DEFAULT now()
);
SELECT orgbase.enable_tenancy('api.items');
