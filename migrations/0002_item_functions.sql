-- Example RPC functions over api.items, called at /v1/db/rpc/{name}. They run as the
-- tenant role with the caller's verified context: row-level security applies inside.

-- GET or POST /v1/db/rpc/count_items?status=open -> a number
CREATE FUNCTION api.count_items(status text DEFAULT NULL) RETURNS bigint
    LANGUAGE sql STABLE SET search_path = pg_catalog, api AS $$
    SELECT count(*) FROM api.items i WHERE count_items.status IS NULL OR i.status = count_items.status
$$;

-- POST /v1/db/rpc/close_items {"ids": [1, 2]} -> the changed rows (filters and select apply)
CREATE FUNCTION api.close_items(ids bigint[]) RETURNS SETOF api.items
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, api AS $$
    UPDATE api.items SET status = 'done' WHERE id = ANY(close_items.ids) RETURNING *
$$;
