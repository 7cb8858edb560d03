-- An org being deleted stops its webhook endpoints in the transaction that closes it
-- (orgbase/webhooks/service.py, org_closing), so the dispatcher's claim no longer looks at
-- the org itself. An org closed before, whose purge has not finished yet, gets the same
-- here: none of its deliveries is claimed once this has run.
UPDATE orgbase.webhook_endpoints e
SET enabled = false, disabled_reason = 'its org was deleted', updated_at = now()
FROM orgbase.orgs o
WHERE o.id = e.org_id AND o.deleted_at IS NOT NULL AND e.enabled;
