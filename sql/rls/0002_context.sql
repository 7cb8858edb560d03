-- The per-request org context. The gateway sets transaction-local settings
-- (set_config(..., true)); these functions read them. A pooled connection that once set a
-- setting returns '' (not NULL) afterwards, hence NULLIF: no context means NULL, and NULL
-- matches no row.

CREATE OR REPLACE FUNCTION orgbase.current_org_id() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT NULLIF(current_setting('orgbase.org_id', true), '')::uuid $$;

CREATE OR REPLACE FUNCTION orgbase.current_user_id() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT NULLIF(current_setting('orgbase.user_id', true), '')::uuid $$;

CREATE OR REPLACE FUNCTION orgbase.current_member_role() RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT NULLIF(current_setting('orgbase.role', true), '') $$;

CREATE OR REPLACE FUNCTION orgbase.current_request_id() RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT NULLIF(current_setting('orgbase.request_id', true), '') $$;

-- viewer < member < admin < owner; 0 for no role (no context).
CREATE OR REPLACE FUNCTION orgbase.role_rank(role text) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
        SELECT CASE role
            WHEN 'viewer' THEN 1
            WHEN 'member' THEN 2
            WHEN 'admin' THEN 3
            WHEN 'owner' THEN 4
            ELSE 0
        END
    $$;

CREATE OR REPLACE FUNCTION orgbase.current_role_rank() RETURNS integer
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT orgbase.role_rank(orgbase.current_member_role()) $$;

REVOKE ALL ON FUNCTION orgbase.current_org_id(), orgbase.current_user_id(),
    orgbase.current_member_role(), orgbase.current_request_id(), orgbase.role_rank(text),
    orgbase.current_role_rank() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION orgbase.current_org_id(), orgbase.current_user_id(),
    orgbase.current_member_role(), orgbase.current_request_id(), orgbase.role_rank(text),
    orgbase.current_role_rank() TO orgbase_api, orgbase_system;
