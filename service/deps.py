"""Request dependencies: the service state and the authenticated caller.

Both are `async def` although they never await: FastAPI runs sync dependencies on a worker
thread, which would cost two thread hops per request for a dictionary lookup.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.auth import Principal
from service.errors import APIError
from service.runtime import ServiceState

# Declared for the OpenAPI spec (and Swagger's "Authorize" button); checking is KeyRing's job.
_bearer = HTTPBearer(auto_error=False, description="An API key from the server's config, as with OpenAI.")


async def get_state(request: Request) -> ServiceState:
    state: ServiceState | None = getattr(request.app.state, "fluxwarden", None)
    if state is None or not state.loaded:
        raise APIError(503, "the server is still loading its models", code="not_ready")
    return state


StateDep = Annotated[ServiceState, Depends(get_state)]


async def get_principal(
    request: Request,
    state: StateDep,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)] = None,
) -> Principal:
    return state.keyring.authenticate(request.headers.get("authorization"))


PrincipalDep = Annotated[Principal, Depends(get_principal)]
