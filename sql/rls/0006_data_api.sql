-- The data API's per-request entry: one function that checks, inside the same statement
-- as the query, that the session is alive and the user is a member of the org, then sets
-- the transaction-local context. PostgreSQL (the source of truth) answers every data
-- request, at no extra round trip: a revocation acts on the very next request.
--
-- It raises OB401 when the session has ended (or the user is gone) and OB404 when the
-- user is not a member of a live org.

-- Membership rows are read by this SECURITY DEFINER function as the owner: FORCE would
-- hide them from the owner (who has no policy). orgbase_api and orgbase_system are still
-- subject to the table's policies.
ALTER TABLE orgbase.memberships NO FORCE ROW LEVEL SECURITY;

CREATE OR REPLACE FUNCTION orgbase.enter_session(
    p_session uuid, p_user uuid, p_org uuid, p_request text) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, orgbase AS $$
DECLARE
    member_role text;
BEGIN
    SELECT m.role INTO member_role
    FROM orgbase.sessions s
    JOIN orgbase.users u ON u.id = s.user_id AND u.deleted_at IS NULL
    JOIN orgbase.memberships m ON m.user_id = s.user_id AND m.org_id = p_org
    JOIN orgbase.orgs o ON o.id = m.org_id AND o.deleted_at IS NULL
    WHERE s.id = p_session AND s.user_id = p_user
      AND s.revoked_at IS NULL AND s.expires_at > now();
    IF member_role IS NULL THEN
        IF NOT EXISTS (
            SELECT 1 FROM orgbase.sessions s
            JOIN orgbase.users u ON u.id = s.user_id AND u.deleted_at IS NULL
            WHERE s.id = p_session AND s.user_id = p_user
              AND s.revoked_at IS NULL AND s.expires_at > now()) THEN
            RAISE EXCEPTION 'the session has ended' USING ERRCODE = 'OB401';
        END IF;
        RAISE EXCEPTION 'no such org' USING ERRCODE = 'OB404';
    END IF;
    PERFORM set_config('orgbase.org_id', p_org::text, true),
            set_config('orgbase.user_id', p_user::text, true),
            set_config('orgbase.role', member_role, true),
            set_config('orgbase.request_id', coalesce(p_request, ''), true),
            set_config('orgbase.key_id', '', true);
    RETURN member_role;
END
$$;
REVOKE ALL ON FUNCTION orgbase.enter_session(uuid, uuid, uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION orgbase.enter_session(uuid, uuid, uuid, text) TO orgbase_api;

-- Tell gateways to reload their schema cache whenever a table becomes a tenant table.
CREATE OR REPLACE FUNCTION orgbase.enable_tenancy(target regclass) RETURNS void
    LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM orgbase.enable_tenancy_base(target);
    PERFORM orgbase.install_audit_trigger(target);
    PERFORM pg_notify('orgbase_schema', 'tenancy');
END
$fn$;
REVOKE ALL ON FUNCTION orgbase.enable_tenancy(regclass) FROM PUBLIC;
