-- Signed upload URLs write only what their signer may write (0028's put_granted stored as
-- the token's signer whatever the bucket's preset and whoever the signer had become).
--
-- The preset's write rule becomes one function, storage.may_write, which the object
-- policies (0028) and the signed paths call alike:
--   * signing an upload (the signer's verified context): storage.may_put;
--   * the PUT through the token (no credential: put_granted, SECURITY DEFINER): the
--     signer's authority now (storage.signer_role: a member's role, a usable API key's
--     role), under the bucket's preset now.

-- May someone of this rank (the org's role, 1 viewer .. 4 owner) acting as p_caller change
-- an object owned by p_owner in this bucket? (A new object is owned by its writer.)
CREATE FUNCTION storage.may_write(p_org uuid, p_bucket text, p_owner uuid, p_caller uuid,
                                  p_rank integer) RETURNS boolean
    LANGUAGE sql STABLE AS $$
    SELECT coalesce(p_rank >= 3 OR (p_rank = 2 AND (
        storage.preset(p_org, p_bucket) IN ('members', 'public_read')
        OR (storage.preset(p_org, p_bucket) = 'owner_private' AND p_owner = p_caller))), false)
$$;
GRANT EXECUTE ON FUNCTION storage.may_write(uuid, text, uuid, uuid, integer) TO orgbase_api;

CREATE OR REPLACE FUNCTION storage.may_change(p_org uuid, p_bucket text, p_owner uuid)
    RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT coalesce((
        SELECT p_org = c.org
               AND storage.may_write(p_org, p_bucket, p_owner, coalesce(c.usr, c.key), c.rank)
        FROM orgbase.context c), false)
$$;

DROP POLICY objects_insert ON storage.objects;
CREATE POLICY objects_insert ON storage.objects FOR INSERT TO orgbase_api
    WITH CHECK (storage.may_change(org_id, bucket_id, owner_id)
                AND ((SELECT c.rank FROM orgbase.context c) >= 3
                     OR owner_id = (SELECT storage.caller())));

-- May this caller store this object: create it (as its owner), or, upserting, replace the
-- one there? (Without p_upsert, an object there is the write's own refusal, OBS09; the
-- caller must still be one who may create it.) SECURITY DEFINER: the object there decides,
-- even where the caller cannot read it.
CREATE FUNCTION storage.may_put_as(p_org uuid, p_bucket text, p_name text, p_caller uuid,
                                   p_rank integer, p_upsert boolean) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(
        (SELECT storage.may_write(p_org, p_bucket, o.owner_id, p_caller, p_rank)
         FROM storage.objects o
         WHERE p_upsert AND o.org_id = p_org AND o.bucket_id = p_bucket AND o.name = p_name),
        storage.may_write(p_org, p_bucket, p_caller, p_caller, p_rank))
$$;
REVOKE ALL ON FUNCTION storage.may_put_as(uuid, text, text, uuid, integer, boolean) FROM PUBLIC;

-- Signing an upload: the caller's verified context.
CREATE FUNCTION storage.may_put(p_org uuid, p_bucket text, p_name text, p_upsert boolean)
    RETURNS boolean LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce((
        SELECT storage.may_put_as(p_org, p_bucket, p_name, coalesce(c.usr, c.key), c.rank,
                                  p_upsert)
        FROM orgbase.context c WHERE c.org = p_org), false)
$$;
REVOKE ALL ON FUNCTION storage.may_put(uuid, text, text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION storage.may_put(uuid, text, text, boolean) TO orgbase_api;

-- A signer's role in the org now: a member's (a live account, not suspended by the org's
-- SSO), or an API key's while it is usable (not revoked, not expired). NULL: none.
CREATE FUNCTION storage.signer_role(p_org uuid, p_signer uuid) RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT r.role FROM (
        SELECT m.role FROM orgbase.memberships m
        JOIN orgbase.users u ON u.id = m.user_id AND u.deleted_at IS NULL
        WHERE m.org_id = p_org AND m.user_id = p_signer
          AND NOT orgbase.sso_suspended(p_org, m.sso_bound, u.email)
        UNION ALL
        SELECT a.role FROM orgbase.api_keys a
        WHERE a.org_id = p_org AND a.id = p_signer AND a.revoked_at IS NULL
          AND (a.expires_at IS NULL OR a.expires_at > now())) AS r
    LIMIT 1
$$;
REVOKE ALL ON FUNCTION storage.signer_role(uuid, uuid) FROM PUBLIC;

-- The PUT through a signed upload URL: as 0028, and the signer may write the object now.
CREATE OR REPLACE FUNCTION storage.put_granted(
    p_org uuid, p_bucket text, p_name text, p_blob text, p_size bigint, p_mime text,
    p_cache text, p_sha bytea, p_meta jsonb, p_owner uuid, p_upsert boolean,
    OUT object_id uuid, OUT old_blob text, OUT created boolean, OUT grown bigint,
    OUT total bigint, OUT updated_at timestamptz)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    signer text;  -- the signer's role now
BEGIN
    PERFORM 1 FROM orgbase.orgs g WHERE g.id = p_org AND g.deleted_at IS NULL FOR SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no such org' USING ERRCODE = 'OB404';
    END IF;
    -- The object's row first (locked), so the check and the write see the same owner.
    PERFORM 1 FROM storage.objects o
    WHERE o.org_id = p_org AND o.bucket_id = p_bucket AND o.name = p_name FOR UPDATE;
    signer := storage.signer_role(p_org, p_owner);
    IF signer IS NULL THEN  -- OBS10: removed, deleted, revoked since it signed
        RAISE EXCEPTION 'the signer has no authority in the org' USING ERRCODE = 'OBS10';
    END IF;
    IF NOT storage.may_put_as(p_org, p_bucket, p_name, p_owner, orgbase.role_rank(signer),
                              p_upsert) THEN
        RAISE EXCEPTION 'the signer may not write this object'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT * INTO object_id, old_blob, created, grown, total, updated_at
    FROM storage.put_object(p_org, p_bucket, p_name, p_blob, p_size, p_mime, p_cache, p_sha,
                            p_meta, p_owner, p_upsert);
END
$$;
