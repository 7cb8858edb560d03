-- Auth flows (GoTrue's API under /auth/v1): confirmed emails, one-time codes (sign-up
-- confirmation, recovery, magic links, email change), TOTP factors with recovery codes, and
-- the assurance level (aal1/aal2) of each session.

ALTER TABLE orgbase.users
    ADD COLUMN email_confirmed_at timestamptz,
    ADD COLUMN last_sign_in_at timestamptz,
    ADD COLUMN last_org_id uuid REFERENCES orgbase.orgs (id) ON DELETE SET NULL,
    ADD COLUMN user_metadata jsonb NOT NULL DEFAULT '{}'
        CHECK (jsonb_typeof(user_metadata) = 'object' AND length(user_metadata::text) <= 16384),
    ADD COLUMN new_email text CHECK (new_email = lower(new_email));
-- Accounts made before confirmation existed were usable: they count as confirmed.
UPDATE orgbase.users SET email_confirmed_at = created_at WHERE email_confirmed_at IS NULL;

-- What a session proved: aal2 once a second factor was verified in it (kept across
-- refreshes: the level belongs to the session, not to a token).
ALTER TABLE orgbase.sessions
    ADD COLUMN aal text NOT NULL DEFAULT 'aal1' CHECK (aal IN ('aal1', 'aal2')),
    ADD COLUMN amr jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(amr) = 'array');

-- One-time codes mailed to an address: a 6-digit code and a link token, both stored
-- hashed, single use, short-lived, and dead after a few wrong guesses.
CREATE TABLE orgbase.auth_codes (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES orgbase.users (id) ON DELETE CASCADE,
    purpose text NOT NULL
        CHECK (purpose IN ('signup', 'recovery', 'magiclink', 'email_change')),
    email text NOT NULL CHECK (email = lower(email)),
    code_hash bytea NOT NULL,
    link_hash bytea NOT NULL UNIQUE,
    attempts integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at timestamptz
);
CREATE INDEX auth_codes_live_idx ON orgbase.auth_codes (email, purpose) WHERE used_at IS NULL;
CREATE INDEX auth_codes_user_idx ON orgbase.auth_codes (user_id);

-- TOTP factors (RFC 6238): unverified until a first code proves the enrolment.
CREATE TABLE orgbase.mfa_factors (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES orgbase.users (id) ON DELETE CASCADE,
    factor_type text NOT NULL DEFAULT 'totp' CHECK (factor_type = 'totp'),
    friendly_name text NOT NULL CHECK (length(friendly_name) BETWEEN 1 AND 200),
    secret text NOT NULL,
    status text NOT NULL DEFAULT 'unverified' CHECK (status IN ('unverified', 'verified')),
    last_step bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, friendly_name)
);

CREATE TABLE orgbase.mfa_challenges (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    factor_id uuid NOT NULL REFERENCES orgbase.mfa_factors (id) ON DELETE CASCADE,
    session_id uuid NOT NULL REFERENCES orgbase.sessions (id) ON DELETE CASCADE,
    attempts integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    verified_at timestamptz
);
CREATE INDEX mfa_challenges_factor_idx ON orgbase.mfa_challenges (factor_id);

-- Recovery codes: each one works once, instead of a TOTP code.
CREATE TABLE orgbase.mfa_recovery_codes (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES orgbase.users (id) ON DELETE CASCADE,
    code_hash bytea NOT NULL,
    used_at timestamptz,
    UNIQUE (user_id, code_hash)
);

GRANT SELECT, INSERT, UPDATE, DELETE
    ON orgbase.auth_codes, orgbase.mfa_factors, orgbase.mfa_challenges, orgbase.mfa_recovery_codes
    TO orgbase_system;
