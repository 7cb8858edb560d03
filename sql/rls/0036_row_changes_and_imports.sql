-- One row-change trigger function for both additions of this release: the announcement
-- realtime's postgres_changes decides on (new and old rows, as 0029 made it) and the
-- archive import's rows neither audited nor announced (as 0035 made it: 0035 restated the
-- older function, which dropped 0029's announcement). The rest is unchanged from 0029.
CREATE OR REPLACE FUNCTION orgbase.audit_row_change() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, orgbase AS $$
DECLARE
    old_row jsonb := CASE WHEN TG_OP IN ('UPDATE', 'DELETE') THEN to_jsonb(OLD) END;
    new_row jsonb := CASE WHEN TG_OP IN ('INSERT', 'UPDATE') THEN to_jsonb(NEW) END;
    any_row jsonb := coalesce(new_row, old_row);
    key jsonb;
    actor record;
    full_identity boolean := false;
    notice jsonb;
    body text;
BEGIN
    SELECT * INTO actor FROM orgbase.verified_context();
    IF actor.kind IN ('purge', 'import') THEN
        RETURN NULL;
    END IF;
    SELECT jsonb_object_agg(k, any_row -> k) INTO key FROM unnest(TG_ARGV) AS k;
    INSERT INTO orgbase.audit_events
        (action, org_id, actor_user_id, actor_kind, actor_key_id, target_table, row_key,
         old_values, new_values, request_id)
    VALUES (
        'row.' || lower(TG_OP),
        (any_row ->> 'org_id')::uuid,
        actor.usr,
        CASE WHEN actor.usr IS NOT NULL THEN 'user' WHEN actor.key IS NOT NULL THEN 'api_key'
             ELSE 'system' END,
        actor.key,
        TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME,
        key,
        old_row,
        new_row,
        orgbase.current_request_id());
    notice := jsonb_build_object(
        'org', any_row ->> 'org_id',
        'schema', TG_TABLE_SCHEMA,
        'table', TG_TABLE_NAME,
        'op', lower(TG_OP),
        'key', key,
        'at', to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'));
    IF TG_OP <> 'DELETE' THEN
        notice := notice || jsonb_build_object('new', new_row);
    END IF;
    IF TG_OP <> 'INSERT' THEN
        SELECT c.relreplident = 'f' INTO full_identity FROM pg_class c WHERE c.oid = TG_RELID;
        IF TG_OP = 'DELETE' OR full_identity THEN
            notice := notice || jsonb_build_object('old', old_row, 'full', full_identity);
        END IF;
    END IF;
    body := notice::text;
    IF octet_length(body) > 7900 THEN
        notice := notice - 'new';
        body := notice::text;
    END IF;
    IF octet_length(body) > 7900 AND notice ? 'old' THEN
        notice := notice || jsonb_build_object(
            'old', coalesce(key, '{}'::jsonb) || jsonb_strip_nulls(jsonb_build_object(
                'org_id', old_row -> 'org_id', 'created_by', old_row -> 'created_by')),
            'trimmed', true);
        body := notice::text;
    END IF;
    IF octet_length(body) > 7900 THEN  -- a key too large to announce: the table and op only
        body := (notice - 'old' - 'key')::text;
    END IF;
    PERFORM pg_notify('orgbase_rows', body);
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION orgbase.audit_row_change() FROM PUBLIC;
