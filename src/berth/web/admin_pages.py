"""The site owners' page ``/admin``: users, prebuild pools, settings (DESIGN §11, §14).

Only site owners see it: anyone else gets the 404 page, for the page and for each of
its forms, as for any object they may not see. Each form posts to its own path with the
session's CSRF token and calls the service the API calls (``accounts``, ``web_auth``,
``prebuild_pool``, ``siteconfig``), so the page can do what the API can, no more.

A form that worked redirects (303) back to ``/admin`` with ``?done=`` naming what
happened; the notice shown for it is one of :data:`NOTICES`, fixed texts, so a link
cannot put words of its own on the page. A form the service refused is the page again
with status 400: the service's validation messages next to their fields and what was
typed kept (never a password).
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from berth.domain.enums import Role, UserStatus
from berth.errors import Conflict, InvalidInput, NotFound
from berth.services import accounts, prebuild_pool, refs, siteconfig, templates, web_auth
from berth.web.render import page
from berth.web.session import (
    CSRF_FIELD,
    Fields,
    PageSession,
    SessionDep,
    check_csrf,
    field_value,
    read_fields,
)

router = APIRouter(include_in_schema=False)

ROLES = [Role.OWNER.value, Role.TEMPLATE_ADMIN.value]
"""The site roles the forms offer (every user is a member)."""

NOTICES = {
    "created": "User {user} created. They can log in with the password you gave.",
    "suspended": "User {user} suspended: their API tokens and web sessions no longer work.",
    "activated": "User {user} is active again.",
    "roles": "The roles of {user} are changed.",
    "password": "The password of {user} is set; their web sessions have ended.",
    "paused": "Prebuilds are paused: no prebuild is created or deleted until resumed.",
    "resumed": "Prebuilds are reconciled again.",
    "setting": "The setting is saved.",
}
"""What ``/admin?done=KEY`` says; ``{user}`` only when it names a user on the page."""


@dataclass(frozen=True, slots=True)
class Refused:
    """A form the service refused: which one, why, and what was typed."""

    form: str
    """``create``, ``roles:<username>``, ``password:<username>``, ``status:<username>``
    or ``setting:<key>``."""
    message: str
    errors: dict[str, str] = field(default_factory=lambda: dict[str, str]())
    """Field name → the service's messages for it; what names no field is in ``message``."""
    values: dict[str, list[str]] = field(default_factory=lambda: dict[str, list[str]]())


def _site_owner(session: PageSession) -> None:
    if not session.is_site_owner:
        raise NotFound("page not found")  # the 404 page, as for anything not theirs


async def _form(request: Request, session: PageSession) -> Fields:
    """The posted form of a site owner, its CSRF token checked; each field's values."""
    _site_owner(session)
    fields = await read_fields(request)
    check_csrf(session.csrf, {CSRF_FIELD: field_value(fields, CSRF_FIELD)})
    return fields


def _refused(
    form: str,
    exc: InvalidInput | Conflict,
    known: tuple[str, ...] = (),
    values: dict[str, list[str]] | None = None,
    renamed: dict[str, str] | None = None,
) -> Refused:
    """The refusal of ``form``: each validation next to its field if the form has it
    (``known``; ``renamed`` maps the service's field names to the form's), the others
    after the service's message."""
    errors: dict[str, str] = {}
    rest: list[str] = []
    for v in exc.validations:
        name = (renamed or {}).get(v.field, v.field)
        if name not in known:
            rest.append(v.detail)
        else:
            errors[name] = f"{errors[name]}; {v.detail}" if name in errors else v.detail
    message = f"{exc.message} ({'; '.join(rest)})" if rest else exc.message
    return Refused(form, message, errors, values or {})


def _done(key: str, user: str = "", section: str = "users") -> RedirectResponse:
    query = {"done": key} | ({"user": user} if user else {})
    return RedirectResponse(f"/admin?{urllib.parse.urlencode(query)}#{section}", status_code=303)


async def _admin_page(
    session: PageSession, *, done: str = "", user: str = "", refused: Refused | None = None
) -> Response:
    ctx = session.ctx
    users = [u for u, _ in await accounts.list_users(ctx)]
    notice = NOTICES.get(done, "")
    if "{user}" in notice:
        notice = notice.format(user=user) if any(u.username == user for u in users) else ""
    allowlist = siteconfig.parse_allowlist(
        await siteconfig.get_config(ctx, siteconfig.CHAT_TEMPLATE_ALLOWLIST)
    )
    listed = sorted(
        (t for t in await templates.list_templates(ctx, None) if not t.deleted),
        key=lambda t: (t.name, str(t.organization_id)),
    )
    return page(
        "admin.html.j2",
        400 if refused else 200,
        title="Admin",
        session=session,
        users=users,
        roles=ROLES,
        pool=await prebuild_pool.pool_status(ctx),
        ttl=await siteconfig.get_config(ctx, siteconfig.CHAT_WORKSPACE_TTL),
        templates=listed,
        allowlist={str(i) for i in allowlist},
        notice=notice,
        refused=refused,
        csrf_field=CSRF_FIELD,
    )


@router.get("/admin")
async def admin(session: SessionDep, done: str = "", user: str = "") -> Response:
    _site_owner(session)
    return await _admin_page(session, done=done, user=user)


# --- users ------------------------------------------------------------------------------


@router.post("/admin/users")
async def create_user(request: Request, session: SessionDep) -> Response:
    form = await _form(request, session)
    username, roles = field_value(form, "username"), form.get("roles", [])
    try:
        user, _ = await accounts.create_user(
            session.ctx, username=username, roles=roles, password=field_value(form, "password")
        )
    except (InvalidInput, Conflict) as exc:
        values = {"username": [username], "roles": roles}
        refused = _refused("create", exc, ("username", "password", "roles"), values)
        return await _admin_page(session, refused=refused)
    return _done("created", user.username)


@router.post("/admin/users/{username}/suspend")
async def suspend_user(username: str, request: Request, session: SessionDep) -> Response:
    return await _set_status(username, request, session, UserStatus.SUSPENDED)


@router.post("/admin/users/{username}/activate")
async def activate_user(username: str, request: Request, session: SessionDep) -> Response:
    return await _set_status(username, request, session, UserStatus.ACTIVE)


async def _set_status(
    username: str, request: Request, session: PageSession, status: UserStatus
) -> Response:
    await _form(request, session)
    user = await refs.user(session.ctx, username)
    try:
        await accounts.set_user_status(session.ctx, user, status)
    except (InvalidInput, Conflict) as exc:
        return await _admin_page(session, refused=_refused(f"status:{user.username}", exc))
    return _done("suspended" if status is UserStatus.SUSPENDED else "activated", user.username)


@router.post("/admin/users/{username}/roles")
async def set_roles(username: str, request: Request, session: SessionDep) -> Response:
    form = await _form(request, session)
    user = await refs.user(session.ctx, username)
    roles = form.get("roles", [])
    try:
        await accounts.set_user_roles(session.ctx, user, roles)
    except (InvalidInput, Conflict) as exc:
        refused = _refused(f"roles:{user.username}", exc, ("roles",), {"roles": roles})
        return await _admin_page(session, refused=refused)
    return _done("roles", user.username)


@router.post("/admin/users/{username}/password")
async def set_password(username: str, request: Request, session: SessionDep) -> Response:
    form = await _form(request, session)
    user = await refs.user(session.ctx, username)
    try:
        await web_auth.set_password(session.ctx, user, field_value(form, "password"))
    except (InvalidInput, Conflict) as exc:
        refused = _refused(
            f"password:{user.username}", exc, ("password",), renamed={"user": "password"}
        )
        return await _admin_page(session, refused=refused)
    return _done("password", user.username)


# --- prebuilds and settings ---------------------------------------------------------------


@router.post("/admin/prebuilds/{action}")
async def pause_or_resume_prebuilds(action: str, request: Request, session: SessionDep) -> Response:
    await _form(request, session)
    if action not in ("pause", "resume"):
        raise NotFound("page not found")
    await prebuild_pool.set_paused(session.ctx, action == "pause")
    return _done("paused" if action == "pause" else "resumed", section="prebuilds")


@router.post("/admin/settings/{key}")
async def set_setting(key: str, request: Request, session: SessionDep) -> Response:
    """Save one setting; its form's field is named like the setting (``chat-workspace-ttl``,
    ``chat-template-allowlist``: one value per template chosen, its id)."""
    form = await _form(request, session)
    if key not in siteconfig.KEYS:
        raise NotFound("page not found")
    given = form.get(key, [])
    value = ",".join(given) if key == siteconfig.CHAT_TEMPLATE_ALLOWLIST else field_value(form, key)
    try:
        await siteconfig.set_config(session.ctx, key, value)
    except (InvalidInput, Conflict) as exc:
        refused = _refused(f"setting:{key}", exc, (key,), {key: given}, renamed={"value": key})
        return await _admin_page(session, refused=refused)
    return _done("setting", section="settings")
