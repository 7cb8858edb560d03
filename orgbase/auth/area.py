"""Builds the auth area's objects from settings and the shared clients."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import structlog

from orgbase.auth.accounts import AccountService
from orgbase.auth.apikeys import ApiKeyStore
from orgbase.auth.attempts import SECOND_FACTOR, SIGN_IN, Guarded, GuessLimit
from orgbase.auth.browser_guard import BrowserOrigins
from orgbase.auth.codes import CodeBook
from orgbase.auth.email_change import EmailChanges
from orgbase.auth.gotrue import GoTrue
from orgbase.auth.gotrue_admin import AdminUsers
from orgbase.auth.grants import TokenGrants
from orgbase.auth.key_admin import ApiKeyAdmin
from orgbase.auth.keys import KeySet
from orgbase.auth.mfa import Factors
from orgbase.auth.oidc import OidcSignIn
from orgbase.auth.oidc_exchange import ProviderClient
from orgbase.auth.oidc_state import FlowStates
from orgbase.auth.oidc_tokens import load_providers
from orgbase.auth.passwords import Passwords
from orgbase.auth.principal import Authenticator
from orgbase.auth.proofs import Proofs
from orgbase.auth.ratelimit import Lockout, RateLimiter
from orgbase.auth.sessions import SessionStore
from orgbase.auth.signup import SignUps
from orgbase.auth.tokens import TokenService
from orgbase.auth.user_sessions import UserSessions
from orgbase.core.destinations import DestinationPolicy
from orgbase.core.events import EventBus
from orgbase.core.mail import Outbox
from orgbase.core.orgs import LiveOrgs, Memberships, OrgSso
from orgbase.core.resources import Resources
from orgbase.core.settings import Settings
from orgbase.core.tasks import TaskSet

log = structlog.get_logger("orgbase.auth")


@dataclass
class AuthArea:
    tokens: TokenService
    passwords: Passwords
    sessions: SessionStore
    api_keys: ApiKeyStore
    authenticator: Authenticator
    limiter: RateLimiter
    accounts: AccountService
    grants: TokenGrants
    user_sessions: UserSessions
    key_admin: ApiKeyAdmin
    gotrue: GoTrue
    factors: Factors
    signups: SignUps
    oidc: OidcSignIn
    browser_origins: BrowserOrigins
    admin_users: AdminUsers
    """GoTrue's admin API (``/auth/v1/admin``), for the platform's and org admins' keys."""

    async def warm_session_cache(self) -> None:
        try:
            warmed = await self.sessions.warm()
        except Exception as exc:  # a cold cache is slower, not wrong
            log.warning("session cache warming failed", error=repr(exc))
        else:
            log.info("session cache warmed", sessions=warmed)


def load_keys(settings: Settings) -> KeySet:
    auth = settings.auth
    if auth.signing_keys_file:
        return KeySet.from_file(Path(auth.signing_keys_file), auth.jwt_algorithm)
    # Only dev mode gets here (settings refuse a missing key file otherwise).
    log.warning("no signing keys configured: using a key that lives as long as this process")
    return KeySet.ephemeral(auth.jwt_algorithm)


def provider_client(settings: Settings) -> ProviderClient:
    """The client of OpenID providers: built before the areas, since the tenancy area asks
    it about an org's provider before saving it."""
    return ProviderClient(
        callback_url=settings.tenancy.public_url.rstrip("/") + "/auth/v1/callback",
        # Local development runs its providers on loopback; production reaches none.
        org_destinations=DestinationPolicy(
            allowed_hosts=frozenset(), allow_loopback=settings.is_dev
        ),
    )


def _oidc(
    resources: Resources,
    grants: TokenGrants,
    sessions: SessionStore,
    sso: OrgSso,
    *,
    client: ProviderClient,
) -> OidcSignIn:
    settings = resources.settings
    return OidcSignIn(
        db=resources.db,
        grants=grants,
        sessions=sessions,
        public_url=settings.tenancy.public_url,
        providers=load_providers(settings.auth.oidc_providers_file),
        states=FlowStates(resources.redis),
        client=client,
        sso=sso,
    )


def _guess_limit(
    resources: Resources, guarded: Guarded, failures: int, window: int, lock: int
) -> GuessLimit:
    lockout = Lockout(
        resources.redis, max_failures=failures, window_seconds=window, lock_seconds=lock
    )
    return GuessLimit(resources.db, lockout, guarded)


def _factors(resources: Resources, gotrue: GoTrue) -> Factors:
    auth = resources.settings.auth
    seconds = auth.mfa_lockout_seconds
    return Factors(
        gotrue,
        factor_guesses=_guess_limit(
            resources, SECOND_FACTOR, auth.mfa_lockout_failures, seconds, seconds
        ),
        user_guesses=_guess_limit(
            resources, SECOND_FACTOR, auth.mfa_user_lockout_failures, seconds, seconds
        ),
    )


def _gotrue(
    resources: Resources,
    grants: TokenGrants,
    user_sessions: UserSessions,
    outbox: Outbox,
    *,
    tasks: TaskSet,
    api_keys: ApiKeyStore,
) -> GoTrue:
    """Accounts, sign-up, mailed codes and what they prove, behind GoTrue's API."""
    settings = resources.settings
    sessions, passwords, limiter = grants.sessions, grants.passwords, grants.limiter
    codes = CodeBook(settings.auth, settings.tenancy.public_url, outbox)
    email_changes = EmailChanges(codes)
    accounts = AccountService(
        resources.db,
        settings.auth,
        passwords,
        sessions,
        limiter,
        grants.attempts,
        email_changes,
        grants.memberships,
        api_keys.creator_changed,  # the keys of a deleted account end with it
    )
    return GoTrue(
        db=resources.db,
        settings=settings.auth,
        public_url=settings.tenancy.public_url,
        accounts=accounts,
        grants=grants,
        user_sessions=user_sessions,
        passwords=passwords,
        sessions=sessions,
        limiter=limiter,
        codes=codes,
        signups=SignUps(resources.db, settings.auth, passwords, limiter, codes, grants.opener),
        proofs=Proofs(resources.db, sessions, grants, email_changes),
        email_changes=email_changes,
        tasks=tasks,
    )


def build_auth(
    resources: Resources,
    *,
    memberships: Memberships,
    sso: OrgSso,
    live_orgs: LiveOrgs,
    outbox: Outbox,
    events: EventBus,
    tasks: TaskSet,
    oidc_client: ProviderClient,
) -> AuthArea:
    """``memberships`` to ``outbox``: the tenancy area's answers (``core.orgs``) and its
    outbox; ``events`` and ``tasks``: the gateway's bus (revocations are told on it) and
    task set; ``oidc_client``: made by ``provider_client`` (the tenancy area has it too)."""
    settings = resources.settings
    auth = settings.auth
    tokens = TokenService(load_keys(settings), auth, auth.token_cache_size)
    passwords = Passwords(auth)
    sessions = SessionStore(resources.db, resources.redis, auth, events, tasks)
    api_keys = ApiKeyStore(resources.db, resources.redis, events)
    limiter = RateLimiter(resources.redis)
    attempts = _guess_limit(
        resources,
        SIGN_IN,
        auth.lockout_failures,
        auth.lockout_window_seconds,
        auth.lockout_seconds,
    )
    grants = TokenGrants(
        resources.db, auth, tokens, passwords, sessions, limiter, attempts, memberships
    )
    resources.redis.on_recovery(sessions.resync)
    resources.redis.on_recovery(api_keys.resync)
    user_sessions = UserSessions(resources.db, sessions)
    gotrue = _gotrue(resources, grants, user_sessions, outbox, tasks=tasks, api_keys=api_keys)
    oidc = _oidc(resources, grants, sessions, sso, client=oidc_client)
    grants.sso_refresh = oidc.refresh_at_provider
    return AuthArea(
        tokens=tokens,
        passwords=passwords,
        sessions=sessions,
        api_keys=api_keys,
        authenticator=Authenticator(tokens, sessions, api_keys),
        limiter=limiter,
        accounts=gotrue.accounts,
        grants=grants,
        user_sessions=user_sessions,
        key_admin=ApiKeyAdmin(resources.db, api_keys, live_orgs),
        gotrue=gotrue,
        factors=_factors(resources, gotrue),
        oidc=oidc,
        signups=gotrue.signups,
        browser_origins=BrowserOrigins(settings.tenancy.public_url, settings.http.cors_origins),
        admin_users=AdminUsers(
            resources.db, auth, passwords, sessions, gotrue.codes, gotrue.accounts
        ),
    )
