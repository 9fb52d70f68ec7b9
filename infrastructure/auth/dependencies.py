"""FastAPI dependencies: who is calling, and may they touch this session.

Where the token comes from:

* every ordinary endpoint: ``Authorization: Bearer <token>`` only. Cookies are deliberately
  *not* accepted there: a cookie rides along with any request the browser makes, so accepting
  it on a POST would invite cross-site request forgery;
* stream endpoints (``GET .../events``): ``Authorization: Bearer`` (curl, back ends), else
  ``?token=`` (``EventSource`` cannot send headers), else an HttpOnly, SameSite cookie set by
  the web page (:func:`set_auth_cookie`). A stream is a read-only GET, so the cookie is safe
  there.

Errors: no or a bad token is 401 with ``WWW-Authenticate: Bearer``; a good token for something
else is 403. The checks compare the token's scope with the *requested name* before anything is
looked up, and every 403 carries the same text, so no answer tells whether a session exists.

Settings come from ``app.state.settings`` (the app factory puts its Settings there; a test
app does the same), else from :func:`~infrastructure.config.get_settings`. Not through
``app.dependency_overrides``: a non-empty override table makes FastAPI re-analyse every
dependency on every request, which the profile of the stream endpoints showed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Final

from fastapi import Depends, HTTPException, Path, Request, Response, status
from fastapi.security import APIKeyCookie, APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from infrastructure.auth.tokens import (
    AGENT_ROLE,
    CUSTOMER_ROLE,
    SUPERVISOR_SCOPE,
    InvalidToken,
    Principal,
    Role,
    token_ttl,
    verify_token,
)
from infrastructure.config import Settings, get_settings
from infrastructure.events import NAME_PATTERN


def settings_of(request: Request) -> Settings:
    try:  # by key: see limits.state_value
        settings = request.app.state["settings"]
    except KeyError:
        return get_settings()
    return settings if isinstance(settings, Settings) else get_settings()


async def app_settings(request: Request) -> Settings:
    return settings_of(request)


SettingsDep = Annotated[Settings, Depends(app_settings)]

#: The cookie names differ per role because cookies ignore ports: the chatbot page
#: (customer, :8000) and the workbench page (agent, :8002) on one host would otherwise
#: overwrite each other's cookie.
CUSTOMER_COOKIE_NAME: Final = "cs_token"
AGENT_COOKIE_NAME: Final = "cs_agent_token"
TOKEN_QUERY_PARAM: Final = "token"

UNAUTHORIZED_DETAIL: Final = "missing or invalid access token"
FORBIDDEN_DETAIL: Final = "this token does not grant access to this resource"

# The security scheme objects put the three token locations into the OpenAPI document (the
# "Authorize" button of /docs, and what schemathesis knows about). ``auto_error=False``: the
# answers are ours (401 with WWW-Authenticate), not FastAPI's defaults.
_bearer = HTTPBearer(auto_error=False, description="An access token (any role).")
# Distinct scheme names: two APIKeyCookie schemes would otherwise share one OpenAPI entry.
_query_token = APIKeyQuery(
    name=TOKEN_QUERY_PARAM,
    scheme_name="QueryToken",
    auto_error=False,
    description="Stream endpoints only: the access token, for EventSource (no headers).",
)
_agent_cookie = APIKeyCookie(
    name=AGENT_COOKIE_NAME,
    scheme_name="AgentCookie",
    auto_error=False,
    description="Stream endpoints only: set by the workbench page.",
)
_customer_cookie = APIKeyCookie(
    name=CUSTOMER_COOKIE_NAME,
    scheme_name="CustomerCookie",
    auto_error=False,
    description="Stream endpoints only: set by the chatbot page.",
)


def unauthorized(detail: str = UNAUTHORIZED_DETAIL) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"}
    )


def forbidden() -> HTTPException:
    return HTTPException(status.HTTP_403_FORBIDDEN, detail=FORBIDDEN_DETAIL)


def verify_principal(settings: Settings, token: str) -> Principal:
    try:
        return verify_token(settings, token)
    except InvalidToken:
        # One answer for expired, forged and malformed: the caller needs a new token either
        # way, and the details would only help someone probing.
        raise unauthorized() from None


async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller, from ``Authorization: Bearer`` (ordinary endpoints)."""
    if credentials is None:
        raise unauthorized()
    # Settings read here rather than through a nested dependency: every level of the
    # dependency tree costs each request (FastAPI's solve_dependencies in the profile).
    return verify_principal(settings_of(request), credentials.credentials)


async def get_stream_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    query_token: Annotated[str | None, Depends(_query_token)],
    agent_cookie: Annotated[str | None, Depends(_agent_cookie)],
    customer_cookie: Annotated[str | None, Depends(_customer_cookie)],
) -> Principal:
    """The caller of a stream endpoint: Bearer, else ``?token=``, else a cookie."""
    return stream_principal(
        settings_of(request),
        credentials.credentials if credentials is not None else None,
        query_token,
        (agent_cookie, customer_cookie),
    )


def stream_principal(
    settings: Settings, bearer: str | None, query_token: str | None, cookies: Iterable[str | None]
) -> Principal:
    """Who opens a stream (the dependency above, and the streams' fast path).

    A token the client *chose* to send (header, query) decides, valid or not. Cookies are
    ambient -- a browser used for both pages holds both -- so the first *valid* one wins, the
    agent's first: an agent token may read every session, so preferring it never turns an
    allowed request into a 403.
    """
    if bearer is not None:
        return verify_principal(settings, bearer)
    if query_token:
        return verify_principal(settings, query_token)
    for cookie in cookies:
        if not cookie:
            continue
        try:
            return verify_token(settings, cookie)
        except InvalidToken:
            continue
    raise unauthorized()


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, as ``HTTPBearer`` reads it
    (any other scheme, or none, is no token)."""
    scheme, token = get_authorization_scheme_param(authorization)
    if not (authorization and scheme and token) or scheme.lower() != "bearer":
        return None
    return token


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
StreamPrincipal = Annotated[Principal, Depends(get_stream_principal)]


# --- Scope checks: plain functions, for routes whose names are in the body -----------------


def require_role(principal: Principal, *roles: Role) -> Principal:
    if principal.role not in roles:
        raise forbidden()
    return principal


def require_session_access(principal: Principal, session_name: str) -> Principal:
    """A customer reaches only its own session; agents and services reach any. Call it before
    looking the session up, so that the answer never depends on whether it exists."""
    if principal.role is CUSTOMER_ROLE and principal.subject != session_name:
        raise forbidden()
    return principal


def require_agent_identity(principal: Principal, agent_id: str) -> Principal:
    """Only the agent itself acts as ``agent_id`` (takeover, release, its messages, its
    stream)."""
    if principal.role is not AGENT_ROLE or principal.subject != agent_id:
        raise forbidden()
    return principal


SUPERVISOR_DETAIL: Final = (
    "the supervisor role is needed: an operator lists supervisors' agent ids in SUPERVISORS"
)


def require_supervisor(settings: Settings, principal: Principal) -> Principal:
    """An agent whose token carries the ``supervisor`` scope and who is still listed in
    ``SUPERVISORS`` (a demoted supervisor's token stops working at the next restart, not at
    its expiry). 403 with a message saying so otherwise."""
    if (
        principal.role is not AGENT_ROLE
        or SUPERVISOR_SCOPE not in principal.scopes
        or principal.subject not in settings.SUPERVISORS
    ):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=SUPERVISOR_DETAIL)
    return principal


# --- Role dependencies ---------------------------------------------------------------------


async def get_customer(principal: CurrentPrincipal) -> Principal:
    return require_role(principal, Role.CUSTOMER)


async def get_agent(principal: CurrentPrincipal) -> Principal:
    return require_role(principal, Role.AGENT)


async def get_service_caller(principal: CurrentPrincipal) -> Principal:
    return require_role(principal, Role.SERVICE)


async def get_stream_agent(principal: StreamPrincipal) -> Principal:
    return require_role(principal, Role.AGENT)


async def get_supervisor(request: Request, principal: CurrentPrincipal) -> Principal:
    return require_supervisor(settings_of(request), principal)


async def get_stream_supervisor(request: Request, principal: StreamPrincipal) -> Principal:
    return require_supervisor(settings_of(request), principal)


CurrentCustomer = Annotated[Principal, Depends(get_customer)]
CurrentAgent = Annotated[Principal, Depends(get_agent)]
ServiceCaller = Annotated[Principal, Depends(get_service_caller)]
StreamAgent = Annotated[Principal, Depends(get_stream_agent)]
#: An agent with the supervisor role (Bearer) / opening a stream.
CurrentSupervisor = Annotated[Principal, Depends(get_supervisor)]
StreamSupervisor = Annotated[Principal, Depends(get_stream_supervisor)]


# --- Path-bound dependencies: the name comes from ``{session_name}`` / ``{agent_id}`` -------
# The pattern is declared here too so that a route cannot forget it (a bad name is a 422).

SessionNamePath = Annotated[str, Path(pattern=NAME_PATTERN)]
AgentIdPath = Annotated[str, Path(pattern=NAME_PATTERN)]


async def get_session_accessor(
    session_name: SessionNamePath, principal: CurrentPrincipal
) -> Principal:
    return require_session_access(principal, session_name)


async def get_session_stream_accessor(
    session_name: SessionNamePath, principal: StreamPrincipal
) -> Principal:
    return require_session_access(principal, session_name)


async def get_agent_self(agent_id: AgentIdPath, principal: CurrentPrincipal) -> Principal:
    return require_agent_identity(principal, agent_id)


async def get_agent_stream_self(agent_id: AgentIdPath, principal: StreamPrincipal) -> Principal:
    return require_agent_identity(principal, agent_id)


#: ``/api/sessions/{session_name}/...`` with a Bearer token allowed on that session.
SessionAccess = Annotated[Principal, Depends(get_session_accessor)]
#: ``/api/sessions/{session_name}/events``: the same, with the stream token sources.
SessionStreamAccess = Annotated[Principal, Depends(get_session_stream_accessor)]
#: ``/api/agents/{agent_id}/...``: the agent itself, Bearer.
AgentSelf = Annotated[Principal, Depends(get_agent_self)]
#: ``/api/agents/{agent_id}/events``: the agent itself, stream token sources.
AgentStreamSelf = Annotated[Principal, Depends(get_agent_stream_self)]


# --- Cookies for the web pages ---------------------------------------------------------------


def auth_cookie_name(role: Role) -> str:
    if role is Role.CUSTOMER:
        return CUSTOMER_COOKIE_NAME
    if role is Role.AGENT:
        return AGENT_COOKIE_NAME
    raise ValueError("service tokens are never put in cookies")


def set_auth_cookie(
    response: Response, settings: Settings, role: Role, token: str, max_age: int | None = None
) -> None:
    """Give the page's ``EventSource`` its token without exposing it to scripts (HttpOnly)
    or to other sites' requests (SameSite=Strict)."""
    response.set_cookie(
        auth_cookie_name(role),
        token,
        max_age=token_ttl(settings, role) if max_age is None else max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=settings.AUTH_COOKIE_SECURE,
    )


def clear_auth_cookie(response: Response, settings: Settings, role: Role) -> None:
    response.delete_cookie(
        auth_cookie_name(role),
        path="/",
        httponly=True,
        samesite="strict",
        secure=settings.AUTH_COOKIE_SECURE,
    )
