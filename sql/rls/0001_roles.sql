-- The two login roles the gateway uses. The migration owner (whoever runs this) owns every
-- object; neither login role owns anything, so FORCE ROW LEVEL SECURITY applies to both.
--   orgbase_api     tenant data pool: NOBYPASSRLS, sees rows only through the org context.
--   orgbase_system  platform internals (auth lookups, memberships): never touches schema api.
-- Passwords are set by `orgbase migrate` from the configured URLs.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orgbase_api') THEN
        CREATE ROLE orgbase_api LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orgbase_system') THEN
        CREATE ROLE orgbase_system LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
    END IF;
END
$$;

-- Enforced even when the roles existed before (another database of the same cluster).
ALTER ROLE orgbase_api NOSUPERUSER NOBYPASSRLS;
ALTER ROLE orgbase_system NOSUPERUSER NOBYPASSRLS;

CREATE SCHEMA IF NOT EXISTS orgbase;
CREATE SCHEMA IF NOT EXISTS api;
REVOKE ALL ON SCHEMA orgbase FROM PUBLIC;
REVOKE ALL ON SCHEMA api FROM PUBLIC;
GRANT USAGE ON SCHEMA orgbase TO orgbase_api, orgbase_system;
-- Only the tenant role reaches tenant tables.
GRANT USAGE ON SCHEMA api TO orgbase_api;
