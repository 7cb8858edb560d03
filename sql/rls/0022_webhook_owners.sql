-- A webhook endpoint acts with the org's authority: it sends the org's rows to a place an
-- admin chose. So every endpoint has an owner who must still hold that authority: a person
-- who is an admin or owner of the org (owner_user_id), or, for endpoints registered by an
-- API key before keys lost that right, the live admin key that registered them
-- (owner_key_id). When the owner loses it (removed from the org, demoted below admin,
-- account deleted, key revoked) the endpoint is disabled in the same transaction, with an
-- audit record and a mail to the org's admins and owners; nothing more is sent to it until
-- an admin in person enables it again, which makes that admin its owner. The dispatcher
-- also claims a delivery only while its endpoint's owner holds the authority (a key that
-- expired, or a change made around these triggers), and its periodic check disables such
-- endpoints (orgbase/webhooks/).

ALTER TABLE orgbase.webhook_endpoints
    ADD COLUMN owner_user_id uuid REFERENCES orgbase.users (id) ON DELETE SET NULL,
    ADD COLUMN owner_key_id uuid REFERENCES orgbase.api_keys (id) ON DELETE SET NULL;
CREATE INDEX webhook_endpoints_owner_user_idx ON orgbase.webhook_endpoints (owner_user_id)
    WHERE enabled;
CREATE INDEX webhook_endpoints_owner_key_idx ON orgbase.webhook_endpoints (owner_key_id)
    WHERE enabled;

-- Does the owner still hold the org's authority? (No owner: no.) Inlinable SQL: the
-- dispatcher's claim calls it per due delivery.
CREATE FUNCTION orgbase.webhook_owner_in_authority(org uuid, owner_user uuid, owner_key uuid)
    RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN owner_user IS NOT NULL THEN EXISTS (
            SELECT 1 FROM orgbase.memberships m
            JOIN orgbase.users u ON u.id = m.user_id AND u.deleted_at IS NULL
            WHERE m.org_id = org AND m.user_id = owner_user AND m.role IN ('owner', 'admin'))
        WHEN owner_key IS NOT NULL THEN EXISTS (
            SELECT 1 FROM orgbase.api_keys k
            WHERE k.id = owner_key AND k.org_id = org AND k.role = 'admin'
              AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now()))
        ELSE false
    END
$$;

-- Disable the live endpoints (of one org, one owner, one key, or all when NULL) whose owner
-- no longer holds the authority: audited and mailed to the org's admins and owners, in the
-- caller's transaction. Endpoints of an org being deleted go with it, unannounced.
CREATE FUNCTION orgbase.webhook_disable_unowned(
    only_org uuid, only_user uuid, only_key uuid, why text) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, orgbase AS $$
DECLARE
    gone record;
    done integer := 0;
BEGIN
    FOR gone IN
        UPDATE orgbase.webhook_endpoints e
        SET enabled = false, disabled_reason = why, updated_at = now()
        FROM orgbase.orgs o
        WHERE e.enabled AND o.id = e.org_id AND o.deleted_at IS NULL
          AND (only_org IS NULL OR e.org_id = only_org)
          AND (only_user IS NULL OR e.owner_user_id = only_user)
          AND (only_key IS NULL OR e.owner_key_id = only_key)
          AND NOT orgbase.webhook_owner_in_authority(e.org_id, e.owner_user_id, e.owner_key_id)
        RETURNING e.id, e.org_id, e.url, e.owner_user_id, e.owner_key_id
    LOOP
        INSERT INTO orgbase.audit_events
            (org_id, actor_kind, action, target_table, row_key, details)
        VALUES (gone.org_id, 'system', 'webhook.disabled', 'orgbase.webhook_endpoints',
                jsonb_build_object('id', gone.id),
                jsonb_strip_nulls(jsonb_build_object(
                    'reason', why, 'owner_user_id', gone.owner_user_id,
                    'owner_key_id', gone.owner_key_id)));
        INSERT INTO orgbase.outbox (kind, recipient, subject, body, org_id)
        SELECT 'webhook_disabled', u.email, 'A webhook endpoint was disabled',
               format('The webhook endpoint %s (%s) was disabled: %s. It sends nothing until'
                      ' an admin enables it again, in person with a second factor; that'
                      ' admin then owns it.', gone.id, gone.url, why),
               gone.org_id
        FROM orgbase.memberships m
        JOIN orgbase.users u ON u.id = m.user_id AND u.deleted_at IS NULL
        WHERE m.org_id = gone.org_id AND m.role IN ('owner', 'admin');
        done := done + 1;
    END LOOP;
    RETURN done;
END
$$;
REVOKE ALL ON FUNCTION orgbase.webhook_disable_unowned(uuid, uuid, uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION orgbase.webhook_disable_unowned(uuid, uuid, uuid, text)
    TO orgbase_system;

-- The triggers: a membership ended or below admin, an account deleted, a key revoked.
CREATE FUNCTION orgbase.webhook_owner_lost() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, orgbase AS $$
BEGIN
    IF TG_TABLE_NAME = 'memberships' THEN
        PERFORM orgbase.webhook_disable_unowned(OLD.org_id, OLD.user_id, NULL,
            CASE TG_OP WHEN 'DELETE' THEN 'its owner left the org'
                       ELSE 'its owner is no longer an admin of the org' END);
    ELSIF TG_TABLE_NAME = 'users' THEN
        PERFORM orgbase.webhook_disable_unowned(NULL, OLD.id, NULL,
            'its owner''s account was deleted');
    ELSE
        PERFORM orgbase.webhook_disable_unowned(OLD.org_id, NULL, OLD.id,
            'the API key that owned it was revoked');
    END IF;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION orgbase.webhook_owner_lost() FROM PUBLIC;

CREATE TRIGGER webhook_owner_left AFTER DELETE ON orgbase.memberships
    FOR EACH ROW WHEN (OLD.role IN ('owner', 'admin'))
    EXECUTE FUNCTION orgbase.webhook_owner_lost();
CREATE TRIGGER webhook_owner_demoted AFTER UPDATE OF role ON orgbase.memberships
    FOR EACH ROW WHEN (OLD.role IN ('owner', 'admin') AND NEW.role NOT IN ('owner', 'admin'))
    EXECUTE FUNCTION orgbase.webhook_owner_lost();
CREATE TRIGGER webhook_owner_deleted AFTER UPDATE OF deleted_at ON orgbase.users
    FOR EACH ROW WHEN (OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL)
    EXECUTE FUNCTION orgbase.webhook_owner_lost();
CREATE TRIGGER webhook_owner_key_revoked AFTER UPDATE OF revoked_at ON orgbase.api_keys
    FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
    EXECUTE FUNCTION orgbase.webhook_owner_lost();

-- A stopped endpoint (disabled or deleted) is announced to every dispatcher, which drops
-- the deliveries it claimed for it and has not sent yet.
CREATE FUNCTION orgbase.webhook_stopped() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, orgbase AS $$
BEGIN
    PERFORM pg_notify('orgbase_webhook_stopped', OLD.id::text);
    RETURN NULL;
END
$$;
CREATE TRIGGER webhook_disabled AFTER UPDATE OF enabled ON orgbase.webhook_endpoints
    FOR EACH ROW WHEN (OLD.enabled AND NOT NEW.enabled)
    EXECUTE FUNCTION orgbase.webhook_stopped();
CREATE TRIGGER webhook_deleted AFTER DELETE ON orgbase.webhook_endpoints
    FOR EACH ROW WHEN (OLD.enabled)
    EXECUTE FUNCTION orgbase.webhook_stopped();

-- Existing endpoints: owned by the person who registered them, or by the key that did
-- (the audit record of the registration names it); then those whose owner already lost
-- the authority (or is unknown) are disabled, audited and mailed like any other.
UPDATE orgbase.webhook_endpoints e SET owner_user_id = e.created_by
WHERE EXISTS (SELECT 1 FROM orgbase.users u WHERE u.id = e.created_by);
UPDATE orgbase.webhook_endpoints e SET owner_key_id = a.actor_key_id
FROM orgbase.audit_events a
WHERE e.owner_user_id IS NULL AND a.org_id = e.org_id AND a.action = 'webhook.created'
  AND a.row_key ->> 'id' = e.id::text
  AND EXISTS (SELECT 1 FROM orgbase.api_keys k WHERE k.id = a.actor_key_id);
SELECT orgbase.webhook_disable_unowned(NULL, NULL, NULL,
    'whoever registered it no longer has the org''s authority (checked when endpoints got owners)');
