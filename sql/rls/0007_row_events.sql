-- Row changes on tenant tables are also announced (NOTIFY orgbase_rows, delivered at
-- commit, never for a rolled-back change) so gateways can push them to the org's
-- realtime channel db:{table}. The payload names the row; clients read it through the
-- data API, where row-level security applies.
CREATE OR REPLACE FUNCTION orgbase.audit_row_change() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, orgbase AS $$
DECLARE
    old_row jsonb := CASE WHEN TG_OP IN ('UPDATE', 'DELETE') THEN to_jsonb(OLD) END;
    new_row jsonb := CASE WHEN TG_OP IN ('INSERT', 'UPDATE') THEN to_jsonb(NEW) END;
    any_row jsonb := coalesce(new_row, old_row);
    key jsonb;
    actor uuid := orgbase.current_user_id();
    api_key uuid := orgbase.current_key_id();
BEGIN
    SELECT jsonb_object_agg(k, any_row -> k) INTO key FROM unnest(TG_ARGV) AS k;
    INSERT INTO orgbase.audit_events
        (action, org_id, actor_user_id, actor_kind, actor_key_id, target_table, row_key,
         old_values, new_values, request_id)
    VALUES (
        'row.' || lower(TG_OP),
        (any_row ->> 'org_id')::uuid,
        actor,
        CASE WHEN actor IS NOT NULL THEN 'user' WHEN api_key IS NOT NULL THEN 'api_key'
             ELSE 'system' END,
        api_key,
        TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME,
        key,
        old_row,
        new_row,
        orgbase.current_request_id());
    PERFORM pg_notify('orgbase_rows', json_build_object(
        'org', any_row ->> 'org_id',
        'table', TG_TABLE_NAME,
        'op', lower(TG_OP),
        'key', key)::text);
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION orgbase.audit_row_change() FROM PUBLIC;
