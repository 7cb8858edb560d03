"""The typed settings tree and how it is built from ``ORGBASE_*`` variables.

Every setting has exactly one variable: ``ORGBASE_<SECTION>_<FIELD>`` for a field of a
section (``ORGBASE_DATABASE_API_URL``) and ``ORGBASE_<FIELD>`` for a top-level field
(``ORGBASE_ENV``). Nothing here reads ``os.environ``: the caller passes the mapping in, so
tests build settings without touching the process environment.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, get_args, get_origin, get_type_hints
from urllib.parse import urlsplit

import msgspec
from msgspec import Meta

PREFIX = "ORGBASE_"
# Variables of the local development stack tooling (``orgbase services``), not settings.
_IGNORED_PREFIXES = ("ORGBASE_LOCAL_",)

Environment = Literal["dev", "test", "prod"]
PositiveInt = Annotated[int, Meta(ge=1)]
PositiveFloat = Annotated[float, Meta(gt=0)]
Port = Annotated[int, Meta(ge=1, le=65535)]


class SettingsError(ValueError):
    """A setting is missing or invalid; ``variable`` names the environment variable."""

    def __init__(self, message: str, variable: str | None = None) -> None:
        super().__init__(message)
        self.variable = variable


def _check_url(value: str, schemes: tuple[str, ...], field: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.hostname:
        raise ValueError(f"{field}: must be a URL like {schemes[0]}://user:password@host:port/...")


class DatabaseSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """PostgreSQL: three logins with three jobs (see sql/rls/0001_roles.sql)."""

    api_url: str
    """``orgbase_api``: tenant data, NOBYPASSRLS, never an owner."""
    system_url: str
    """``orgbase_system``: platform internals (auth lookups, memberships)."""
    migration_url: str
    """The owner of the schema; runs migrations and creates the roles."""
    listen_url: str | None = None
    """A direct connection for LISTEN (schema changes, row events): PgBouncer in transaction
    mode cannot carry LISTEN. Defaults to ``system_url``."""
    api_pool_min: Annotated[int, Meta(ge=0)] = 2
    """Connections the tenant pool keeps open."""
    api_pool_max: PositiveInt = 10
    """Most connections of the tenant pool (per process)."""
    system_pool_min: Annotated[int, Meta(ge=0)] = 1
    """Connections the platform pool keeps open."""
    system_pool_max: PositiveInt = 5
    """Most connections of the platform pool (per process)."""
    connect_timeout: PositiveFloat = 3.0
    """Seconds to open a connection: every database wait is bounded."""
    command_timeout: PositiveFloat = 15.0
    """Seconds one command may take before the client gives up."""
    acquire_timeout: PositiveFloat = 3.0
    """Seconds a request waits for a pooled connection (then 503)."""
    api_heavy_statement_ms: Annotated[int, Meta(ge=0, le=3_600_000)] = 20
    """An org whose statements hold a connection longer than this on average is held to
    one at a time (per gateway process) while other orgs use the tenant pool: each long
    statement takes a database core. 0: never."""
    api_shared_statements: Annotated[int, Meta(ge=0, le=10_000)] = 0
    """Statements the database runs at full speed at once, as one gateway process shares
    them (about the database's cores; divide by the processes to be strict): while orgs
    compete for the tenant pool, each is entitled to its weighted share of them, and an org
    over its share is held to it. 0: this host's cores (right when the database runs
    here), at most ``api_pool_max``."""
    migrate_on_start: bool = False
    """Migrate in the gateway's lifespan (advisory-locked, so several gateways may start at
    once)."""
    replica_urls: tuple[str, ...] = ()
    """Streaming replicas (``orgbase_api`` logins) for reads; see docs/scaling.md."""
    replica_max_lag_seconds: PositiveFloat = 5.0
    """A replica further behind than this (or down) is skipped."""
    replica_poll_seconds: PositiveFloat = 0.2
    """How often each process asks each replica how far it has replayed."""

    @property
    def listener_url(self) -> str:
        return self.listen_url or self.system_url

    def __post_init__(self) -> None:
        for name in ("api_url", "system_url", "migration_url"):
            _check_url(getattr(self, name), ("postgresql", "postgres"), name)
        if self.listen_url is not None:
            _check_url(self.listen_url, ("postgresql", "postgres"), "listen_url")
        for url in self.replica_urls:
            _check_url(url, ("postgresql", "postgres"), "replica_urls")
        if self.api_pool_min > self.api_pool_max:
            raise ValueError("api_pool_min: must not exceed api_pool_max")
        if self.system_pool_min > self.system_pool_max:
            raise ValueError("system_pool_min: must not exceed system_pool_max")


class RedisSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Redis behind Sentinel (``sentinels``), a Redis Cluster (``cluster_nodes``, some of
    its nodes), or a single server (``url``)."""

    sentinels: tuple[str, ...] = ()
    """`host:port,host:port,...` of the Sentinels."""
    cluster_nodes: tuple[str, ...] = ()
    """`host:port,...` of some nodes of a Redis Cluster (instead of Sentinels; database 0
    only): commands go to each slot's primary, realtime uses sharded pub/sub."""
    service_name: str = "orgbase"
    """The Sentinel service name of the primary."""
    url: str | None = None
    """`redis://...` of one server (instead of Sentinels or a cluster)."""
    password: str | None = None
    """Required outside dev mode."""
    sentinel_password: str | None = None
    """The Sentinels' own password; required outside dev mode with Sentinels."""
    db: Annotated[int, Meta(ge=0, le=15)] = 0
    """The database number."""
    socket_timeout: PositiveFloat = 0.5
    """Seconds one command may take."""
    connect_timeout: PositiveFloat = 0.5
    """Seconds to connect."""
    pool_max: PositiveInt = 64
    """Most connections to the primary (per process)."""
    breaker_failures: PositiveInt = 3
    """Redis failures in a row that open the circuit: calls then fail at once and sessions
    are checked in PostgreSQL."""
    breaker_reset_seconds: PositiveFloat = 0.5
    """How soon a trial call follows an opening of the circuit: it bounds how long the
    cache stays off after Redis is back (a Sentinel failover takes about 2 s)."""

    def __post_init__(self) -> None:
        if not self.sentinels and not self.url and not self.cluster_nodes:
            raise ValueError("sentinels: set sentinels (host:port,...), cluster_nodes or url")
        if self.sentinels and self.cluster_nodes:
            raise ValueError("cluster_nodes: set either sentinels or cluster_nodes, not both")
        if self.cluster_nodes and self.db != 0:
            raise ValueError("db: a Redis Cluster has only database 0")
        for field, addresses in (
            ("sentinels", self.sentinels),
            ("cluster_nodes", self.cluster_nodes),
        ):
            for address in addresses:
                host, _, port = address.rpartition(":")
                if not host or not (port.isascii() and port.isdigit()):
                    raise ValueError(f"{field}: {address!r} is not host:port")
        if self.url:
            _check_url(self.url, ("redis", "rediss"), "url")

    def sentinel_addresses(self) -> list[tuple[str, int]]:
        return [(a.rpartition(":")[0], int(a.rpartition(":")[2])) for a in self.sentinels]

    def cluster_addresses(self) -> list[tuple[str, int]]:
        return [(a.rpartition(":")[0], int(a.rpartition(":")[2])) for a in self.cluster_nodes]


class MongoSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    url: str
    """`mongodb://...`"""
    database: Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]{1,63}$")] = "orgbase"
    """The database holding the orgs' collections."""
    server_selection_timeout_ms: PositiveInt = 2000
    """How long a call waits for an unreachable Mongo."""
    connect_timeout_ms: PositiveInt = 2000
    """How long opening a connection may take."""
    socket_timeout_ms: PositiveInt = 10000
    """How long one operation's answer may take."""
    pool_max: PositiveInt = 50
    """Most connections (per process)."""
    max_time_ms: PositiveInt = 5000
    """Server-side time limit of every find, count and aggregate."""
    max_limit: PositiveInt = 1000
    """Most documents one call returns (or inserts)."""
    breaker_failures: PositiveInt = 2
    """Mongo failures in a row that open its circuit (document routes then answer 503 at
    once)."""
    breaker_reset_seconds: PositiveFloat = 2.0
    """When to try Mongo again after the circuit opened."""

    def __post_init__(self) -> None:
        _check_url(self.url, ("mongodb", "mongodb+srv"), "url")


class HttpSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``trusted_proxies``: addresses or networks (CIDR) whose X-Forwarded-For is believed."""

    host: str = "127.0.0.1"
    """`orgbase serve`: the listen address."""
    port: Port = 8000
    """`orgbase serve`: the listen port (`--port` sets it too)."""
    workers: PositiveInt = 1
    """`orgbase serve`: uvicorn worker processes, each on its own `SO_REUSEPORT` socket."""
    cors_origins: tuple[str, ...] = ()
    """Comma-separated origins allowed by CORS (none: no CORS)."""
    max_body_bytes: PositiveInt = 1_048_576
    """Larger request bodies get 413."""
    trusted_proxies: tuple[str, ...] = ()
    """Addresses or networks (CIDR) whose `X-Forwarded-*` headers are believed."""
    websocket_compression: bool = False
    """permessage-deflate on WebSockets. Off, as Phoenix (Supabase Realtime) serves them:
    each message is compressed once per socket, so a broadcast to 1,000 sockets is
    compressed 1,000 times, for little gain on small frames."""
    shutdown_grace_seconds: PositiveFloat = 10.0
    """On SIGTERM, the time given to in-flight requests."""
    health_timeout_seconds: PositiveFloat = 1.0
    """The bound on each dependency's check in `/health/ready`."""

    def __post_init__(self) -> None:
        for proxy in self.trusted_proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ValueError(
                    f"trusted_proxies: {proxy!r} is not an address or network"
                ) from None


class AuthSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    signing_keys_file: str | None = None
    """A JWK set with private keys (``orgbase keys rotate FILE`` makes or extends one); the
    first key signs, the others still verify until removed (rotation). Required outside
    dev mode; the local stack makes ``.orgbase/jwks.json``."""
    service_key: Annotated[str, Meta(min_length=32, max_length=200)] | None = None
    """The platform's service key (Supabase's ``service_role`` key): what a server sends
    (as bearer and ``apikey``) to manage every user through ``/auth/v1/admin``. Unset: only
    org API keys of admins manage users, each its org's members. A secret."""
    jwt_algorithm: Literal["EdDSA", "ES256", "HS256"] = "ES256"
    """The signing algorithm: the set's first key of it signs. Keys of the other algorithms
    in the set still verify (each only tokens of its own ``alg``: tokens never choose).
    ES256 is what Supabase's clients verify themselves (supabase-py's assurance level,
    supabase-js ``getClaims()``); EdDSA remains an option."""
    issuer: str = "orgbase"
    """`iss` of access tokens."""
    audience: str = "orgbase"
    """`aud` of access tokens."""
    access_token_seconds: PositiveInt = 900
    """Access token lifetime."""
    refresh_token_seconds: PositiveInt = 7 * 86400
    """A refresh token unused this long expires."""
    session_seconds: PositiveInt = 30 * 86400
    """Absolute session lifetime."""
    clock_skew_seconds: Annotated[int, Meta(ge=0, le=300)] = 30
    """Leeway on `exp`, `iat` and `nbf`."""
    refresh_grace_seconds: Annotated[int, Meta(ge=0, le=300)] = 10
    """A rotated refresh token presented again within this is a concurrent refresh; after
    it, a theft (the session ends)."""
    argon2_time_cost: PositiveInt = 3
    """argon2id time cost (hashes are upgraded at sign-in when it changes)."""
    argon2_memory_kib: Annotated[int, Meta(ge=8)] = 65536
    """argon2id memory in KiB."""
    argon2_parallelism: PositiveInt = 1
    """argon2id lanes."""
    hash_concurrency: PositiveInt = 1
    """Threads hashing passwords at once (keeps a core for the event loop)."""
    password_min_length: Annotated[int, Meta(ge=8, le=128)] = 10
    """Shortest password accepted."""
    token_cache_size: Annotated[int, Meta(ge=0, le=1_000_000)] = 8192
    """Verified access tokens remembered per process (0: verify every time)."""
    session_cache_seconds: PositiveInt = 300
    """Lifetime of a session entry in Redis."""
    warm_sessions_seconds: PositiveInt = 3600
    """At start, sessions seen this recently are loaded into Redis."""
    signin_per_ip_per_minute: PositiveInt = 30
    """Sign-ins per client address per minute (429 + `Retry-After`)."""
    signup_per_ip_per_hour: PositiveInt = 30
    """Sign-ups per client address per hour (429 + `Retry-After`)."""
    refresh_per_ip_per_minute: PositiveInt = 120
    """Refreshes per client address per minute (429 + `Retry-After`)."""
    lockout_failures: PositiveInt = 5
    """Failed sign-ins that lock an account (429 `account_locked`); at most this many
    guesses are checked per lock period, even sent in parallel."""
    lockout_window_seconds: PositiveInt = 900
    """The window in which failures are counted."""
    lockout_seconds: PositiveInt = 900
    """How long a locked account stays locked."""
    publishable_key: str | None = None
    """The key Supabase-style clients send as ``apikey`` (it grants nothing by itself);
    when set, /auth/v1 and /rest/v1 refuse requests without it (or an org API key) with 401
    ``apikey_invalid``. The local stack makes one; ``orgbase keys anon`` prints it."""
    personal_org: bool = False
    """Whether a sign-in that names no org enters the user's first org, made for them at
    their first sign-in when they have none (a personal org, they its owner), so users of a
    Supabase app, who know nothing of orgs, reach its tables (docs/supabase-sql.md)."""
    allow_unconfirmed_sign_in: bool = False
    """Whether a user whose email is not proven yet may sign in with a password (false:
    400 ``email_not_confirmed``), and GoTrue's sign-up answers a session at once. Default:
    true in dev and test mode only (``ORGBASE_ENV``), false in production."""
    code_seconds: Annotated[int, Meta(ge=60, le=86400)] = 900
    """How long a mailed code or link works (confirmation, recovery, magic link)."""
    code_attempts: Annotated[int, Meta(ge=1, le=20)] = 5
    """Wrong guesses after which a code (or an MFA challenge) dies."""
    mail_per_ip_per_hour: PositiveInt = 30
    """Recovery, magic-link and resend requests per client address per hour (429 + `Retry-
    After`)."""
    mail_per_address_per_hour: PositiveInt = 5
    """Recovery, magic-link and resend requests (each mails someone)."""
    redirect_urls: tuple[str, ...] = ()
    """Where links and OAuth flows may send the browser back to (comma-separated prefixes;
    the public URL is always allowed); any other ``redirect_to`` is 400
    ``redirect_not_allowed``."""
    mfa_issuer: str = "orgbase"
    """The issuer authenticator apps show."""
    mfa_lockout_failures: PositiveInt = 5
    """Second-factor codes (TOTP or recovery) tried on one factor, across challenges and
    sessions, before its verification locks (429 ``mfa_locked``) for
    ``mfa_lockout_seconds``; a right code clears the count."""
    mfa_user_lockout_failures: PositiveInt = 10
    """The same, for all of one user's factors together."""
    mfa_lockout_seconds: PositiveInt = 900
    """How long second-factor guesses are counted, and a lock lasts."""
    oidc_providers_file: str | None = None
    """A JSON list of OpenID providers users may sign in with:
    ``[{"name", "issuer", "client_id", "client_secret", "label"?, "scopes"?}]``."""

    def __post_init__(self) -> None:
        if self.service_key is not None and self.service_key == self.publishable_key:
            raise ValueError("service_key: must differ from the publishable key")
        for url in self.redirect_urls:
            try:
                parts = urlsplit(url)
                good = parts.scheme in ("http", "https") and bool(parts.hostname)
                parts.port  # noqa: B018 - parsing the port raises on a bad one
            except ValueError:
                good = False
            if not good:
                raise ValueError(f"redirect_urls: {url!r} is not an http(s) URL with a host")


class TenancySettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    invitation_days: Annotated[int, Meta(ge=1, le=90)] = 7
    """Invitation lifetime."""
    membership_cache_seconds: PositiveInt = 300
    """Lifetime of a membership entry in Redis."""
    settings_max_bytes: PositiveInt = 65536
    """Size limit of an org's settings document."""
    impersonation_minutes: Annotated[int, Meta(ge=1, le=60)] = 15
    """How long a platform admin's impersonation lasts."""
    public_url: str = "http://127.0.0.1:8000"
    """Where users reach this deployment: the base of links in mail (invitations,
    confirmation and recovery codes) and of OAuth callbacks. When not set it follows
    ``ORGBASE_HTTP_HOST`` and ``ORGBASE_HTTP_PORT`` (``http://127.0.0.1:<port>`` for a
    wildcard host), so a gateway served on another port mails links to itself; set it to
    the public address behind a load balancer."""
    dns_resolvers: tuple[str, ...] = ()
    """Where the gateway asks for the TXT record that proves an org's email domain:
    ``address`` or ``address:port`` (``[v6]:port``) of DNS servers; empty: the system's
    resolver (/etc/resolv.conf)."""
    dns_timeout_seconds: Annotated[float, Meta(gt=0, le=30)] = 5.0
    """How long a domain proof waits for the DNS answer (then 503, nothing verified)."""

    def __post_init__(self) -> None:
        for resolver in self.dns_resolvers:
            try:
                resolver_address(resolver)
            except ValueError:
                raise ValueError(
                    f"dns_resolvers: {resolver!r} is not an IP address, address:port"
                    " or [address]:port"
                ) from None


def resolver_address(text: str) -> tuple[str, int]:
    """``1.2.3.4``, ``1.2.3.4:5353``, ``::1`` or ``[::1]:5353`` -> (address, port)."""
    host, raw_port = text.strip(), "53"
    if host.startswith("["):
        host, _, rest = host[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(text)
            raw_port = rest[1:]
    elif host.count(":") == 1:
        host, _, raw_port = host.partition(":")
    ipaddress.ip_address(host)
    if not (raw_port.isascii() and raw_port.isdigit() and 0 < int(raw_port) < 65536):
        raise ValueError(text)
    return host, int(raw_port)


class SmtpSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Mail delivery for the outbox; without ``host`` mail waits in the outbox."""

    host: str | None = None
    """The SMTP server mail goes to; none: mail waits in `orgbase.outbox`."""
    port: Port = 587
    """Its port."""
    username: str | None = None
    """Login, if the server needs one."""
    password: str | None = None
    """Password of that login."""
    from_address: str = "orgbase@localhost"
    """The sender of orgbase's mail."""
    starttls: bool = True
    """Upgrade the connection with STARTTLS."""
    timeout_seconds: PositiveFloat = 10.0
    """One delivery's time limit."""
    poll_seconds: PositiveFloat = 2.0
    """Pause between rounds of the outbox's mail sender."""


class KvSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    max_value_bytes: PositiveInt = 65536
    """Largest cache value."""
    max_keys_per_org: PositiveInt = 10000
    """Most cache keys one org holds."""
    max_ttl_seconds: PositiveInt = 30 * 86400
    """Longest TTL a cache value may have."""


class RealtimeSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    max_channels_per_socket: PositiveInt = 50
    """Channels one socket may subscribe to when per-org limits are off (else the org's
    realtime_channels_per_connection)."""
    max_message_bytes: PositiveInt = 32768
    """Largest published message."""
    queue_size: PositiveInt = 256
    """Messages held for a slow subscriber before it is disconnected."""
    recheck_seconds: PositiveFloat = 30.0
    """How often open sockets re-check their session and membership (revocations are also
    pushed at once through Redis)."""
    presence_ttl_seconds: Annotated[float, Meta(ge=3, le=3600)] = 45.0
    """How long a tracked presence outlives its gateway process (each process renews its
    own every third of this)."""


class DataSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    max_rows: Annotated[int, Meta(ge=1, le=100_000)] = 1000
    """The most rows one response of /v1/db carries (a larger limit is cut down)."""
    statement_cache: Annotated[int, Meta(ge=0, le=100_000)] = 2048
    """Built SQL remembered per process, by request shape."""
    allow_tx_rollback: bool = False
    """Honour ``Prefer: tx=rollback`` (run a write, answer it, keep nothing)."""


class AppSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The operator's own schema."""

    migrations_dir: str = "migrations"
    """App migrations, applied after orgbase's (relative to the working directory; none
    when it does not exist). In the image of compose.yaml the working directory is /app."""


class LimitsSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Per-org limits: the defaults every org gets (platform admins override them per org at
    /v1/platform/orgs/{org_id}/limits) and how they and the usage meter run."""

    enabled: bool = True
    """Per-org request limits, quotas and concurrency caps (off: the fair gate still takes
    turns between orgs, usage is still metered)."""
    data_requests_per_minute: PositiveInt = 600_000
    """Each org's default requests per minute to `/v1/db` (and `/rest/v1`)."""
    docs_requests_per_minute: PositiveInt = 120_000
    """Each org's default requests per minute to `/v1/docs`."""
    kv_requests_per_minute: PositiveInt = 300_000
    """Each org's default requests per minute to `/v1/kv`."""
    realtime_publishes_per_minute: PositiveInt = 60_000
    """Each org's default realtime publishes per minute (HTTP and WebSocket)."""
    concurrent_statements: PositiveInt = 8
    """Tenant-pool connections one org holds at once in one process (the fair gate)."""
    statement_timeout_ms: PositiveInt = 15_000
    """One statement's time limit (504 `statement_timeout`)."""
    rows_per_response: Annotated[int, Meta(ge=1, le=100_000)] = 1000
    """Most rows in one `/v1/db` answer for an org."""
    document_storage_bytes: PositiveInt = 1 << 30
    """What an org's documents may take (409 `document_storage_exceeded`)."""
    cache_storage_bytes: PositiveInt = 256 << 20
    """What an org's cache values may take (409 `cache_storage_exceeded`)."""
    realtime_connections: PositiveInt = 1000
    """An org's open sockets and event streams, per process (429
    `realtime_connections_exceeded`)."""
    realtime_channels_per_connection: PositiveInt = 100
    """Channels one socket of the org may join (400 `too_many_channels`)."""
    realtime_joins_per_second: PositiveInt = 100
    """Channel joins per second of an org's Supabase Realtime sockets, per process (429
    `realtime_joins_exceeded`)."""
    storage_requests_per_minute: PositiveInt = 120_000
    """Storage API requests an org may make per minute (429 `org_rate_limited`)."""
    storage_bytes: PositiveInt = 10 << 30
    """Bytes all of an org's stored objects may take."""
    max_object_bytes: PositiveInt = 5 << 30
    """The largest object an org may store (a bucket's file_size_limit may be smaller)."""
    db_time_weight: Annotated[int, Meta(ge=1, le=1000)] = 1
    """Each org's weight in the sharing of the database's (and the document store's) time
    while orgs compete (weight 2: twice the time of an org with weight 1)."""
    cache_size: Annotated[int, Meta(ge=1, le=10_000_000)] = 100_000
    """Orgs whose effective limits one process remembers."""
    cache_seconds: PositiveFloat = 300.0
    """How long a process keeps an org's limits before reloading them (a change is pushed at
    once)."""
    usage_flush_seconds: PositiveFloat = 5.0
    """How often a process flushes its usage counts to Redis and PostgreSQL."""


class ObservabilitySettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    metrics_enabled: bool = True
    """Serve `/metrics` and record request metrics."""
    metrics_token: str | None = None
    """When set, GET /metrics needs ``Authorization: Bearer <token>``; so do the details
    of GET /health/ready when they are not public."""
    health_details_public: bool = False
    """GET /health/ready shows anyone every check's details (pools, the Redis primary's
    address, errors); off, statuses and latencies only, the details with the metrics
    token. On by default in dev and test."""
    access_log: bool = True
    """One JSON line per request."""
    slo_availability: Annotated[float, Meta(gt=0, lt=1)] = 0.999
    """The availability objective: the share of requests that are not 5xx."""
    slo_latency_seconds: PositiveFloat = 0.5
    """The latency objective's bound (with `slo_latency_target`: p95 under 500 ms)."""
    slo_latency_target: Annotated[float, Meta(gt=0, lt=1)] = 0.95
    """The share of requests that must be faster than slo_latency_seconds (p95 by default)."""
    redis_memory_alert_ratio: Annotated[float, Meta(gt=0, le=1)] = 0.9
    """The dashboard alerts when Redis uses more than this share of its maxmemory."""
    redis_memory_alert_bytes: PositiveInt = 1 << 30
    """Alert when Redis uses more than this and has no maxmemory set."""


class WebhookSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    enabled: bool = True
    """Whether this gateway delivers (endpoints and the outbox work either way)."""
    allowed_hosts: tuple[str, ...] = ()
    """Hosts (names or IP literals) delivered to even when they resolve to loopback,
    private, link-local or metadata addresses (refused otherwise; dev mode allows
    loopback)."""
    timeout_seconds: PositiveFloat = 10.0
    """One delivery: connect, send and read the answer."""
    retry_schedule: tuple[PositiveFloat, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)
    """Seconds between attempts (with +-10 % jitter), about three days in all; a delivery
    still failing after the last is given up, and an endpoint that delivered nothing
    over a whole schedule is disabled."""
    max_in_flight: Annotated[int, Meta(ge=1, le=100)] = 4
    """Deliveries under way to one endpoint from one gateway process."""
    poll_seconds: PositiveFloat = 0.5
    """Pause between the dispatcher's rounds."""
    batch: Annotated[int, Meta(ge=1, le=1000)] = 64
    """Deliveries claimed per round."""
    breaker_failures: PositiveInt = 5
    """Consecutive failures of an endpoint that open its circuit breaker (in each
    process): its deliveries wait, without spending attempts, until it half-opens."""
    breaker_reset_seconds: PositiveFloat = 30.0
    """When an open endpoint breaker lets a trial delivery through."""
    max_response_bytes: Annotated[int, Meta(ge=0, le=65536)] = 1024
    """How much of a receiver's answer is read and logged."""
    retention_days: Annotated[int, Meta(ge=1, le=365)] = 30
    """How long the delivery log is kept."""
    max_endpoints_per_org: Annotated[int, Meta(ge=1, le=1000)] = 20
    """Endpoints one org may have."""
    owner_check_seconds: Annotated[float, Meta(gt=0, le=3600)] = 30.0
    """How often a delivering gateway disables the endpoints whose owner lost the org's
    authority without an event saying so (an admin API key that expired): their deliveries
    are never claimed meanwhile."""


class StorageSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """File storage (``/storage/v1``): where blobs live and how long grants last. Metadata
    is in PostgreSQL; see docs/storage.md."""

    enabled: bool = True
    """Serve `/storage/v1`."""
    backend: Literal["filesystem", "s3"] = "filesystem"
    """Where blobs live: a folder (`root`) or an S3-compatible store (`s3_*`)."""
    root: str = ".orgbase/storage"
    """The filesystem backend's folder; with any backend, where resumable uploads collect
    their chunks until complete (every gateway replica must see the same folder)."""
    signing_key: str | None = None
    """The HMAC key of signed URLs (32+ characters). Without it signed URLs are refused
    (outside dev mode, where a key lives as long as the process)."""
    s3_bucket: str | None = None
    """The S3 bucket that holds every org's blobs (required with the s3 backend)."""
    s3_endpoint: str | None = None
    """An S3-compatible endpoint (``https://...``); AWS's own when unset."""
    s3_region: str = "us-east-1"
    """The S3 region."""
    s3_access_key_id: str | None = None
    """The S3 access key id (unset: the environment's credentials)."""
    s3_secret_access_key: str | None = None
    """The S3 secret access key."""
    s3_prefix: str = ""
    """Prepended to every key in the S3 bucket (several deployments may share one)."""
    timeout_seconds: PositiveFloat = 30.0
    """One backend call (a chunk written or read, a delete); a stalled backend is a 503."""
    chunk_bytes: Annotated[int, Meta(ge=65536, le=64 << 20)] = 1 << 20
    """How much of a blob is read or written at a time (the memory one transfer holds)."""
    signed_url_max_seconds: PositiveInt = 7 * 86400
    """The longest lifetime a signed download URL may be given."""
    signed_upload_seconds: PositiveInt = 7200
    """How long a signed upload URL lasts."""
    resumable_seconds: PositiveInt = 86400
    """How long an unfinished resumable upload is kept."""
    sweep_seconds: PositiveFloat = 300.0
    """How often a gateway looks for orphaned blobs and expired resumable uploads."""
    orphan_grace_seconds: PositiveFloat = 3600.0
    """A blob without a metadata row is removed once it is this old (an upload being
    published has a row within milliseconds of its blob)."""
    max_buckets_per_org: Annotated[int, Meta(ge=1, le=100_000)] = 100
    """Buckets one org may have (400 `too_many_buckets`)."""

    def __post_init__(self) -> None:
        if self.backend == "s3" and not self.s3_bucket:
            raise ValueError("s3_bucket: is required with the s3 backend")
        if self.signing_key is not None and len(self.signing_key) < 32:
            raise ValueError("signing_key: must be at least 32 characters")
        if self.s3_endpoint is not None:
            _check_url(self.s3_endpoint, ("https", "http"), "s3_endpoint")


class DevSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    mail_file: str | None = None
    """The local mail catcher's messages (JSON lines), read by GET /v1/dev/mail in dev mode
    (the local stack sets it)."""


class LogSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    level: Literal["debug", "info", "warning", "error"] = "info"
    """The lowest level logged."""
    format: Literal["json", "console"] = "json"
    """`json` (one object per line) or `console` (for a terminal)."""


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    env: Environment = "prod"
    """`dev`, `test` or `prod`. Dev mode allows what only a developer's machine should:
    defaults for secrets, loopback webhook destinations, `/v1/dev/mail`, `seed-demo`."""
    database: DatabaseSettings
    redis: RedisSettings
    mongo: MongoSettings
    http: HttpSettings = msgspec.field(default_factory=HttpSettings)
    auth: AuthSettings = msgspec.field(default_factory=AuthSettings)
    tenancy: TenancySettings = msgspec.field(default_factory=TenancySettings)
    smtp: SmtpSettings = msgspec.field(default_factory=SmtpSettings)
    data: DataSettings = msgspec.field(default_factory=DataSettings)
    app: AppSettings = msgspec.field(default_factory=AppSettings)
    kv: KvSettings = msgspec.field(default_factory=KvSettings)
    realtime: RealtimeSettings = msgspec.field(default_factory=RealtimeSettings)
    observability: ObservabilitySettings = msgspec.field(default_factory=ObservabilitySettings)
    webhooks: WebhookSettings = msgspec.field(default_factory=WebhookSettings)
    limits: LimitsSettings = msgspec.field(default_factory=LimitsSettings)
    storage: StorageSettings = msgspec.field(default_factory=StorageSettings)
    log: LogSettings = msgspec.field(default_factory=LogSettings)
    dev: DevSettings = msgspec.field(default_factory=DevSettings)

    def __post_init__(self) -> None:
        if self.env != "dev":
            # Outside dev mode no secret may be missing: a Redis without a password is one.
            if self.redis.password is None:
                raise ValueError("redis.password: is required outside dev mode")
            if self.redis.sentinels and self.redis.sentinel_password is None:
                raise ValueError("redis.sentinel_password: is required outside dev mode")
            if self.auth.signing_keys_file is None:
                raise ValueError("auth.signing_keys_file: is required outside dev mode")

    @property
    def is_dev(self) -> bool:
        return self.env == "dev"


# -- building from the environment ------------------------------------------------------


def _sections() -> dict[str, type[msgspec.Struct] | None]:
    """Top-level fields of Settings: a section struct, or None for a scalar."""
    hints = get_type_hints(Settings, include_extras=True)
    out: dict[str, type[msgspec.Struct] | None] = {}
    for name in Settings.__struct_fields__:
        hint = hints[name]
        is_section = isinstance(hint, type) and issubclass(hint, msgspec.Struct)
        out[name] = hint if is_section else None
    return out


def _is_sequence(hint: Any) -> bool:
    while get_origin(hint) is Annotated:
        hint = get_args(hint)[0]
    return get_origin(hint) in (tuple, list)


def variable_names() -> dict[str, tuple[str, ...]]:
    """Every ``ORGBASE_*`` variable and the settings path it fills."""
    names: dict[str, tuple[str, ...]] = {}
    for section, struct in _sections().items():
        if struct is None:
            names[f"{PREFIX}{section.upper()}"] = (section,)
            continue
        for field in struct.__struct_fields__:
            names[f"{PREFIX}{section.upper()}_{field.upper()}"] = (section, field)
    return names


def _variable_for_path(path: str) -> str | None:
    """Map msgspec's error path (``$.database.api_url``) to its variable."""
    parts = [p for p in path.removeprefix("$").split(".") if p and not p.startswith("[")]
    if not parts:
        return None
    return PREFIX + "_".join(p.upper() for p in parts[:2])


# Defaults that depend on ORGBASE_ENV: a development convenience is off in production
# unless the operator turns it on.
_ENV_DEFAULTS: dict[str, dict[str, str]] = {
    "ORGBASE_AUTH_ALLOW_UNCONFIRMED_SIGN_IN": {"dev": "true", "test": "true"},
    "ORGBASE_OBSERVABILITY_HEALTH_DETAILS_PUBLIC": {"dev": "true", "test": "true"},
}


def _with_env_defaults(environ: Mapping[str, str]) -> dict[str, str]:
    env = environ.get(f"{PREFIX}ENV", "prod")
    filled = dict(environ)
    for variable, by_env in _ENV_DEFAULTS.items():
        if variable not in environ and env in by_env:
            filled[variable] = by_env[env]
    return filled


def settings_from_env(environ: Mapping[str, str]) -> Settings:
    """Build and validate the settings tree; raise SettingsError naming the bad variable."""
    environ = _with_env_defaults(environ)
    settings = _convert(environ)
    if f"{PREFIX}TENANCY_PUBLIC_URL" not in environ:
        settings = _public_url_from_http(settings)
    return settings


def _convert(environ: Mapping[str, str]) -> Settings:
    names = variable_names()
    raw: dict[str, Any] = {}
    hints_by_section = {
        section: get_type_hints(struct, include_extras=True)
        for section, struct in _sections().items()
        if struct is not None
    }
    for key, value in environ.items():
        if not key.startswith(PREFIX) or key.startswith(_IGNORED_PREFIXES):
            continue
        path = names.get(key)
        if path is None:
            close = difflib.get_close_matches(key, list(names), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise SettingsError(f"{key} is not a known setting{hint}", key)
        if len(path) == 1:
            raw[path[0]] = value
            continue
        section, field = path
        if _is_sequence(hints_by_section[section][field]):
            converted: Any = tuple(item.strip() for item in value.split(",") if item.strip())
        else:
            converted = value
        raw.setdefault(section, {})[field] = converted
    for section, struct in _sections().items():
        # An absent section is an empty one: msgspec then names its first missing field.
        if struct is not None and section not in raw:
            raw[section] = {}
    try:
        settings = msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        message = str(exc)
        match = re.search(r" - at `([^`]*)`$", message)
        error_path = match.group(1) if match else ""
        reason = message[: match.start()] if match else message
        missing = re.match(r"Object missing required field `(\w+)`", reason)
        named = re.match(r"([a-z_]+(?:\.[a-z_]+)?): (.*)", reason, re.DOTALL)
        if missing:
            error_path = f"{error_path}.{missing.group(1)}"
            reason = "is required"
        elif named:
            # Our own checks start with the field they are about.
            error_path = f"{error_path}.{named.group(1)}"
            reason = named.group(2)
        variable = _variable_for_path(error_path)
        if variable is None:
            raise SettingsError(f"invalid settings: {reason}") from None
        raise SettingsError(f"{variable}: {reason}", variable) from None
    return settings


def _public_url_from_http(settings: Settings) -> Settings:
    """The public URL of a gateway reached where it listens (no proxy in front)."""
    host = settings.http.host
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - a wildcard is not an address to link to
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    tenancy = msgspec.structs.replace(
        settings.tenancy, public_url=f"http://{host}:{settings.http.port}"
    )
    return msgspec.structs.replace(settings, tenancy=tenancy)


def parse_env_file(text: str) -> dict[str, str]:
    """Parse ``KEY=VALUE`` lines (``#`` comments, optional quotes) as written by the local stack."""
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, value = stripped.partition("=")
        key = key.strip().removeprefix("export ").strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise SettingsError(f"line {number} of the env file is not KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values
