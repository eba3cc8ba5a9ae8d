"""Users and their API tokens."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from berth.api.deps import CtxDep, UserDep
from berth.api.schemas import (
    CreateTokenRequest,
    CreateUserRequest,
    NewTokenOut,
    SetPasswordRequest,
    SetRolesRequest,
    TokenOut,
    UserOut,
)
from berth.domain.enums import UserStatus
from berth.services import accounts, web_auth

router = APIRouter(tags=["users"])


@router.get("/users")
async def list_users(ctx: CtxDep) -> list[UserOut]:
    return [UserOut.of(u, orgs) for u, orgs in await accounts.list_users(ctx)]


@router.post("/users", status_code=status.HTTP_201_CREATED)
async def create_user(body: CreateUserRequest, ctx: CtxDep) -> UserOut:
    user, orgs = await accounts.create_user(
        ctx,
        username=body.username,
        email=body.email,
        name=body.name,
        roles=body.roles,
        organization=body.organization,
        password=body.password,
    )
    return UserOut.of(user, orgs)


@router.put("/users/{user}/password", status_code=status.HTTP_204_NO_CONTENT)
async def set_password(user: UserDep, body: SetPasswordRequest, ctx: CtxDep) -> Response:
    """Set the user's web UI password (a site owner: anyone's; a user: their own). Their
    web sessions end; API tokens are not affected."""
    await web_auth.set_password(ctx, user, body.password)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/users/{user}/status/suspend")
async def suspend_user(user: UserDep, ctx: CtxDep) -> UserOut:
    """Suspend the user (site owners): their API tokens stop working and their web
    sessions end; their workspaces are left as they are."""
    updated = await accounts.set_user_status(ctx, user, UserStatus.SUSPENDED)
    return UserOut.of(updated, await accounts.organizations_of(ctx, user.id))


@router.put("/users/{user}/status/activate")
async def activate_user(user: UserDep, ctx: CtxDep) -> UserOut:
    """Make a suspended user active again (site owners); they log in anew."""
    updated = await accounts.set_user_status(ctx, user, UserStatus.ACTIVE)
    return UserOut.of(updated, await accounts.organizations_of(ctx, user.id))


@router.put("/users/{user}/roles")
async def set_roles(user: UserDep, body: SetRolesRequest, ctx: CtxDep) -> UserOut:
    """Replace the user's site roles (site owners)."""
    updated = await accounts.set_user_roles(ctx, user, body.roles)
    return UserOut.of(updated, await accounts.organizations_of(ctx, user.id))


@router.get("/users/{user}")
async def get_user(user: UserDep, ctx: CtxDep) -> UserOut:
    return UserOut.of(user, await accounts.organizations_of(ctx, user.id))


@router.get("/users/{user}/tokens", tags=["tokens"])
async def list_tokens(user: UserDep, ctx: CtxDep) -> list[TokenOut]:
    return [TokenOut.of(k) for k in await accounts.list_tokens(ctx, user.id)]


@router.post("/users/{user}/tokens", tags=["tokens"], status_code=status.HTTP_201_CREATED)
async def create_token(user: UserDep, body: CreateTokenRequest, ctx: CtxDep) -> NewTokenOut:
    new = await accounts.create_token(ctx, user.id, body.name, body.lifetime)
    return NewTokenOut(**TokenOut.of(new.key).model_dump(), token=new.token)


@router.delete(
    "/users/{user}/tokens/{token}", tags=["tokens"], status_code=status.HTTP_204_NO_CONTENT
)
async def delete_token(user: UserDep, token: str, ctx: CtxDep) -> Response:
    await accounts.delete_token(ctx, user.id, token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
