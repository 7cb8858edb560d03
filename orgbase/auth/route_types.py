"""What the auth area's route handlers ask for: dependencies by name (the parameter's name
is the key) and the query parameters several routes share."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from orgbase.auth.accounts import AccountService
from orgbase.auth.gotrue import GoTrue
from orgbase.auth.grants import TokenGrants
from orgbase.auth.key_admin import ApiKeyAdmin
from orgbase.auth.mfa import Factors
from orgbase.auth.oidc import OidcSignIn
from orgbase.auth.signup import SignUps as SignUpService
from orgbase.auth.user_sessions import UserSessions
from orgbase.core.context import OrgContext, Principal, RequestMeta

Accounts = NamedDependency[AccountService]
SignUps = NamedDependency[SignUpService]
Grants = NamedDependency[TokenGrants]
MySessions = NamedDependency[UserSessions]
KeyAdmin = NamedDependency[ApiKeyAdmin]
Auth = NamedDependency[GoTrue]
Mfa = NamedDependency[Factors]
Oidc = NamedDependency[OidcSignIn]
Caller = NamedDependency[Principal]
Meta = NamedDependency[RequestMeta]
Ctx = NamedDependency[OrgContext]
AnyRequest = Request[Any, Any, Any]
RedirectTo = Annotated[str | None, QueryParameter(name="redirect_to", max_length=2000)]
