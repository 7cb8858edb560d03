-- An API key acts with the authority of the person who made it, never longer.
--
-- A key is made by an admin or owner of its org (orgbase.api_keys.created_by) with a role
-- at most theirs. Until now a key outlived its maker: an admin removed from the org kept
-- their admin key and used it to add themselves back. From here on a key is live only while
-- its creator is a member of its org, with a live account, whose role is at least the
-- key's. When that ends (removed, left, demoted below the key's role, account deleted or
-- gone) the key is revoked in the same transaction, with an audit record (actor system)
-- and a mail to the org's remaining admins and owners; the gateway that made the change
-- then tombstones the key in its cache and announces the revocation (sockets close), as
-- for a key an admin revokes. Keys made by owners follow the same rule (an owner demoted
-- to admin keeps the admin keys they made; one who leaves the org loses them).
--
-- The triggers live in the database, as those of 0022_webhook_owners.sql, so every path
-- that ends a membership or an account is covered.
--
-- Existing keys: a key whose creator is unknown (created_by empty) gets the person the
-- audit record of its creation names; then every live key whose creator no longer holds
-- the authority (or is unknown) is revoked, audited and mailed like any later loss.
-- Pending invitations that a key made for the admin or owner role (keys no longer grant
-- them) are lowered to member.

CREATE INDEX api_keys_creator_idx ON orgbase.api_keys (created_by, revoked_at);

-- Does the key's creator still hold its role in its org? (No creator: no.)
CREATE FUNCTION orgbase.api_key_creator_in_authority(org uuid, creator uuid, key_role text)
    RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT creator IS NOT NULL AND EXISTS (
        SELECT 1 FROM orgbase.memberships m
        JOIN orgbase.users u ON u.id = m.user_id AND u.deleted_at IS NULL
        WHERE m.org_id = org AND m.user_id = creator
          AND orgbase.role_rank(m.role) >= orgbase.role_rank(key_role))
$$;

-- Revoke the live keys (of one org, one creator, one key, or all when NULL) whose creator
-- no longer holds their authority: audited and mailed, in the caller's transaction. Keys
-- of an org being deleted are revoked with it, unannounced.
CREATE FUNCTION orgbase.api_keys_revoke_unheld(
    only_org uuid, only_creator uuid, only_key uuid, why text) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, orgbase AS $$
DECLARE
    gone record;
    done integer := 0;
BEGIN
    FOR gone IN
        UPDATE orgbase.api_keys k SET revoked_at = now()
        FROM orgbase.orgs o
        WHERE k.revoked_at IS NULL AND o.id = k.org_id AND o.deleted_at IS NULL
          AND (only_org IS NULL OR k.org_id = only_org)
          AND (only_creator IS NULL OR k.created_by = only_creator)
          AND (only_key IS NULL OR k.id = only_key)
          AND NOT orgbase.api_key_creator_in_authority(k.org_id, k.created_by, k.role)
        RETURNING k.id, k.org_id, k.name, k.role, k.created_by
    LOOP
        INSERT INTO orgbase.audit_events
            (org_id, actor_kind, action, target_table, row_key, details)
        VALUES (gone.org_id, 'system', 'api_key.revoked', 'orgbase.api_keys',
                jsonb_build_object('id', gone.id),
                jsonb_strip_nulls(jsonb_build_object(
                    'reason', why, 'name', gone.name, 'role', gone.role,
                    'created_by', gone.created_by)));
        INSERT INTO orgbase.outbox (kind, recipient, subject, body, org_id)
        SELECT 'api_key_revoked', u.email, 'An API key was revoked',
               format('The API key "%s" (%s, role %s) was revoked: %s. A key acts with the'
                      ' authority of the person who made it and stops when they lose it.'
                      ' An admin can make a new one.', gone.name, gone.id, gone.role, why),
               gone.org_id
        FROM orgbase.memberships m
        JOIN orgbase.users u ON u.id = m.user_id AND u.deleted_at IS NULL
        WHERE m.org_id = gone.org_id AND m.role IN ('owner', 'admin');
        done := done + 1;
    END LOOP;
    RETURN done;
END
$$;
REVOKE ALL ON FUNCTION orgbase.api_keys_revoke_unheld(uuid, uuid, uuid, text) FROM PUBLIC;

-- The triggers: a membership ended or lowered, an account deleted, a creator's row gone.
CREATE FUNCTION orgbase.api_key_creator_lost() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, orgbase AS $$
BEGIN
    IF TG_TABLE_NAME = 'memberships' THEN
        PERFORM orgbase.api_keys_revoke_unheld(OLD.org_id, OLD.user_id, NULL,
            CASE TG_OP WHEN 'DELETE' THEN 'whoever made it left the org'
                       ELSE 'whoever made it no longer holds its role' END);
    ELSIF TG_TABLE_NAME = 'users' THEN
        PERFORM orgbase.api_keys_revoke_unheld(NULL, OLD.id, NULL,
            'whoever made it deleted their account');
    ELSE
        PERFORM orgbase.api_keys_revoke_unheld(OLD.org_id, NULL, OLD.id,
            'whoever made it is gone');
    END IF;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION orgbase.api_key_creator_lost() FROM PUBLIC;

-- Existing keys first (the triggers below must not see the backfill).
UPDATE orgbase.api_keys k SET created_by = a.actor_user_id
FROM orgbase.audit_events a
WHERE k.created_by IS NULL AND a.org_id = k.org_id AND a.action = 'api_key.created'
  AND a.row_key ->> 'id' = k.id::text
  AND EXISTS (SELECT 1 FROM orgbase.users u WHERE u.id = a.actor_user_id);
SELECT orgbase.api_keys_revoke_unheld(NULL, NULL, NULL,
    'whoever made it no longer holds its role in the org (checked when keys were bound to'
    ' their creators)');
UPDATE orgbase.invitations SET role = 'member'
WHERE invited_by_key IS NOT NULL AND accepted_at IS NULL AND revoked_at IS NULL
  AND role IN ('owner', 'admin');

CREATE TRIGGER api_key_creator_left AFTER DELETE ON orgbase.memberships
    FOR EACH ROW EXECUTE FUNCTION orgbase.api_key_creator_lost();
CREATE TRIGGER api_key_creator_demoted AFTER UPDATE OF role ON orgbase.memberships
    FOR EACH ROW WHEN (orgbase.role_rank(NEW.role) < orgbase.role_rank(OLD.role))
    EXECUTE FUNCTION orgbase.api_key_creator_lost();
CREATE TRIGGER api_key_creator_deleted AFTER UPDATE OF deleted_at ON orgbase.users
    FOR EACH ROW WHEN (OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL)
    EXECUTE FUNCTION orgbase.api_key_creator_lost();
CREATE TRIGGER api_key_creator_gone AFTER UPDATE OF created_by ON orgbase.api_keys
    FOR EACH ROW WHEN (OLD.created_by IS NOT NULL AND NEW.created_by IS NULL
                       AND NEW.revoked_at IS NULL)
    EXECUTE FUNCTION orgbase.api_key_creator_lost();
