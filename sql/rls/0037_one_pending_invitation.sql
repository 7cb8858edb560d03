-- At most one pending invitation per address in an org. Invitations of one address made
-- at once each revoked the ones before them that had committed, so several could stay
-- pending; a leftover one brought a removed member back. Of such duplicates the newest
-- stays pending (as if made one after the other), and the index keeps it so.
UPDATE orgbase.invitations i SET revoked_at = now()
WHERE i.accepted_at IS NULL AND i.revoked_at IS NULL
  AND EXISTS (
      SELECT 1 FROM orgbase.invitations newer
      WHERE newer.org_id = i.org_id AND newer.email = i.email
        AND newer.accepted_at IS NULL AND newer.revoked_at IS NULL
        AND (newer.created_at, newer.id) > (i.created_at, i.id)
  );

-- A member's own pending invitations are of no use to them (left, they would bring them
-- back once removed).
UPDATE orgbase.invitations i SET revoked_at = now()
FROM orgbase.memberships m JOIN orgbase.users u ON u.id = m.user_id
WHERE i.accepted_at IS NULL AND i.revoked_at IS NULL
  AND m.org_id = i.org_id AND lower(u.email) = i.email;

CREATE UNIQUE INDEX invitations_one_pending_idx ON orgbase.invitations (org_id, email)
    WHERE accepted_at IS NULL AND revoked_at IS NULL;
