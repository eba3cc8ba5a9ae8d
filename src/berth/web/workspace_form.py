"""``/workspaces/new?template=NAME``: the new-workspace form (DESIGN §11: an input
``name``, a field ``param.<name>`` per parameter, a ``preset`` select).

Each parameter of the template's active version is drawn by its ``form_type``; what a
field posts becomes the string value the services take (:mod:`berth.domain.parameters`:
``true``/``false`` for a bool, a JSON array of strings for a ``list(string)``). A
checkbox or switch posts ``true`` when on and nothing when off; a multi-select one
value per chosen option; a tag-select is a text input of comma-separated tags.

The create runs through ``services.workspaces.create_workspace`` as the logged-in user.
When it refuses a name or a value, the form comes back (400) with each of the service's
validation messages next to its field and everything typed kept.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from berth.api.errors import status_of
from berth.domain.enums import FormType, ParameterType
from berth.domain.parameters import parse_list_value
from berth.errors import BerthError, NotFound
from berth.records import TemplateVersionParameter
from berth.services import refs, templates, workspaces
from berth.services.templates import TemplateDetail
from berth.web.render import page
from berth.web.session import (
    CSRF_FIELD,
    PageSession,
    SessionDep,
    check_csrf,
    field_value,
    read_fields,
)
from berth.web.workspace_pages import workspace_path

router = APIRouter(include_in_schema=False)

PARAM_PREFIX = "param."
_BOOL_FORMS = (FormType.CHECKBOX, FormType.SWITCH)


def _form_of(param: TemplateVersionParameter) -> FormType:
    """The parameter's form type (the template loader allows only known ones)."""
    known = {f.value for f in FormType}
    return FormType(param.form_type) if param.form_type in known else FormType.INPUT


@dataclass
class ParamField:
    """One parameter's field: what it shows (or what was typed) and its problems."""

    param: TemplateVersionParameter
    text: str = ""
    """The text of an input, textarea, dropdown, radio or tag-select."""
    chosen: list[str] = field(default_factory=list[str])
    """The options chosen in a multi-select."""
    checked: bool = False
    """A checkbox's or switch's state."""
    errors: list[str] = field(default_factory=list[str])

    @property
    def name(self) -> str:
        return PARAM_PREFIX + self.param.name

    @property
    def form(self) -> str:
        return _form_of(self.param).value

    @property
    def numeric(self) -> bool:
        return self.param.type == ParameterType.NUMBER.value

    @classmethod
    def showing(cls, param: TemplateVersionParameter, value: str) -> ParamField:
        """The field showing ``value`` (the services' string form)."""
        form = _form_of(param)
        if form in _BOOL_FORMS:
            return cls(param, checked=value == "true")
        items = parse_list_value(value) if value else []
        if form is FormType.MULTI_SELECT:
            return cls(param, chosen=items or [])
        if form is FormType.TAG_SELECT:
            return cls(param, text=", ".join(items) if items is not None else value)
        return cls(param, text=value)

    @classmethod
    def posted(cls, param: TemplateVersionParameter, values: Sequence[str]) -> ParamField:
        """The field as the form posted it (``values``: every value under its name)."""
        form = _form_of(param)
        if form in _BOOL_FORMS:
            return cls(param, checked="true" in values)
        if form is FormType.MULTI_SELECT:
            return cls(param, chosen=list(values))
        return cls(param, text=values[-1] if values else "")

    def value(self) -> str | None:
        """The value to create with; ``None`` leaves it to the template (an empty field
        of a parameter that is not required: its default, or empty)."""
        form = _form_of(self.param)
        if form in _BOOL_FORMS:
            return "true" if self.checked else "false"
        if form is FormType.MULTI_SELECT:
            return json.dumps(self.chosen)
        if form is FormType.TAG_SELECT:
            tags = [t.strip() for t in self.text.replace("\n", ",").split(",")]
            return json.dumps([t for t in tags if t])
        if self.text == "" and not self.param.required:
            return None
        return self.text


@dataclass
class FormState:
    """The whole form: what it shows and, after a refused create, why."""

    detail: TemplateDetail
    organization: str
    name: str = ""
    preset: str = ""
    fields: list[ParamField] = field(default_factory=list[ParamField])
    name_errors: list[str] = field(default_factory=list[str])
    preset_errors: list[str] = field(default_factory=list[str])
    message: str = ""
    """The refusal's own message, and problems that name no field of the form."""
    others: list[str] = field(default_factory=list[str])

    def refused(self, exc: BerthError) -> None:
        """Put the service's validation messages next to their fields."""
        self.message = exc.message + (f" {exc.detail}" if exc.detail else "")
        by_name = {f.param.name: f for f in self.fields}
        for problem in exc.validations:
            if problem.field == "name":
                self.name_errors.append(problem.detail)
            elif problem.field in ("preset", "preset_id"):
                self.preset_errors.append(problem.detail)
            elif problem.field in by_name:
                by_name[problem.field].errors.append(problem.detail)
            else:
                self.others.append(f"{problem.field}: {problem.detail}")


def _preset_values(detail: TemplateDetail, preset: str) -> dict[str, str]:
    for found, values in detail.presets:
        if str(found.id) == preset:
            return {v.name: v.value for v in values}
    return {}


async def _detail(session: PageSession, template: str, organization: str) -> TemplateDetail:
    found = await refs.template(session.ctx, template, organization or None)
    return await templates.get_template(session.ctx, found)


def _form_page(session: PageSession, state: FormState, status: int = 200) -> Response:
    t = state.detail.template
    return page(
        "workspace_new.html.j2",
        status,
        title=f"New workspace · {t.display_name or t.name}",
        session=session,
        state=state,
        csrf_field=CSRF_FIELD,
    )


async def _chooser(session: PageSession) -> Response:
    """Without ``?template=``: the templates to create from."""
    default_org = (await refs.organization(session.ctx, None)).id
    links: list[tuple[str, str, str]] = []
    for t in await templates.list_templates(session.ctx, None):
        if t.deleted:
            continue
        query = {"template": t.name}
        if t.organization_id != default_org:
            query["organization"] = str(t.organization_id)
        href = "/workspaces/new?" + urllib.parse.urlencode(query)
        links.append((href, t.display_name or t.name, t.description))
    return page("workspace_new.html.j2", title="New workspace", session=session, choose=links)


@router.get("/workspaces/new")
async def new_workspace_form(
    session: SessionDep,
    template: str = "",
    organization: str = "",
    preset: str | None = None,
    name: str = "",
) -> Response:
    """The form, its fields showing the defaults, or a chosen preset's values; the
    template's default preset is chosen until the user picks another (or none: ``""``)."""
    if not template:
        return await _chooser(session)
    detail = await _detail(session, template, organization)
    if preset is None:
        preset = next((str(p.id) for p, _ in detail.presets if p.is_default), "")
    values = _preset_values(detail, preset)
    state = FormState(detail, organization, name=name, preset=preset if values else "")
    state.fields = [
        ParamField.showing(p, values.get(p.name, p.default_value)) for p in detail.parameters
    ]
    return _form_page(session, state)


@router.post("/workspaces/new")
async def create_workspace(request: Request, session: SessionDep) -> Response:
    posted = await read_fields(request)
    check_csrf(session.csrf, {CSRF_FIELD: field_value(posted, CSRF_FIELD)})

    def one(key: str) -> str:
        return field_value(posted, key)

    template, organization = one("template"), one("organization")
    if not template:
        raise NotFound("Choose a template first.")
    detail = await _detail(session, template, organization)
    state = FormState(detail, organization, name=one("name"), preset=one("preset"))
    state.fields = [
        ParamField.posted(p, posted.get(PARAM_PREFIX + p.name, [])) for p in detail.parameters
    ]
    values = {f.param.name: v for f in state.fields if (v := f.value()) is not None}
    try:
        started = await workspaces.create_workspace(
            session.ctx,
            template=str(detail.template.id),
            name=state.name,
            parameters=values,
            preset_ref=state.preset or None,
        )
    except NotFound:
        raise
    except BerthError as exc:
        state.refused(exc)
        return _form_page(session, state, 400 if exc.validations else status_of(exc))
    path = workspace_path(session.user.username, started.workspace.name)
    return RedirectResponse(path, status_code=303)
