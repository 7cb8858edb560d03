-- Identity hardening: second factors and the guesses at them.

-- A user has at most one unverified factor: an enrolment never finished ("add an
-- authenticator" clicked twice) is replaced by the next one, not left behind. The newest
-- unfinished enrolment of each user is kept.
DELETE FROM orgbase.mfa_factors f
WHERE f.status = 'unverified' AND EXISTS (
    SELECT 1 FROM orgbase.mfa_factors newer
    WHERE newer.user_id = f.user_id AND newer.status = 'unverified'
      AND (newer.created_at, newer.id) > (f.created_at, f.id));
CREATE UNIQUE INDEX mfa_factors_one_unverified_idx ON orgbase.mfa_factors (user_id)
    WHERE status = 'unverified';

-- Guesses at a second factor reserved in PostgreSQL while Redis is down (the lockout's
-- fallback, as for sign-in): counted per factor and per user since the last right code.
CREATE INDEX audit_events_guess_account_idx ON orgbase.audit_events ((details ->> 'account'), id)
    WHERE action IN ('auth.mfa_attempt', 'auth.guesses_cleared');
