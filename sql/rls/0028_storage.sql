-- File storage (orgbase/storage/): each org's buckets, their objects' metadata, resumable
-- uploads in progress and the bytes each org stores. The blobs themselves live in a
-- backend (a folder, or an S3-compatible store) under keys the gateway makes up
-- ("<org>/<uuid>"); a blob counts only once a row here names it, so an upload that stops
-- midway is never visible, and blobs no row names are swept.
--
-- Every table is a tenant table under the verified context (0009): the policies read
-- orgbase.context in sub-selects. A bucket's preset decides who reads and writes its
-- objects, in PostgreSQL:
--   members        viewers read; members and above write
--   owner_private  an object is read and changed by its owner (the user or API key that
--                  stored it) and by the org's admins and owners
--   admin_write    everyone in the org reads; admins and owners write
--   public_read    as members, and anyone reads without a credential (public links)
-- Buckets are made and changed by admins and owners.
--
-- The tables are ENABLEd but not FORCEd: the few SECURITY DEFINER functions below (public
-- links and signed URLs, whose proof is checked by the gateway; the sweeper) run as their
-- owner, which FORCE would filter. orgbase_api owns nothing, so the policies bind it.

CREATE SCHEMA storage;
REVOKE ALL ON SCHEMA storage FROM PUBLIC;
GRANT USAGE ON SCHEMA storage TO orgbase_api, orgbase_system;

CREATE TABLE storage.buckets (
    org_id uuid NOT NULL DEFAULT orgbase.claimed_org_id(),
    id text COLLATE "C" NOT NULL CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$'),
    policy text NOT NULL DEFAULT 'members'
        CHECK (policy IN ('members', 'owner_private', 'admin_write', 'public_read')),
    file_size_limit bigint CHECK (file_size_limit > 0),
    allowed_mime_types text[] CHECK (cardinality(allowed_mime_types) <= 100),
    owner_id uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, id)
);

CREATE TABLE storage.objects (
    org_id uuid NOT NULL DEFAULT orgbase.claimed_org_id(),
    bucket_id text COLLATE "C" NOT NULL,
    name text COLLATE "C" NOT NULL CHECK (octet_length(name) BETWEEN 1 AND 1024),
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    blob_key text NOT NULL,
    size bigint NOT NULL CHECK (size >= 0),
    mimetype text NOT NULL,
    cache_control text,
    sha256 bytea NOT NULL CHECK (length(sha256) = 32),
    user_metadata jsonb,
    owner_id uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, bucket_id, name),
    FOREIGN KEY (org_id, bucket_id) REFERENCES storage.buckets (org_id, id)
);
CREATE INDEX objects_blob_idx ON storage.objects (blob_key);

-- A resumable (TUS) upload: its chunks collect in the gateway's staging folder.
CREATE TABLE storage.uploads (
    org_id uuid NOT NULL DEFAULT orgbase.claimed_org_id(),
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    bucket_id text COLLATE "C" NOT NULL,
    name text COLLATE "C" NOT NULL CHECK (octet_length(name) BETWEEN 1 AND 1024),
    size bigint NOT NULL CHECK (size >= 0),
    upsert boolean NOT NULL DEFAULT false,
    mimetype text NOT NULL,
    cache_control text,
    user_metadata jsonb,
    owner_id uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, bucket_id) REFERENCES storage.buckets (org_id, id) ON DELETE CASCADE
);
CREATE INDEX uploads_expiry_idx ON storage.uploads (expires_at);

-- The bytes and objects each org stores, kept by the objects' trigger (the quota check
-- reads it in the transaction that grows it: the row lock orders concurrent uploads).
CREATE TABLE storage.usage (
    org_id uuid PRIMARY KEY,
    bytes bigint NOT NULL DEFAULT 0,
    objects bigint NOT NULL DEFAULT 0
);

ALTER TABLE storage.buckets ENABLE ROW LEVEL SECURITY;
ALTER TABLE storage.objects ENABLE ROW LEVEL SECURITY;
ALTER TABLE storage.uploads ENABLE ROW LEVEL SECURITY;
ALTER TABLE storage.usage ENABLE ROW LEVEL SECURITY;
GRANT SELECT, INSERT, UPDATE, DELETE ON storage.buckets, storage.objects, storage.uploads
    TO orgbase_api;
GRANT SELECT, DELETE ON storage.usage TO orgbase_api;

-- The caller's identity for ownership: the user, or the API key.
CREATE FUNCTION storage.caller() RETURNS uuid LANGUAGE sql STABLE AS $$
    SELECT coalesce(c.usr, c.key) FROM orgbase.context c
$$;
GRANT EXECUTE ON FUNCTION storage.caller() TO orgbase_api;

-- Buckets: the org reads; admins and owners write.
CREATE POLICY buckets_read ON storage.buckets FOR SELECT TO orgbase_api
    USING (org_id = (SELECT c.org FROM orgbase.context c));
CREATE POLICY buckets_insert ON storage.buckets FOR INSERT TO orgbase_api
    WITH CHECK (org_id = (SELECT c.org FROM orgbase.context c)
                AND (SELECT c.rank FROM orgbase.context c) >= 3);
CREATE POLICY buckets_update ON storage.buckets FOR UPDATE TO orgbase_api
    USING (org_id = (SELECT c.org FROM orgbase.context c)
           AND (SELECT c.rank FROM orgbase.context c) >= 3)
    WITH CHECK (org_id = (SELECT c.org FROM orgbase.context c));
CREATE POLICY buckets_delete ON storage.buckets FOR DELETE TO orgbase_api
    USING (org_id = (SELECT c.org FROM orgbase.context c)
           AND (SELECT c.rank FROM orgbase.context c) >= 3);

-- Objects: the bucket's preset (one primary-key probe per row).
CREATE FUNCTION storage.preset(p_org uuid, p_bucket text) RETURNS text
    LANGUAGE sql STABLE AS $$
    SELECT b.policy FROM storage.buckets b WHERE b.org_id = p_org AND b.id = p_bucket
$$;
GRANT EXECUTE ON FUNCTION storage.preset(uuid, text) TO orgbase_api;

CREATE POLICY objects_read ON storage.objects FOR SELECT TO orgbase_api
    USING (org_id = (SELECT c.org FROM orgbase.context c) AND (
        (SELECT c.rank FROM orgbase.context c) >= 3
        OR storage.preset(org_id, bucket_id) <> 'owner_private'
        OR owner_id = (SELECT storage.caller())));
CREATE POLICY objects_insert ON storage.objects FOR INSERT TO orgbase_api
    WITH CHECK (org_id = (SELECT c.org FROM orgbase.context c) AND (
        (SELECT c.rank FROM orgbase.context c) >= 3
        OR ((SELECT c.rank FROM orgbase.context c) = 2
            AND owner_id = (SELECT storage.caller())
            AND storage.preset(org_id, bucket_id) <> 'admin_write')));

-- May the caller change or delete this object? (The update's new row is checked alike.)
CREATE FUNCTION storage.may_change(p_org uuid, p_bucket text, p_owner uuid) RETURNS boolean
    LANGUAGE sql STABLE AS $$
    SELECT coalesce((
        SELECT p_org = c.org AND (c.rank >= 3 OR (c.rank = 2 AND (
            storage.preset(p_org, p_bucket) IN ('members', 'public_read')
            OR (storage.preset(p_org, p_bucket) = 'owner_private'
                AND p_owner = coalesce(c.usr, c.key)))))
        FROM orgbase.context c), false)
$$;
GRANT EXECUTE ON FUNCTION storage.may_change(uuid, text, uuid) TO orgbase_api;

CREATE POLICY objects_update ON storage.objects FOR UPDATE TO orgbase_api
    USING (storage.may_change(org_id, bucket_id, owner_id))
    WITH CHECK (storage.may_change(org_id, bucket_id, owner_id));
CREATE POLICY objects_delete ON storage.objects FOR DELETE TO orgbase_api
    USING (storage.may_change(org_id, bucket_id, owner_id));

-- Resumable uploads: their starter (members and above) and the org's admins.
CREATE POLICY uploads_own ON storage.uploads FOR ALL TO orgbase_api
    USING (org_id = (SELECT c.org FROM orgbase.context c) AND (
        (SELECT c.rank FROM orgbase.context c) >= 3
        OR owner_id = (SELECT storage.caller())))
    WITH CHECK (org_id = (SELECT c.org FROM orgbase.context c)
                AND (SELECT c.rank FROM orgbase.context c) >= 2
                AND owner_id = (SELECT storage.caller()));

CREATE POLICY usage_read ON storage.usage FOR SELECT TO orgbase_api
    USING (org_id = (SELECT c.org FROM orgbase.context c));
CREATE POLICY usage_purge ON storage.usage FOR DELETE TO orgbase_api
    USING (org_id = (SELECT c.org FROM orgbase.context c)
           AND (SELECT c.kind FROM orgbase.context c) = 'purge');

-- Who did it, for the audit trail (an action through a signed URL has no context).
CREATE FUNCTION storage.audit(p_action text, p_org uuid, p_details jsonb) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    actor record;
BEGIN
    SELECT * INTO actor FROM orgbase.verified_context();
    IF actor.kind = 'purge' THEN
        RETURN;  -- deleting a deleted org's files is neither audited nor announced
    END IF;
    INSERT INTO orgbase.audit_events
        (action, org_id, actor_user_id, actor_kind, actor_key_id, target_table, details,
         request_id)
    VALUES (p_action, p_org, actor.usr,
            CASE WHEN actor.usr IS NOT NULL THEN 'user' WHEN actor.key IS NOT NULL THEN 'api_key'
                 ELSE 'system' END,
            actor.key, 'storage', p_details, orgbase.current_request_id());
END
$$;
REVOKE ALL ON FUNCTION storage.audit(text, uuid, jsonb) FROM PUBLIC;

-- Every object change keeps the org's usage and is written to the audit log in its own
-- transaction (the webhook outbox: storage.object.created|updated|deleted).
CREATE FUNCTION storage.object_changed() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    row_now storage.objects := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    delta bigint := CASE TG_OP WHEN 'INSERT' THEN NEW.size WHEN 'DELETE' THEN -OLD.size
                               ELSE NEW.size - OLD.size END;
    counted bigint := CASE TG_OP WHEN 'INSERT' THEN 1 WHEN 'DELETE' THEN -1 ELSE 0 END;
BEGIN
    INSERT INTO storage.usage AS u (org_id, bytes, objects)
    VALUES (row_now.org_id, delta, counted)
    ON CONFLICT (org_id) DO UPDATE SET bytes = u.bytes + delta, objects = u.objects + counted;
    PERFORM storage.audit(
        'storage.object.' || CASE TG_OP WHEN 'INSERT' THEN 'created' WHEN 'DELETE' THEN 'deleted'
                                        ELSE 'updated' END,
        row_now.org_id,
        jsonb_strip_nulls(jsonb_build_object(
            'bucket', row_now.bucket_id, 'name', row_now.name, 'id', row_now.id,
            'size', row_now.size, 'mimetype', row_now.mimetype,
            'sha256', encode(row_now.sha256, 'hex'),
            'from', CASE WHEN TG_OP = 'UPDATE' AND OLD.name <> NEW.name THEN OLD.name END)));
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION storage.object_changed() FROM PUBLIC;
CREATE TRIGGER object_changed AFTER INSERT OR UPDATE OR DELETE ON storage.objects
    FOR EACH ROW EXECUTE FUNCTION storage.object_changed();

CREATE FUNCTION storage.bucket_changed() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    row_now storage.buckets := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
BEGIN
    PERFORM storage.audit(
        'storage.bucket.' || CASE TG_OP WHEN 'INSERT' THEN 'created' WHEN 'DELETE' THEN 'deleted'
                                        ELSE 'updated' END,
        row_now.org_id,
        jsonb_strip_nulls(jsonb_build_object(
            'bucket', row_now.id, 'policy', row_now.policy,
            'file_size_limit', row_now.file_size_limit,
            'allowed_mime_types', row_now.allowed_mime_types)));
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION storage.bucket_changed() FROM PUBLIC;
CREATE TRIGGER bucket_changed AFTER INSERT OR UPDATE OR DELETE ON storage.buckets
    FOR EACH ROW EXECUTE FUNCTION storage.bucket_changed();

-- Storing an object (a new blob): insert, or replace when p_upsert. Runs as the caller
-- (row-level security decides) or, through put_granted, as the owner. Returns the blob it
-- replaced (deleted by the gateway after the commit), whether it created the row, how much
-- the org's bytes grew, and the org's bytes now (the gateway refuses growth past its quota
-- by rolling back). OBS09: the object exists and p_upsert is false.
CREATE FUNCTION storage.put_object(
    p_org uuid, p_bucket text, p_name text, p_blob text, p_size bigint, p_mime text,
    p_cache text, p_sha bytea, p_meta jsonb, p_owner uuid, p_upsert boolean,
    OUT object_id uuid, OUT old_blob text, OUT created boolean, OUT grown bigint,
    OUT total bigint, OUT updated_at timestamptz)
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    old_size bigint;
BEGIN
    SELECT o.blob_key, o.size INTO old_blob, old_size FROM storage.objects o
    WHERE o.org_id = p_org AND o.bucket_id = p_bucket AND o.name = p_name FOR UPDATE;
    IF FOUND THEN
        IF NOT p_upsert THEN
            RAISE EXCEPTION 'the object exists' USING ERRCODE = 'OBS09';
        END IF;
        UPDATE storage.objects o SET blob_key = p_blob, size = p_size, mimetype = p_mime,
            cache_control = p_cache, sha256 = p_sha, user_metadata = p_meta, updated_at = now()
        WHERE o.org_id = p_org AND o.bucket_id = p_bucket AND o.name = p_name
        RETURNING o.id, o.updated_at INTO object_id, updated_at;
        IF object_id IS NULL THEN  -- seen, but not the caller's to change
            RAISE EXCEPTION 'new row violates row-level security policy'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        created := false;
        grown := p_size - old_size;
    ELSE
        INSERT INTO storage.objects AS o (org_id, bucket_id, name, blob_key, size, mimetype,
            cache_control, sha256, user_metadata, owner_id)
        VALUES (p_org, p_bucket, p_name, p_blob, p_size, p_mime, p_cache, p_sha, p_meta, p_owner)
        RETURNING o.id, o.updated_at INTO object_id, updated_at;
        created := true;
        grown := p_size;
    END IF;
    SELECT u.bytes INTO total FROM storage.usage u WHERE u.org_id = p_org;
END
$$;
GRANT EXECUTE ON FUNCTION storage.put_object(uuid, text, text, text, bigint, text, text, bytea,
    jsonb, uuid, boolean) TO orgbase_api;

-- Signed upload URLs (the gateway checked the token's HMAC, bound to org, bucket, name and
-- expiry): store as the token's signer, in a live org's existing bucket.
CREATE FUNCTION storage.put_granted(
    p_org uuid, p_bucket text, p_name text, p_blob text, p_size bigint, p_mime text,
    p_cache text, p_sha bytea, p_meta jsonb, p_owner uuid, p_upsert boolean,
    OUT object_id uuid, OUT old_blob text, OUT created boolean, OUT grown bigint,
    OUT total bigint, OUT updated_at timestamptz)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM 1 FROM orgbase.orgs g WHERE g.id = p_org AND g.deleted_at IS NULL FOR SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no such org' USING ERRCODE = 'OB404';
    END IF;
    SELECT * INTO object_id, old_blob, created, grown, total, updated_at
    FROM storage.put_object(p_org, p_bucket, p_name, p_blob, p_size, p_mime, p_cache, p_sha,
                            p_meta, p_owner, p_upsert);
END
$$;
REVOKE ALL ON FUNCTION storage.put_granted(uuid, text, text, text, bigint, text, text, bytea,
    jsonb, uuid, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION storage.put_granted(uuid, text, text, text, bigint, text, text, bytea,
    jsonb, uuid, boolean) TO orgbase_api;

-- Reading without a credential of the org: a public bucket's object (p_public_only), or
-- any object for a signed URL the gateway verified. Only for a live org.
CREATE FUNCTION storage.granted_object(p_org uuid, p_bucket text, p_name text,
                                       p_public_only boolean)
    RETURNS TABLE (id uuid, blob_key text, size bigint, mimetype text, cache_control text,
                   sha256 bytea, updated_at timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT o.id, o.blob_key, o.size, o.mimetype, o.cache_control, o.sha256, o.updated_at
    FROM storage.objects o
    JOIN storage.buckets b ON b.org_id = o.org_id AND b.id = o.bucket_id
    JOIN orgbase.orgs g ON g.id = o.org_id AND g.deleted_at IS NULL
    WHERE o.org_id = p_org AND o.bucket_id = p_bucket AND o.name = p_name
      AND (NOT p_public_only OR b.policy = 'public_read')
$$;
REVOKE ALL ON FUNCTION storage.granted_object(uuid, text, text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION storage.granted_object(uuid, text, text, boolean) TO orgbase_api;

-- A live org's bucket, for an upload through a signed URL (its limits).
CREATE FUNCTION storage.granted_bucket(p_org uuid, p_bucket text)
    RETURNS TABLE (id text, policy text, file_size_limit bigint, allowed_mime_types text[])
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT b.id, b.policy, b.file_size_limit, b.allowed_mime_types
    FROM storage.buckets b JOIN orgbase.orgs g ON g.id = b.org_id AND g.deleted_at IS NULL
    WHERE b.org_id = p_org AND b.id = p_bucket
$$;
REVOKE ALL ON FUNCTION storage.granted_bucket(uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION storage.granted_bucket(uuid, text) TO orgbase_api;

-- The sweeper (platform pool): which of these blobs no object names, and the resumable
-- uploads past their expiry (deleted here; the gateway removes their chunks).
CREATE FUNCTION storage.unreferenced_blobs(p_keys text[]) RETURNS SETOF text
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT k FROM unnest(p_keys) AS k
    WHERE NOT EXISTS (SELECT 1 FROM storage.objects o WHERE o.blob_key = k)
$$;
CREATE FUNCTION storage.take_expired_uploads(p_limit integer)
    RETURNS TABLE (org_id uuid, id uuid)
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    DELETE FROM storage.uploads u
    WHERE (u.org_id, u.id) IN (SELECT x.org_id, x.id FROM storage.uploads x
                               WHERE x.expires_at < now() LIMIT p_limit)
    RETURNING u.org_id, u.id
$$;
REVOKE ALL ON FUNCTION storage.unreferenced_blobs(text[]), storage.take_expired_uploads(integer)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION storage.unreferenced_blobs(text[]),
    storage.take_expired_uploads(integer) TO orgbase_system;

-- Object and bucket changes are reported to webhooks under their action's name.
CREATE OR REPLACE FUNCTION orgbase.webhook_event_type(action text, target_table text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN action IN ('row.insert', 'row.update', 'row.delete') AND target_table LIKE 'api.%'
            THEN 'db.' || substr(target_table, 5) || '.' || substr(action, 5)
        WHEN action IN ('member.added', 'member.role_changed') THEN action
        WHEN action IN ('member.removed', 'member.left') THEN 'member.removed'
        WHEN action IN ('invitation.created', 'invitation.revoked', 'invitation.accepted')
            THEN action
        WHEN action IN ('settings.updated', 'settings.rolled_back') THEN 'settings.updated'
        WHEN action IN ('api_key.created', 'api_key.revoked') THEN action
        WHEN action LIKE 'docs.%' THEN action
        WHEN action = 'webhook.test' THEN action
        WHEN action LIKE 'storage.object.%' OR action LIKE 'storage.bucket.%' THEN action
    END
$$;
