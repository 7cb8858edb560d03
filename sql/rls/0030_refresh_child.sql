-- A refresh token presented again within the grace window (a client's concurrent refresh,
-- a request retried) answers the child its first presentation made, never a sibling: one
-- session is one chain of refresh tokens. The child is kept sealed in its parent's row
-- with a key only the parent's plaintext gives (the row holds the parent's hash, not the
-- parent), so the database alone never yields a usable token. NULL: not rotated yet, or
-- rotated before this column existed (a grace re-presentation of it is refused).
ALTER TABLE orgbase.refresh_tokens ADD COLUMN child_sealed bytea
    CHECK (child_sealed IS NULL OR octet_length(child_sealed) = 32);
