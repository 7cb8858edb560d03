-- Session secrets: entering a session's org needs a secret only its live tokens carry.
--
-- Until now orgbase.enter_session(session, user, org, request) entered an org with ids
-- alone, and ids are not secrets: every access token (expired ones too) and the audit log
-- carry the session id. Anyone holding the tenant role's credentials could enter a
-- member's org with an id read from there.
--
-- From here on every access token carries a random secret of its own (claim "ssec"),
-- made when the token is issued (sign-in, refresh, a second factor verified,
-- impersonation). Its SHA-256 is kept with what it opens, together with the token's expiry
-- (plus the clock skew the gateway allows):
--   orgbase.sessions.secret_hashes / secret_expires_at   the secrets of a session's tokens
--   orgbase.impersonations.secret_hash / secret_expires_at  an impersonation token's
-- and the entries compare SHA-256(secret) in SQL:
--   enter_session(session, secret, org, request)
--   enter_impersonation(impersonation, secret, org, request)
-- (the second parameter was the user id, resp. the admin's session id: the user now comes
-- from the session row, the admin's session from the impersonation row, which records the
-- session that started it). Still four parameters, so a query's own start at $5.
--
-- A refresh does not end the tokens issued before it: each secret lives exactly as long as
-- its token (concurrent refreshes and requests in flight with the previous token keep
-- working), and an expired token's secret is dead even while its session lives on. A
-- session keeps at most 16 live secrets (the ones expiring first make room).
--
-- Sessions and impersonations made before this migration have no secret: their access
-- tokens (which carry none either) are refused, the first refresh of a session gives it
-- one (refresh tokens carry over); impersonations in progress end.
--
-- Merging note: the function bodies below are those of 0015_auth_flows.sql with the
-- changes marked "[secret]"; nothing else in them changed.

-- The hash a secret is kept as (a plain SQL expression: inlined where it is used).
CREATE FUNCTION orgbase.secret_hash(p_secret text) RETURNS bytea
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT pg_catalog.sha256(pg_catalog.convert_to(p_secret, 'UTF8'))
$$;
REVOKE ALL ON FUNCTION orgbase.secret_hash(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION orgbase.secret_hash(text) TO orgbase_system;

-- Is p_secret one of these live secrets? (One array lookup; inlined as well.)
CREATE FUNCTION orgbase.secret_live(p_hashes bytea[], p_expires timestamptz[], p_secret text)
    RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(p_expires[pg_catalog.array_position(p_hashes, orgbase.secret_hash(p_secret))]
                    OPERATOR(pg_catalog.>) pg_catalog.now(), false)
$$;
REVOKE ALL ON FUNCTION orgbase.secret_live(bytea[], timestamptz[], text) FROM PUBLIC;

ALTER TABLE orgbase.sessions
    ADD COLUMN secret_hashes bytea[] NOT NULL DEFAULT '{}',
    ADD COLUMN secret_expires_at timestamptz[] NOT NULL DEFAULT '{}',
    ADD CONSTRAINT sessions_secrets_paired CHECK (
        cardinality(secret_hashes) = cardinality(secret_expires_at)
        AND cardinality(secret_hashes) <= 16);

ALTER TABLE orgbase.impersonations
    ADD COLUMN session_id uuid REFERENCES orgbase.sessions (id) ON DELETE CASCADE,
    ADD COLUMN secret_hash bytea,
    ADD COLUMN secret_expires_at timestamptz;
-- Impersonations in progress have no secret: they end (an admin starts a new one).
UPDATE orgbase.impersonations SET ended_at = now() WHERE ended_at IS NULL;
ALTER TABLE orgbase.impersonations ADD CONSTRAINT impersonations_bound CHECK (
    ended_at IS NOT NULL
    OR (session_id IS NOT NULL AND secret_hash IS NOT NULL AND secret_expires_at IS NOT NULL));
CREATE INDEX impersonations_session_idx ON orgbase.impersonations (session_id);

-- The entries by ids alone are gone (a CREATE OR REPLACE of the old signatures would
-- bring them back: tests/integration/test_rls.py checks that none exists).
DROP FUNCTION orgbase.enter_session(uuid, uuid, uuid, text);
DROP FUNCTION orgbase.enter_impersonation(uuid, uuid, uuid, text);

-- A user's session, by its id and the secret of one of its live tokens.
-- OB401: no live session with that secret; OB425 / OB406 / OB403 / OB404 as before.
CREATE FUNCTION orgbase.enter_session(
    p_session uuid, p_secret text, p_org uuid, p_request text) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    member_role text;
    done text;
    v_user uuid;  -- [secret] the session's user (was the parameter p_user)
BEGIN
    SELECT x.role, orgbase.set_context(x.signed, orgbase.context_proof(x.ipad, x.opad, x.signed),
                                       p_request)
    INTO member_role, done
    FROM (SELECT m.role, k.ipad, k.opad,
                 orgbase.context_text(CASE s.aal WHEN 'aal2' THEN 'session_aal2' ELSE 'session' END,
                                      p_org, s.user_id, m.role, NULL) AS signed
          FROM orgbase.sessions s
          JOIN orgbase.users u ON u.id = s.user_id AND u.deleted_at IS NULL
          JOIN orgbase.memberships m ON m.user_id = s.user_id AND m.org_id = p_org
          JOIN orgbase.orgs o ON o.id = m.org_id AND o.deleted_at IS NULL
          CROSS JOIN orgbase.context_key k
          WHERE s.id = p_session
            AND s.revoked_at IS NULL AND s.expires_at > now()
            -- [secret] one of the session's live tokens presented it
            AND orgbase.secret_live(s.secret_hashes, s.secret_expires_at, p_secret)
            AND (NOT o.mfa_required OR s.aal = 'aal2')
            -- [sso] as 0020: an SSO-bound membership needs the org's provider whatever the
            -- address, and a bound member off the org's domains is suspended
            AND (s.sso_org_id IS NOT DISTINCT FROM p_org
                 OR NOT orgbase.sso_needed(p_org, m.sso_bound, u.email))
            AND NOT orgbase.sso_suspended(p_org, m.sso_bound, u.email)
          OFFSET 0) AS x;
    IF member_role IS NULL THEN
        -- [secret] the same test decides OB401, so a wrong secret learns nothing more.
        SELECT s.user_id INTO v_user
        FROM orgbase.sessions s
        JOIN orgbase.users u ON u.id = s.user_id AND u.deleted_at IS NULL
        WHERE s.id = p_session
          AND s.revoked_at IS NULL AND s.expires_at > now()
          AND orgbase.secret_live(s.secret_hashes, s.secret_expires_at, p_secret);
        IF v_user IS NULL THEN
            RAISE EXCEPTION 'the session has ended' USING ERRCODE = 'OB401';
        END IF;
        -- [sso] as 0020: OB425 before OB406
        IF EXISTS (
            SELECT 1 FROM orgbase.memberships m
            JOIN orgbase.orgs o ON o.id = m.org_id AND o.deleted_at IS NULL
            JOIN orgbase.users u ON u.id = m.user_id
            WHERE m.org_id = p_org AND m.user_id = v_user
              AND orgbase.sso_suspended(p_org, m.sso_bound, u.email)) THEN
            RAISE EXCEPTION 'the SSO-bound membership is suspended' USING ERRCODE = 'OB425';
        END IF;
        IF EXISTS (
            SELECT 1 FROM orgbase.memberships m
            JOIN orgbase.orgs o ON o.id = m.org_id AND o.deleted_at IS NULL
            JOIN orgbase.users u ON u.id = m.user_id
            WHERE m.org_id = p_org AND m.user_id = v_user
              AND orgbase.sso_needed(p_org, m.sso_bound, u.email)) THEN
            RAISE EXCEPTION 'the org wants its SSO' USING ERRCODE = 'OB406';
        END IF;
        IF EXISTS (
            SELECT 1 FROM orgbase.memberships m
            JOIN orgbase.orgs o ON o.id = m.org_id AND o.deleted_at IS NULL AND o.mfa_required
            WHERE m.org_id = p_org AND m.user_id = v_user) THEN
            RAISE EXCEPTION 'the org requires a second factor' USING ERRCODE = 'OB403';
        END IF;
        RAISE EXCEPTION 'no such org' USING ERRCODE = 'OB404';
    END IF;
    RETURN member_role;
END
$$;

-- A platform admin's read-only look at one org, by the impersonation's id and its token's
-- secret; the admin's session is the one that started it. OB412 when the admin's session,
-- the impersonation or its token has ended (or the secret is wrong); OB404 when the org is
-- gone; OB403 when the org requires MFA and the admin's session is aal1.
CREATE FUNCTION orgbase.enter_impersonation(
    p_impersonation uuid, p_secret text, p_org uuid, p_request text) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    admin_id uuid;
    org_live boolean;
    short_of_mfa boolean;
    done text;
BEGIN
    SELECT x.admin_user_id, x.live, x.short_of_mfa,
           CASE WHEN x.live AND NOT x.short_of_mfa THEN
               orgbase.set_context(x.signed, orgbase.context_proof(x.ipad, x.opad, x.signed),
                                   p_request)
           END
    INTO admin_id, org_live, short_of_mfa, done
    FROM (SELECT i.admin_user_id, o.deleted_at IS NULL AS live, k.ipad, k.opad,
                 o.mfa_required AND s.aal <> 'aal2' AS short_of_mfa,
                 orgbase.context_text('impersonation', p_org, i.admin_user_id, 'viewer', NULL)
                     AS signed
          FROM orgbase.impersonations i
          JOIN orgbase.users u ON u.id = i.admin_user_id AND u.deleted_at IS NULL
              AND u.is_platform_admin
          -- [secret] the session that started the impersonation (was the parameter)
          JOIN orgbase.sessions s ON s.id = i.session_id AND s.user_id = i.admin_user_id
              AND s.revoked_at IS NULL AND s.expires_at > now()
          JOIN orgbase.orgs o ON o.id = i.org_id
          CROSS JOIN orgbase.context_key k
          WHERE i.id = p_impersonation AND i.org_id = p_org
            AND i.ended_at IS NULL AND i.expires_at > now()
            -- [secret] the impersonation token presented it, before the token expired
            AND i.secret_hash = orgbase.secret_hash(p_secret) AND i.secret_expires_at > now()
          OFFSET 0) AS x;
    IF admin_id IS NULL THEN
        RAISE EXCEPTION 'the impersonation has ended' USING ERRCODE = 'OB412';
    END IF;
    IF NOT org_live THEN
        RAISE EXCEPTION 'no such org' USING ERRCODE = 'OB404';
    END IF;
    IF short_of_mfa THEN
        RAISE EXCEPTION 'the org requires a second factor' USING ERRCODE = 'OB403';
    END IF;
    RETURN 'viewer';
END
$$;

REVOKE ALL ON FUNCTION orgbase.enter_session(uuid, text, uuid, text),
    orgbase.enter_impersonation(uuid, text, uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION orgbase.enter_session(uuid, text, uuid, text),
    orgbase.enter_impersonation(uuid, text, uuid, text) TO orgbase_api;
