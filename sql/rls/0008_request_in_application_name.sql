-- The request id also goes to application_name (transaction-local), so slow-query logs
-- (%a in log_line_prefix) and pg_stat_activity name the request a statement serves.
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
            set_config('orgbase.key_id', '', true),
            set_config('application_name', 'orgbase ' || coalesce(p_request, ''), true);
    RETURN member_role;
END
$$;
REVOKE ALL ON FUNCTION orgbase.enter_session(uuid, uuid, uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION orgbase.enter_session(uuid, uuid, uuid, text) TO orgbase_api;
