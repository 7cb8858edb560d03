-- Row changes announce what realtime's postgres_changes needs to decide who may see them
-- (NOTIFY orgbase_rows, delivered at commit):
--   schema, table, op, key   as before (the row's primary key), plus the schema
--   at                       when the row changed (UTC, milliseconds)
--   new                      the row after an INSERT or UPDATE (what subscribers receive,
--                            once PostgreSQL decided they may see it)
--   old                      the row before the change: on DELETE always (the deleted row
--                            can no longer be selected, so its visibility is decided by the
--                            table's SELECT policies evaluated on it), on UPDATE when the
--                            table's REPLICA IDENTITY is FULL
--   full                     the table's REPLICA IDENTITY is FULL (subscribers receive the
--                            whole old row, else its primary key only)
--   trimmed                  the old row did not fit NOTIFY's 8000 bytes (nor did the new
--                            one, which is then left out: subscribers read the row as it is
--                            now): ``old`` holds only the key, org_id and created_by
-- The audit record and the purge rule are unchanged from 0009.
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
    IF actor.kind = 'purge' THEN
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
