-- Org SSO, hardened: an email domain is proven per claim, and an SSO-bound membership
-- follows the account, not its current address.
--
-- 1. A domain claim is per (org, domain). Any number of orgs may hold a pending claim on a
--    domain (a squatter's claim blocks nobody); at most one claim per domain is verified.
--    Each claim has its own random token: the org proves the domain by publishing it in
--    DNS (TXT _orgbase-challenge.<domain> = "orgbase-domain-verification=<token>"), or a
--    platform admin approves that one named claim. Claims verified before this migration
--    were approved by a platform admin (then the only claim of their domain): they stay
--    verified, marked so.

ALTER TABLE orgbase.org_sso_domains DROP CONSTRAINT org_sso_domains_pkey;
DROP INDEX orgbase.org_sso_domains_org_idx;
ALTER TABLE orgbase.org_sso_domains
    ADD PRIMARY KEY (org_id, domain),
    ADD COLUMN token text,
    ADD COLUMN verified_via text CHECK (verified_via IN ('dns', 'platform_admin'));
UPDATE orgbase.org_sso_domains
SET token = replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''),
    verified_via = CASE WHEN verified_at IS NOT NULL THEN 'platform_admin' END;
ALTER TABLE orgbase.org_sso_domains
    ALTER COLUMN token SET NOT NULL,
    ADD CONSTRAINT org_sso_domains_token_length CHECK (length(token) BETWEEN 32 AND 128),
    ADD CONSTRAINT org_sso_domains_verified_how
        CHECK ((verified_at IS NULL) = (verified_via IS NULL));
CREATE UNIQUE INDEX org_sso_domains_verified_once ON orgbase.org_sso_domains (domain)
    WHERE verified_at IS NOT NULL;
CREATE INDEX org_sso_domains_domain_idx ON orgbase.org_sso_domains (domain);

-- 2. SSO-bound memberships. A membership is bound to its org's SSO when the org's provider
--    provisioned it, or when its user's address is on a domain the org verified (at
--    verification, when the membership is made, when the address changes to such a
--    domain). A bound membership needs a session the org's provider signed in, whatever
--    the address is later; once the address is off the org's verified domains it gives no
--    access until an admin releases it (sso_bound = false) or removes the member.

ALTER TABLE orgbase.memberships ADD COLUMN sso_bound boolean NOT NULL DEFAULT false;
UPDATE orgbase.memberships m SET sso_bound = true
FROM orgbase.users u
WHERE u.id = m.user_id
  AND (orgbase.sso_bound(m.org_id, u.email)
       OR EXISTS (SELECT 1 FROM orgbase.identities i
                  WHERE i.user_id = m.user_id AND i.provider = 'sso:' || m.org_id::text));
CREATE INDEX memberships_sso_bound_idx ON orgbase.memberships (org_id) WHERE sso_bound;

-- (Triggers, so every route that makes a membership, changes an address or verifies a
-- domain binds alike.)
CREATE FUNCTION orgbase.bind_new_membership() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT NEW.sso_bound THEN
        NEW.sso_bound := EXISTS (SELECT 1 FROM orgbase.users u
                                 WHERE u.id = NEW.user_id
                                   AND orgbase.sso_bound(NEW.org_id, u.email));
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER memberships_bind_sso BEFORE INSERT ON orgbase.memberships
    FOR EACH ROW EXECUTE FUNCTION orgbase.bind_new_membership();

CREATE FUNCTION orgbase.bind_after_email_change() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE orgbase.memberships m SET sso_bound = true
    WHERE m.user_id = NEW.id AND NOT m.sso_bound AND orgbase.sso_bound(m.org_id, NEW.email);
    RETURN NULL;
END
$$;
CREATE TRIGGER users_email_binds_sso AFTER UPDATE OF email ON orgbase.users
    FOR EACH ROW WHEN (OLD.email IS DISTINCT FROM NEW.email)
    EXECUTE FUNCTION orgbase.bind_after_email_change();

CREATE FUNCTION orgbase.bind_after_domain_verified() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE orgbase.memberships m SET sso_bound = true
    FROM orgbase.users u
    WHERE m.org_id = NEW.org_id AND u.id = m.user_id AND NOT m.sso_bound
      AND pg_catalog.split_part(u.email, '@', 2) = NEW.domain;
    RETURN NULL;
END
$$;
CREATE TRIGGER org_sso_domains_bind AFTER INSERT OR UPDATE OF verified_at
    ON orgbase.org_sso_domains
    FOR EACH ROW WHEN (NEW.verified_at IS NOT NULL)
    EXECUTE FUNCTION orgbase.bind_after_domain_verified();

REVOKE ALL ON FUNCTION orgbase.bind_new_membership(), orgbase.bind_after_email_change(),
    orgbase.bind_after_domain_verified() FROM PUBLIC;

-- Must this membership come through the org's SSO? (bound, or its address is on a domain
-- the org verified.) Is it suspended? (bound, and its address is off those domains.)
-- Plain SQL, inlined into the entry's statement.
CREATE FUNCTION orgbase.sso_needed(p_org uuid, p_bound boolean, p_email text) RETURNS boolean
    LANGUAGE sql STABLE AS $$
    SELECT p_bound OR orgbase.sso_bound(p_org, p_email)
$$;
CREATE FUNCTION orgbase.sso_suspended(p_org uuid, p_bound boolean, p_email text)
    RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT p_bound AND NOT orgbase.sso_bound(p_org, p_email)
$$;
REVOKE ALL ON FUNCTION orgbase.sso_needed(uuid, boolean, text),
    orgbase.sso_suspended(uuid, boolean, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION orgbase.sso_needed(uuid, boolean, text),
    orgbase.sso_suspended(uuid, boolean, text) TO orgbase_system;

-- ---------------------------------------------------------------------------------------
-- enter_session: the SSO-bound membership (this block's ONLY change to the function as
-- 0015 left it; when merging with another redefinition, keep both):
--   * the SSO condition reads orgbase.sso_needed(p_org, m.sso_bound, u.email) where it
--     read orgbase.sso_bound(p_org, u.email) (in the WHERE clause and the OB406 check);
--   * a suspended membership does not enter: AND NOT orgbase.sso_suspended(...) in the
--     WHERE clause, and OB425 ("suspended") raised before OB406 when it is the reason.
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
            AND (s.sso_org_id IS NOT DISTINCT FROM p_org
                 OR NOT orgbase.sso_needed(p_org, m.sso_bound, u.email))
            AND NOT orgbase.sso_suspended(p_org, m.sso_bound, u.email)
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
            WHERE m.org_id = p_org AND m.user_id = p_user
              AND orgbase.sso_suspended(p_org, m.sso_bound, u.email)) THEN
            RAISE EXCEPTION 'the SSO-bound membership is suspended' USING ERRCODE = 'OB425';
        END IF;
        IF EXISTS (
            SELECT 1 FROM orgbase.memberships m
            JOIN orgbase.orgs o ON o.id = m.org_id AND o.deleted_at IS NULL
            JOIN orgbase.users u ON u.id = m.user_id
            WHERE m.org_id = p_org AND m.user_id = p_user
              AND orgbase.sso_needed(p_org, m.sso_bound, u.email)) THEN
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
-- (End of the enter_session block.)
