"""Every error code the API answers: its HTTP status, its WebSocket close code and what it
means, in one table (as PostgREST's Error.hs or GoTrue's errorcode.go).

A new code is one line in its section. ``tests/unit/test_error_catalog.py`` reads every
module of orgbase and fails when a raised code is missing here, when the status here is
not its error kind's, or when a line here is never raised; ``docs/errors.md`` is generated
from this table (``python -m orgbase.platform.error_docs``). A data API statement's
SQLSTATE is a code too: its status comes from ``pg_errors.status_for_sqlstate``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Code:
    status: int
    meaning: str
    close: int | None = None
    """A socket's close code, when not the one its status gives (``close_for_status``)."""


_REQUESTS = {
    "bad_request": Code(400, "the request was refused before any route ran"),
    "validation_failed": Code(400, "a body or parameter does not fit the route's schema"),
    "malformed_body": Code(400, "the body (or a socket message) is not valid JSON"),
    "invalid_body": Code(400, "the body is not the JSON object the route takes"),
    "invalid_utf8": Code(400, "the body is not valid UTF-8"),
    "json_too_deep": Code(400, "the JSON nests deeper than the limit"),
    "invalid_request_id": Code(400, "X-Request-ID is not 1-128 letters, digits and . _ : -"),
    "invalid_time": Code(400, "a time is not ISO 8601 with a zone, in the supported range"),
    "invalid_page": Code(400, "limit or offset is out of range"),
    "unauthorized": Code(401, "a credential is needed (a refusal of the framework's own)"),
    "forbidden": Code(403, "the caller may not do this (a refusal of the framework's own)"),
    "not_found": Code(404, "no such route"),
    "method_not_allowed": Code(405, "the route does not take this method"),
    "not_acceptable": Code(406, "the Accept header allows nothing this route answers"),
    "conflict": Code(409, "the request clashes with the current state"),
    "payload_too_large": Code(413, "the body is larger than the gateway's limit"),
    "unsupported_media_type": Code(415, "the body's Content-Type is not one this route takes"),
    "rate_limited": Code(429, "too many requests from this address or account: wait"),
    "internal_error": Code(500, "an unexpected failure (the log has it under the request id)"),
    "service_unavailable": Code(503, "the server cannot answer now: try again"),
}

_CREDENTIALS = {
    "auth_required": Code(401, "no credential was sent"),
    "apikey_invalid": Code(401, "/auth/v1, /rest/v1: no apikey header, or not the deployment's"),
    "token_malformed": Code(401, "the credential is not a well-formed token or key"),
    "token_expired": Code(401, "the access token has expired: refresh it"),
    "token_not_yet_valid": Code(401, "the access token is not valid yet (clock skew)"),
    "token_invalid": Code(401, "the access token's claims are missing or malformed"),
    "token_invalid_signature": Code(401, "the access token's signature is wrong"),
    "token_invalid_audience": Code(401, "the access token is for another audience"),
    "token_invalid_issuer": Code(401, "the access token has another issuer"),
    "token_unknown_key": Code(401, "the access token's signing key is not one of ours"),
    "token_bad_algorithm": Code(401, "the access token is signed with another algorithm"),
    "session_revoked": Code(401, "the session has ended (signed out, revoked, account gone)"),
    "impersonation_ended": Code(401, "the platform admin's impersonation has ended"),
    "api_key_invalid": Code(401, "the API key is unknown, revoked or expired"),
    "invalid_refresh_token": Code(401, "the refresh token is unknown"),
    "refresh_token_expired": Code(401, "the refresh token has expired: sign in again"),
    "refresh_token_reused": Code(401, "a rotated refresh token came back: the session ended"),
    "not_signed_in": Code(401, "the browser has no session cookie"),
    "user_token_required": Code(403, "this needs a user's access token, not an API key"),
    "csrf_failed": Code(403, "X-CSRF-Token does not match the orgbase_csrf cookie"),
    "origin_not_allowed": Code(403, "the browser sign-in is for the deployment's own pages"),
    "content_type_not_json": Code(415, "the browser sign-in takes application/json only"),
}

_ACCOUNTS = {
    "invalid_credentials": Code(401, "wrong email or password"),
    "account_locked": Code(429, "too many failed sign-ins: the account is locked for a while"),
    "mfa_locked": Code(429, "too many wrong second-factor codes: verification is locked a while"),
    "email_not_confirmed": Code(400, "the email address is not confirmed yet"),
    "email_exists": Code(409, "an account has this address (an email change, the admin API)"),
    "user_already_exists": Code(400, "an account has this email (GoTrue sign-up)"),
    "invalid_email": Code(400, "that is not an email address"),
    "anonymous_provider_disabled": Code(403, "anonymous sign-ins are not served"),
    "not_admin": Code(403, "the admin API takes the service key or an org admin's API key"),
    "service_key_required": Code(403, "an org's key may not do this: the platform's key may"),
    "invalid_display_name": Code(400, "the display name has control characters"),
    "weak_password": Code(400, "the password does not meet the rules"),
    "current_password_invalid": Code(403, "the current password is missing or wrong"),
    "metadata_too_large": Code(400, "the user metadata is too large"),
    "invalid_metadata": Code(400, "the user metadata is not a JSON object of storable values"),
    "reauthentication_needed": Code(
        403, "a session opened by a recovery cannot change factors: sign in again"
    ),
    "redirect_not_allowed": Code(400, "redirect_to is not an allowed URL"),
    "otp_expired": Code(403, "the mailed code or link is wrong, used or expired"),
    "unsupported_grant_type": Code(400, "grant_type is not one the route takes"),
    "bad_json": Code(400, "the body is not JSON (GoTrue)"),
    "session_not_found": Code(404, "no such session of this user"),
    "last_owner": Code(409, "the last owner of an org must hand it over first"),
    "insufficient_aal": Code(403, "this needs an aal2 session (a verified second factor)"),
    "mfa_required": Code(403, "the org requires a second factor: verify one (aal2)"),
    "mfa_factor_not_found": Code(404, "no such factor"),
    "mfa_factor_name_conflict": Code(400, "a factor has this friendly name"),
    "too_many_enrolled_mfa_factors": Code(400, "too many factors"),
    "mfa_challenge_expired": Code(404, "no such challenge, or it expired"),
    "mfa_verification_failed": Code(403, "the code is wrong, used or expired"),
}

_PROVIDERS = {
    "oidc_provider_not_found": Code(404, "no such sign-in provider"),
    "oidc_state_invalid": Code(400, "the sign-in's state is unknown, used or for another one"),
    "oidc_browser_mismatch": Code(403, "the sign-in was started in another browser"),
    "oidc_denied": Code(403, "the provider refused the sign-in (in the redirect's fragment)"),
    "oidc_code_rejected": Code(403, "the provider refused the authorization code"),
    "oidc_id_token_invalid": Code(403, "the provider's ID token or answer is not acceptable"),
    "oidc_nonce_mismatch": Code(403, "the ID token's nonce is not this sign-in's"),
    "oidc_email_not_verified": Code(403, "the provider has not verified the account's email"),
    "oidc_provider_bad_answer": Code(502, "the provider answered something unusable"),
    "oidc_provider_unavailable": Code(503, "the provider did not answer: try again"),
    "identity_already_exists": Code(409, "this identity is linked to another account"),
    "identity_link_required": Code(409, "an account has this email: sign in and link it"),
    "identity_email_mismatch": Code(403, "the provider's verified address is not the account's"),
    "identity_not_found": Code(404, "no such identity on this account"),
    "single_identity_not_deletable": Code(409, "the account's only way to sign in stays"),
    "sso_provider_not_found": Code(404, "no SSO provider for this domain"),
    "sso_provider_refused": Code(
        400, "the org's provider, or a URL its discovery names, is not usable (public https)"
    ),
    "sso_domain_mismatch": Code(403, "the org's provider signs in only its verified domains"),
    "sso_session_ended": Code(401, "the org's provider no longer signs this user in"),
    "sso_required": Code(403, "the org wants this member signed in through its SSO"),
    "sso_membership_suspended": Code(403, "the SSO-bound membership's address left the domains"),
    "sso_self_release": Code(403, "a member cannot release their own membership from the SSO"),
}

_ORGS = {
    "org_not_found": Code(404, "no such org (or it was deleted)"),
    "no_active_org": Code(403, "this needs an active org (the token's org)"),
    "not_a_member": Code(403, "the user is not a member of that org"),
    "role_too_low": Code(403, "the caller's role may not do this"),
    "role_escalation": Code(403, "a role above the caller's own cannot be granted"),
    "human_admin_required": Code(403, "security settings, admin grants: a person, never a key"),
    "impersonation_read_only": Code(403, "not allowed while impersonating"),
    "platform_admin_required": Code(403, "this is for platform admins"),
    "invalid_reason": Code(400, "the reason is 3 to 500 characters"),
    "invalid_name": Code(400, "the org needs a name"),
    "member_not_found": Code(404, "no such member"),
    "user_not_found": Code(404, "no such account (by email or id), or none the caller reaches"),
    "already_member": Code(409, "the user is a member already"),
    "archive_invalid": Code(400, "an org archive is cut short, altered or not an org archive"),
    "archive_version": Code(400, "an org archive of a format or schema this release cannot read"),
    "archive_id_clash": Code(409, "an archived row's id is taken here: nothing was imported"),
    "import_source_invalid": Code(400, "the import's source is unreachable or not Supabase's"),
    "invitation_not_found": Code(404, "no such invitation"),
    "invitation_expired": Code(410, "the invitation has expired"),
    "invitation_revoked": Code(410, "the invitation was revoked, or its sender may not invite"),
    "invitation_used": Code(409, "the invitation was used already"),
    "invitation_email_mismatch": Code(403, "the invitation is for another email address"),
    "api_key_not_found": Code(404, "no such active API key in this org"),
    "invalid_expiry": Code(400, "expires_at needs a time zone and must be in the future"),
    "settings_not_found": Code(404, "no settings for this org"),
    "settings_too_large": Code(413, "the settings are larger than the limit"),
    "version_conflict": Code(412, "the settings changed since the version in If-Match"),
    "version_not_found": Code(404, "no such settings version"),
    "if_match_required": Code(428, "a settings change needs If-Match: <version>"),
    "invalid_if_match": Code(400, "If-Match is not a settings version"),
    "invalid_domain": Code(400, "that is not a domain name"),
    "domain_claimed": Code(409, "this org claims that domain already"),
    "domain_not_found": Code(404, "this org has no claim on that domain"),
    "domain_not_proven": Code(400, "the domain's DNS does not publish the claim's record"),
    "domain_verified_elsewhere": Code(409, "another org has verified this domain"),
    "too_many_domains": Code(409, "the org claims the most domains it may"),
    "dns_unavailable": Code(503, "the domain's DNS could not be asked: try again"),
    "invalid_issuer": Code(400, "the issuer must be an https URL"),
}

_DATA = {
    "PGRST100": Code(400, "the query string does not parse"),
    "PGRST101": Code(405, "a function that writes was called with GET"),
    "PGRST102": Code(400, "the body is empty or not valid JSON"),
    "PGRST103": Code(416, "the range asked for is past the rows there are"),
    "PGRST106": Code(400, "an update or delete without a filter is refused"),
    "PGRST107": Code(406, "none of the media types in Accept can be answered"),
    "PGRST116": Code(406, "one object was asked for, and there are none or several"),
    "PGRST122": Code(400, "Prefer: handling=strict with an unknown preference"),
    "PGRST124": Code(400, "the write changes more rows than Prefer: max-affected"),
    "PGRST200": Code(400, "no relationship between the tables to embed"),
    "PGRST201": Code(400, "more than one relationship to embed by: name one"),
    "PGRST202": Code(404, "no such function in the schema"),
    "PGRST204": Code(400, "no such column in the table"),
    "PGRST205": Code(404, "no such table in the schema"),
    "rows_per_response_exceeded": Code(400, "the write answers more rows than the org allows"),
    "statement_timeout": Code(504, "the statement ran past the org's statement timeout"),
    "invalid_value": Code(400, "a value the database cannot store or compare"),
    "database_unavailable": Code(503, "PostgreSQL cannot answer now: try again"),
}

_DOCUMENTS = {
    "document_not_found": Code(404, "no such document"),
    "invalid_document": Code(400, "a document is a JSON object of allowed fields"),
    "invalid_query": Code(400, "the filter, update or pipeline is not one the API takes"),
    "forbidden_operator": Code(400, "an operator that runs code or escapes the org"),
    "reserved_field": Code(400, "a field the server manages (the org, _id)"),
    "unscoped_lookup": Code(400, "$lookup needs localField and foreignField"),
    "filter_required": Code(400, "deleting documents needs a filter"),
    "too_many_documents": Code(400, "more documents at once than the limit"),
    "invalid_limit": Code(400, "limit is not a whole number in its range"),
    "invalid_skip": Code(400, "skip is not a whole number of zero or more"),
    "invalid_collection": Code(400, "collection names are 1-64 letters, digits, _ and -"),
    "invalid_index": Code(400, "the index's keys or options are not ones the API takes"),
    "index_not_found": Code(404, "no such index"),
    "duplicate_key": Code(409, "a document with this unique key exists"),
    "document_storage_exceeded": Code(409, "the org's documents are at its storage limit"),
    "query_timeout": Code(504, "the query ran out of time"),
    "local_server_gap": Code(400, "a shape the local Mongo-wire server answers wrongly"),
    "mongo_unavailable": Code(503, "the document store cannot answer now: try again"),
}

_CACHE_AND_REALTIME = {
    "invalid_key": Code(400, "keys are 1-256 letters, digits and : . _ -"),
    "key_not_found": Code(404, "no such key"),
    "invalid_ttl": Code(400, "ttl is out of range"),
    "value_too_large": Code(413, "the value is larger than the limit"),
    "not_an_integer": Code(409, "the value to increment is not an integer"),
    "quota_exceeded": Code(409, "the org holds the most keys it may"),
    "cache_storage_exceeded": Code(409, "the org's cache is at its storage limit"),
    "invalid_channel": Code(400, "channel names are 1-128 letters, digits and : . _ -"),
    "reserved_channel": Code(400, "db:* channels carry row changes: only the server publishes"),
    "invalid_event": Code(400, "event is a name of 1-100 characters"),
    "invalid_command": Code(400, "a socket command is not subscribe, unsubscribe, publish, ping"),
    "too_many_channels": Code(400, "more channels on one connection than the limit"),
    "message_too_large": Code(413, "the message is larger than the limit"),
    "realtime_connections_exceeded": Code(429, "the org holds the most realtime connections"),
    "realtime_too_slow": Code(429, "the socket read too slowly: messages piled up", close=4008),
    "realtime_joins_exceeded": Code(429, "the org joins more channels per second than its limit"),
    "invalid_frame": Code(400, "a Phoenix frame is not one the protocol (and its vsn) has"),
    "invalid_join": Code(400, "a channel join's config asks for what cannot be served"),
    "invalid_filter": Code(400, "a postgres_changes filter is not column=op.value on its table"),
    "unmatched_topic": Code(400, "a Phoenix message for a topic the socket has not joined"),
    "private_channels_unsupported": Code(
        400, "private channels (realtime.messages) are not served"
    ),
    "realtime_identity_changed": Code(403, "a socket's token is another user's or another org's"),
    "redis_unavailable": Code(503, "Redis cannot answer now: try again"),
}

_WEBHOOKS = {
    "webhook_not_found": Code(404, "no such webhook endpoint"),
    "delivery_not_found": Code(404, "no such delivery"),
    "webhook_disabled": Code(409, "the endpoint is disabled"),
    "too_many_endpoints": Code(409, "the org has the most endpoints it may"),
    "invalid_webhook_url": Code(400, "the URL is not an absolute http(s) URL"),
    "webhook_destination_refused": Code(400, "the URL's host is not a public address"),
    "webhook_host_unresolved": Code(400, "the URL's host does not resolve in public DNS"),
}

_PLATFORM = {
    "org_rate_limited": Code(429, "the org sent more requests a minute than its limit"),
    "invalid_limits": Code(400, "the limits are one JSON object"),
    "unknown_limit": Code(400, "a limit name that does not exist"),
    "invalid_format": Code(400, "format is json or csv"),
    "invalid_granularity": Code(400, "granularity is hour, day or month"),
    "invalid_time_range": Code(400, "from is after to"),
    "metrics_disabled": Code(404, "metrics are turned off"),
    "metrics_token_required": Code(401, "metrics need the metrics token"),
    "dev_mode_only": Code(403, "only served in dev mode"),
    "mail_catcher_not_configured": Code(404, "no mail catcher is configured"),
}

# Supabase Storage's own names where its clients branch on them (storage-js and
# storage-py read NoSuchKey, NoSuchBucket...), orgbase's words for the rest.
_STORAGE = {
    "InvalidRequest": Code(400, "the storage request is not one the API takes"),
    "InvalidKey": Code(400, "an object name that is empty, too long, or escapes its bucket"),
    "InvalidBucketName": Code(400, "bucket names are 1-100 letters, digits and - _ ."),
    "InvalidSignature": Code(400, "the signed URL's token is not one this deployment made"),
    "ExpiredSignature": Code(400, "the signed URL has expired"),
    "too_many_buckets": Code(400, "the org has as many buckets as it may"),
    "upload_interrupted": Code(400, "the client went away before the body ended: nothing kept"),
    "AccessDenied": Code(
        403,
        "the bucket's policy does not let the caller do this (or a signed upload's signer"
        " has no authority in the org any more)",
    ),
    "NoSuchBucket": Code(404, "no such bucket in the caller's org"),
    "NoSuchKey": Code(404, "no such object"),
    "NoSuchUpload": Code(404, "no such resumable upload (or it expired)"),
    "Duplicate": Code(409, "an object of that name exists (use upsert to replace it)"),
    "BucketAlreadyExists": Code(409, "the org has a bucket of that name"),
    "BucketNotEmpty": Code(409, "a bucket is emptied before it is deleted"),
    "storage_quota_exceeded": Code(409, "the org's stored bytes would pass storage_bytes"),
    "upload_busy": Code(409, "another request is writing this resumable upload"),
    "offset_mismatch": Code(409, "the chunk does not start where the upload stands"),
    "tus_version": Code(412, "the TUS protocol version is not 1.0.0"),
    "EntityTooLarge": Code(413, "the object is over the bucket's or the org's size limit"),
    "InvalidMimeType": Code(415, "the bucket does not take this type (or the body is not it)"),
    "InvalidContentType": Code(415, "a TUS chunk is sent as application/offset+octet-stream"),
    "InvalidRange": Code(416, "the range asked for lies past the object's end"),
    "storage_unavailable": Code(503, "the blob store cannot be reached: nothing was changed"),
    "storage_full": Code(503, "the blob store has no room: nothing was kept"),
    "signing_key_unset": Code(503, "signed URLs need ORGBASE_STORAGE_SIGNING_KEY"),
}

# The operator's functions at /functions/v1 (a function's own refusals carry its own codes).
_FUNCTIONS = {
    "function_statement_refused": Code(400, "ctx.db refuses transaction control and session state"),
    "function_result_too_large": Code(400, "ctx.db's statement returned too many rows"),
    "function_no_org": Code(400, "ctx.db without an org (a public function called anonymously)"),
    "function_call_refused": Code(400, "a worker's host call named no invocation of its own"),
    "function_destination_refused": Code(400, "ctx.http may reach public addresses only"),
    "function_http_invalid": Code(400, "ctx.http was given no valid method and URL"),
    "function_api_key_refused": Code(403, "the function does not take API keys"),
    "function_not_privileged": Code(403, "ctx.system_db is for functions declared privileged"),
    "function_not_found": Code(404, "no function of that name on this server"),
    "function_delivery_not_found": Code(404, "no dead delivery of that id (in the org)"),
    "function_claim_lost": Code(409, "a trigger run's delivery is no longer claimed by it"),
    "function_concurrency_exceeded": Code(429, "the org runs as many invocations as it may"),
    "function_failed": Code(500, "the function raised (its log has it under the request id)"),
    "function_crashed": Code(502, "the worker running the function ended before answering"),
    "function_bad_response": Code(502, "the function's answer is not an HTTP answer, or too big"),
    "function_http_failed": Code(502, "ctx.http's request failed or its answer was too big"),
    "function_unavailable": Code(503, "the function's module cannot be loaded, or no worker runs"),
    "functions_busy": Code(503, "every function worker slot stayed taken: try again"),
    "function_timeout": Code(504, "the function ran past its time limit and was stopped"),
}

SECTIONS: tuple[tuple[str, dict[str, Code]], ...] = (
    ("Requests", _REQUESTS),
    ("Credentials", _CREDENTIALS),
    ("Accounts, sign-in and factors", _ACCOUNTS),
    ("Sign-in through a provider (OIDC, SSO)", _PROVIDERS),
    ("Orgs, members, keys and settings", _ORGS),
    ("Data API (PostgREST's codes)", _DATA),
    ("Documents", _DOCUMENTS),
    ("Cache and realtime", _CACHE_AND_REALTIME),
    ("Webhooks", _WEBHOOKS),
    ("Storage (Supabase Storage's codes where its clients read them)", _STORAGE),
    ("Functions", _FUNCTIONS),
    ("Usage, limits and operations", _PLATFORM),
)
CATALOG: dict[str, Code] = {code: entry for _, table in SECTIONS for code, entry in table.items()}

CODE_FOR_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}
"""The code of a refusal that carries none of its own (the web framework's), by status."""

# WebSocket close codes by status: 4000 + the status for a refusal (4401: the credential,
# 4429: a limit), but every "your rights here ended" (403, 404, 410) is 4403, as a socket
# whose org or membership went away is told; a server fault is 1011, an outage 1013 (try
# again later), the standard codes.
_CLOSE_BY_STATUS = {404: 4403, 410: 4403, 503: 1013}


def code_for_status(status: int) -> str:
    return CODE_FOR_STATUS.get(status, "bad_request" if status < 500 else "internal_error")


def close_for_status(status: int) -> int:
    if status in _CLOSE_BY_STATUS:
        return _CLOSE_BY_STATUS[status]
    return 4000 + status if status < 500 else 1011
