"""Request dependencies: the runtime, the authenticated service context, and refs.

Path parameters that name a workspace, a user, a template or a chat are resolved here,
once, into records (the services take ids and records); a ref the caller may not see is the
same 404 as a missing one.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from berth.errors import Unauthenticated
from berth.records import Chat, Template, User, Workspace
from berth.services import Ctx, refs
from berth.services.accounts import authenticate
from berth.services.runtime import Runtime

__all__ = [
    "ChatDep",
    "CtxDep",
    "Runtime",
    "RuntimeDep",
    "TemplateDep",
    "UserDep",
    "WorkspaceDep",
    "get_runtime",
]


def get_runtime(connection: HTTPConnection) -> Runtime:
    runtime: Runtime = connection.app.state.runtime
    return runtime


_bearer = HTTPBearer(auto_error=False)


async def get_ctx(
    runtime: Annotated[Runtime, Depends(get_runtime)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Ctx:
    """The caller's context; 401 with the error envelope when the token is missing or bad."""
    if credentials is None or not credentials.credentials:
        raise Unauthenticated(
            "Authentication required.", detail="Send an API token as 'Authorization: Bearer …'."
        )
    return runtime.ctx(await authenticate(runtime.db, credentials.credentials))


CtxDep = Annotated[Ctx, Depends(get_ctx)]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def _workspace(workspace: str, ctx: CtxDep) -> Workspace:
    return await refs.workspace(ctx, workspace)


async def _chat(chat: str, ctx: CtxDep) -> Chat:
    return await refs.chat(ctx, chat)


async def _user(user: str, ctx: CtxDep) -> User:
    return await refs.user(ctx, user)


async def _template(
    template: str, ctx: CtxDep, organization: Annotated[str | None, Query()] = None
) -> Template:
    return await refs.template(ctx, template, organization)


WorkspaceDep = Annotated[Workspace, Depends(_workspace)]
"""The ``{workspace}`` path parameter: an id, ``name`` (the caller's) or ``owner/name``."""
UserDep = Annotated[User, Depends(_user)]
"""The ``{user}`` path parameter: ``me``, an id or a username."""
ChatDep = Annotated[Chat, Depends(_chat)]
"""The ``{chat}`` path parameter: a chat id. Resolved before a response starts, so a
stream (``/chats/{chat}/watch``) of a chat that is not there is a 404, not an empty 200."""
TemplateDep = Annotated[Template, Depends(_template)]
"""The ``{template}`` path parameter (an id or a name) and the ``organization`` query."""
