-- Credential lifecycles that span two things: a key and its org, an invitation and its
-- inviter, a deleted org and what it leaves behind.

-- Cache entries (Redis keys) that must be tombstoned after an outage although their rows
-- are gone (the API keys of a deleted org). Kept a day; the resync prunes older entries.
CREATE TABLE orgbase.credential_revocations (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    cache_key text NOT NULL,
    revoked_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX credential_revocations_at_idx ON orgbase.credential_revocations (revoked_at);
GRANT SELECT, INSERT, DELETE ON orgbase.credential_revocations TO orgbase_system;

-- An invitation made with an API key names the key: it grants at most what the key may
-- still grant when it is accepted (like one made by a user, whose membership decides).
ALTER TABLE orgbase.invitations
    ADD COLUMN invited_by_key uuid REFERENCES orgbase.api_keys (id) ON DELETE SET NULL;
CREATE INDEX invitations_inviter_idx ON orgbase.invitations (org_id, invited_by)
    WHERE accepted_at IS NULL AND revoked_at IS NULL;

-- Mail of an org (invitations) goes with the org while it is unsent.
ALTER TABLE orgbase.outbox ADD COLUMN org_id uuid;
CREATE INDEX outbox_org_idx ON orgbase.outbox (org_id) WHERE sent_at IS NULL;

-- Sign-in attempts reserved in PostgreSQL while Redis is down (the lockout's fallback):
-- counted per account (a hash of the email) since the account's last success.
CREATE INDEX audit_events_signin_account_idx ON orgbase.audit_events ((details ->> 'account'), id)
    WHERE action IN ('auth.signin_attempt', 'auth.signin');

-- The audit trail of a deleted org holds its data (rows' old and new values): it goes
-- with the org. Only the owner of the schema may delete audit events, and only those of an
-- org already closed for deletion, through orgbase.purge_org_audit.
CREATE OR REPLACE FUNCTION orgbase.refuse_audit_change() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'DELETE' AND OLD.org_id IS NOT NULL AND EXISTS (
        SELECT 1 FROM orgbase.orgs WHERE id = OLD.org_id AND deleted_at IS NOT NULL) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit events are append-only' USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE FUNCTION orgbase.purge_org_audit(p_org uuid) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    removed bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM orgbase.orgs WHERE id = p_org AND deleted_at IS NOT NULL) THEN
        RAISE EXCEPTION 'only a deleted org''s audit trail is purged' USING ERRCODE = 'OB404';
    END IF;
    DELETE FROM orgbase.audit_events WHERE org_id = p_org;
    GET DIAGNOSTICS removed = ROW_COUNT;
    RETURN removed;
END
$$;
REVOKE ALL ON FUNCTION orgbase.purge_org_audit(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION orgbase.purge_org_audit(uuid) TO orgbase_system;

-- The owner writes audit events (the row trigger) and purges them (above) through SECURITY
-- DEFINER functions: FORCE ROW LEVEL SECURITY would refuse it a row unless a policy names it
-- (a superuser owner bypasses RLS anyway).
DO $$
BEGIN
    EXECUTE format(
        'CREATE POLICY owner_all ON orgbase.audit_events TO %I USING (true) WITH CHECK (true)',
        current_user);
END
$$;
