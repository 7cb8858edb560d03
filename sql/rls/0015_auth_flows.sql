-- Auth flows (GoTrue's API under /auth/v1): confirmed emails, one-time codes (sign-up
-- confirmation, recovery, magic links, email change), TOTP factors with recovery codes, and
-- the assurance level (aal1/aal2) of each session.

ALTER TABLE orgbase.users
    ADD COLUMN email_confirmed_at timestamptz,
    ADD COLUMN last_sign_in_at timestamptz,
    ADD COLUMN last_org_id uuid REFERENCES orgbase.orgs (id) ON DELETE SET NULL,
    ADD COLUMN user_metadata jsonb NOT NULL DEFAULT '{}'
        CHECK (jsonb_typeof(user_metadata) = 'object' AND length(user_metadata::text) <= 16384),
    ADD COLUMN new_email text CHECK (new_email = lower(new_email));
-- Accounts made before confirmation existed were usable: they count as confirmed.
UPDATE orgbase.users SET email_confirmed_at = created_at WHERE email_confirmed_at IS NULL;

-- What a session proved: aal2 once a second factor was verified in it (kept across
-- refreshes: the level belongs to the session, not to a token).
ALTER TABLE orgbase.sessions
    ADD COLUMN aal text NOT NULL DEFAULT 'aal1' CHECK (aal IN ('aal1', 'aal2')),
    ADD COLUMN amr jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(amr) = 'array');

-- One-time codes mailed to an address: a 6-digit code and a link token, both stored
-- hashed, single use, short-lived, and dead after a few wrong guesses.
CREATE TABLE orgbase.auth_codes (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES orgbase.users (id) ON DELETE CASCADE,
    purpose text NOT NULL
        CHECK (purpose IN ('signup', 'recovery', 'magiclink', 'email_change')),
    email text NOT NULL CHECK (email = lower(email)),
    code_hash bytea NOT NULL,
    link_hash bytea NOT NULL UNIQUE,
    attempts integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at timestamptz
);
CREATE INDEX auth_codes_live_idx ON orgbase.auth_codes (email, purpose) WHERE used_at IS NULL;
CREATE INDEX auth_codes_user_idx ON orgbase.auth_codes (user_id);

-- TOTP factors (RFC 6238): unverified until a first code proves the enrolment.
CREATE TABLE orgbase.mfa_factors (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES orgbase.users (id) ON DELETE CASCADE,
    factor_type text NOT NULL DEFAULT 'totp' CHECK (factor_type = 'totp'),
    friendly_name text NOT NULL CHECK (length(friendly_name) BETWEEN 1 AND 200),
    secret text NOT NULL,
    status text NOT NULL DEFAULT 'unverified' CHECK (status IN ('unverified', 'verified')),
    last_step bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, friendly_name)
);

CREATE TABLE orgbase.mfa_challenges (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    factor_id uuid NOT NULL REFERENCES orgbase.mfa_factors (id) ON DELETE CASCADE,
    session_id uuid NOT NULL REFERENCES orgbase.sessions (id) ON DELETE CASCADE,
    attempts integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    verified_at timestamptz
);
CREATE INDEX mfa_challenges_factor_idx ON orgbase.mfa_challenges (factor_id);

-- Recovery codes: each one works once, instead of a TOTP code.
CREATE TABLE orgbase.mfa_recovery_codes (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES orgbase.users (id) ON DELETE CASCADE,
    code_hash bytea NOT NULL,
    used_at timestamptz,
    UNIQUE (user_id, code_hash)
);

GRANT SELECT, INSERT, UPDATE, DELETE
    ON orgbase.auth_codes, orgbase.mfa_factors, orgbase.mfa_challenges, orgbase.mfa_recovery_codes
    TO orgbase_system;

-- "Members must use MFA": an org's routes refuse sessions below aal2.
ALTER TABLE orgbase.orgs ADD COLUMN mfa_required boolean NOT NULL DEFAULT false;

-- A session's entry now also carries its assurance level in the signed context (the kind
-- 'session_aal2' for an aal2 session), and refuses an aal1 session in an org that requires
-- MFA. OB403: the org requires a second factor.
CREATE OR REPLACE FUNCTION orgbase.enter_session(
    p_session uuid, p_user uuid, p_org uuid, p_request text) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    member_role text;
    done text;
BEGIN
    SELECT x.role, orgbase.set_context(x.signed, orgbase.context_proof(x.ipad, x.opad, x.signed),
                                       p_request)
    INTO member_role, done
    FROM (SELECT m.role, k.ipad, k.opad,
                 orgbase.context_text(CASE s.aal WHEN 'aal2' THEN 'session_aal2' ELSE 'session' END,
                                      p_org, p_user, m.role, NULL) AS signed
          FROM orgbase.sessions s
          JOIN orgbase.users u ON u.id = s.user_id AND u.deleted_at IS NULL
          JOIN orgbase.memberships m ON m.user_id = s.user_id AND m.org_id = p_org
          JOIN orgbase.orgs o ON o.id = m.org_id AND o.deleted_at IS NULL
          CROSS JOIN orgbase.context_key k
          WHERE s.id = p_session AND s.user_id = p_user
            AND s.revoked_at IS NULL AND s.expires_at > now()
            AND (NOT o.mfa_required OR s.aal = 'aal2')
          OFFSET 0) AS x;
    IF member_role IS NULL THEN
        IF NOT EXISTS (
            SELECT 1 FROM orgbase.sessions s
            JOIN orgbase.users u ON u.id = s.user_id AND u.deleted_at IS NULL
            WHERE s.id = p_session AND s.user_id = p_user
              AND s.revoked_at IS NULL AND s.expires_at > now()) THEN
            RAISE EXCEPTION 'the session has ended' USING ERRCODE = 'OB401';
        END IF;
        IF EXISTS (
            SELECT 1 FROM orgbase.memberships m
            JOIN orgbase.orgs o ON o.id = m.org_id AND o.deleted_at IS NULL AND o.mfa_required
            WHERE m.org_id = p_org AND m.user_id = p_user) THEN
            RAISE EXCEPTION 'the org requires a second factor' USING ERRCODE = 'OB403';
        END IF;
        RAISE EXCEPTION 'no such org' USING ERRCODE = 'OB404';
    END IF;
    RETURN member_role;
END
$$;

-- The assurance level of the verified context, for policies: 'aal2' or 'aal1' for a
-- user's session, NULL for API keys, impersonations and no context.
CREATE FUNCTION orgbase.current_aal() RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE (orgbase.verified_context()).kind
        WHEN 'session_aal2' THEN 'aal2' WHEN 'session' THEN 'aal1' END
$$;
REVOKE ALL ON FUNCTION orgbase.current_aal() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION orgbase.current_aal() TO orgbase_api, orgbase_system;

-- An impersonation of an org that requires MFA needs the admin's own session at aal2
-- (OB403 otherwise): a platform admin's password alone does not reach such an org.
CREATE OR REPLACE FUNCTION orgbase.enter_impersonation(
    p_impersonation uuid, p_session uuid, p_org uuid, p_request text) RETURNS text
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
          JOIN orgbase.sessions s ON s.id = p_session AND s.user_id = i.admin_user_id
              AND s.revoked_at IS NULL AND s.expires_at > now()
          JOIN orgbase.orgs o ON o.id = i.org_id
          CROSS JOIN orgbase.context_key k
          WHERE i.id = p_impersonation AND i.org_id = p_org
            AND i.ended_at IS NULL AND i.expires_at > now()
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

-- Accounts at OpenID providers linked to users (by the provider's subject; first linked by
-- a verified email).
CREATE TABLE orgbase.identities (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES orgbase.users (id) ON DELETE CASCADE,
    provider text NOT NULL CHECK (length(provider) BETWEEN 1 AND 200),
    subject text NOT NULL CHECK (length(subject) BETWEEN 1 AND 255),
    email text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_sign_in_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (provider, subject)
);
CREATE INDEX identities_user_idx ON orgbase.identities (user_id);
GRANT SELECT, INSERT, UPDATE, DELETE ON orgbase.identities TO orgbase_system;

-- Per-org SSO: an org's own OpenID provider, and the email domains it answers for (a
-- domain belongs to one org, and counts once a platform admin verified it). Users of a
-- verified domain reach the org only with a session its provider signed in.
CREATE TABLE orgbase.org_sso (
    org_id uuid PRIMARY KEY REFERENCES orgbase.orgs (id) ON DELETE CASCADE,
    issuer text NOT NULL CHECK (length(issuer) BETWEEN 8 AND 500),
    client_id text NOT NULL CHECK (length(client_id) BETWEEN 1 AND 500),
    client_secret text NOT NULL CHECK (length(client_secret) BETWEEN 1 AND 500),
    default_role text NOT NULL DEFAULT 'member' CHECK (default_role IN ('admin', 'member', 'viewer')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE orgbase.org_sso_domains (
    domain text PRIMARY KEY CHECK (domain = lower(domain) AND length(domain) BETWEEN 3 AND 253),
    org_id uuid NOT NULL REFERENCES orgbase.orgs (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    verified_at timestamptz
);
CREATE INDEX org_sso_domains_org_idx ON orgbase.org_sso_domains (org_id);
GRANT SELECT, INSERT, UPDATE, DELETE ON orgbase.org_sso, orgbase.org_sso_domains
    TO orgbase_system;

-- The org whose provider signed a session in, and that provider's refresh token (used at
-- every refresh: a user removed at the provider loses the session then).
ALTER TABLE orgbase.sessions
    ADD COLUMN sso_org_id uuid REFERENCES orgbase.orgs (id) ON DELETE SET NULL,
    ADD COLUMN sso_refresh_token text;

-- Does this user (by email domain) have to come through the org's SSO?
-- (Plain SQL, inlined into the entry's statement: one primary-key lookup.)
CREATE FUNCTION orgbase.sso_bound(p_org uuid, p_email text) RETURNS boolean
    LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM orgbase.org_sso_domains d
                   WHERE d.domain = pg_catalog.split_part(p_email, '@', 2) AND d.org_id = p_org
                     AND d.verified_at IS NOT NULL)
$$;
REVOKE ALL ON FUNCTION orgbase.sso_bound(uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION orgbase.sso_bound(uuid, text) TO orgbase_system;

-- The session entry once more: MFA (OB403) and SSO (OB406: this org wants its users
-- signed in through its provider).
CREATE OR REPLACE FUNCTION orgbase.enter_session(
    p_session uuid, p_user uuid, p_org uuid, p_request text) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    member_role text;
    done text;
BEGIN
    SELECT x.role, orgbase.set_context(x.signed, orgbase.context_proof(x.ipad, x.opad, x.signed),
                                       p_request)
    INTO member_role, done
    FROM (SELECT m.role, k.ipad, k.opad,
                 orgbase.context_text(CASE s.aal WHEN 'aal2' THEN 'session_aal2' ELSE 'session' END,
                                      p_org, p_user, m.role, NULL) AS signed
          FROM orgbase.sessions s
          JOIN orgbase.users u ON u.id = s.user_id AND u.deleted_at IS NULL
          JOIN orgbase.memberships m ON m.user_id = s.user_id AND m.org_id = p_org
          JOIN orgbase.orgs o ON o.id = m.org_id AND o.deleted_at IS NULL
          CROSS JOIN orgbase.context_key k
          WHERE s.id = p_session AND s.user_id = p_user
            AND s.revoked_at IS NULL AND s.expires_at > now()
            AND (NOT o.mfa_required OR s.aal = 'aal2')
            AND (s.sso_org_id IS NOT DISTINCT FROM p_org OR NOT orgbase.sso_bound(p_org, u.email))
          OFFSET 0) AS x;
    IF member_role IS NULL THEN
        IF NOT EXISTS (
            SELECT 1 FROM orgbase.sessions s
            JOIN orgbase.users u ON u.id = s.user_id AND u.deleted_at IS NULL
            WHERE s.id = p_session AND s.user_id = p_user
              AND s.revoked_at IS NULL AND s.expires_at > now()) THEN
            RAISE EXCEPTION 'the session has ended' USING ERRCODE = 'OB401';
        END IF;
        IF EXISTS (
            SELECT 1 FROM orgbase.memberships m
            JOIN orgbase.orgs o ON o.id = m.org_id AND o.deleted_at IS NULL
            JOIN orgbase.users u ON u.id = m.user_id
            WHERE m.org_id = p_org AND m.user_id = p_user AND orgbase.sso_bound(p_org, u.email)) THEN
            RAISE EXCEPTION 'the org wants its SSO' USING ERRCODE = 'OB406';
        END IF;
        IF EXISTS (
            SELECT 1 FROM orgbase.memberships m
            JOIN orgbase.orgs o ON o.id = m.org_id AND o.deleted_at IS NULL AND o.mfa_required
            WHERE m.org_id = p_org AND m.user_id = p_user) THEN
            RAISE EXCEPTION 'the org requires a second factor' USING ERRCODE = 'OB403';
        END IF;
        RAISE EXCEPTION 'no such org' USING ERRCODE = 'OB404';
    END IF;
    RETURN member_role;
END
$$;
