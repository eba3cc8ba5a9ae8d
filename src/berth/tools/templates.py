"""``list_templates`` (spec §11) and ``read_template`` (spec §12), run as the chat owner.

Port of the reference's ``listtemplates.go`` / ``readtemplate.go``. The ranking is
pure and lives in :mod:`berth.domain.ranking`; the result tells the model what to do
next (``next_step``) and, when one template is a confident pick, which one.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from berth.domain.gocompat import parse_uuid
from berth.domain.ranking import (
    LOOKBACK,
    Ranked,
    affinity_score,
    query_score,
    rank,
    recommend,
)
from berth.records import (
    Template,
    TemplateRankingSignals,
    TemplateVersionParameter,
    TemplateVersionPreset,
)
from berth.services import Ctx, templates
from berth.tools.context import ChatContext
from berth.tools.result import ToolResult
from berth.tools.template_text import readme_text, rfc3339, truncate

log = logging.getLogger("berth.tools")

LIST_NAME = "list_templates"
LIST_DESCRIPTION = (
    "List workspace templates as a ranked shortlist, optionally filtered by a query "
    "matching template name, display name, or description. Each result includes a short "
    "README excerpt for routing context; call read_template for the full README and "
    "parameters. Follow the next_step field in the result. Returns 10 per page; fetch "
    "next_page only when no listed template fits the request."
)
QUERY_DESCRIPTION = "Optional text to filter templates by name, display name, or description."
PAGE_DESCRIPTION = "Page number (starts at 1)."

READ_NAME = "read_template"
READ_DESCRIPTION = (
    "Get details about a workspace template, including its configurable parameters and "
    "available presets. Use this after finding a template with list_templates and before "
    "creating a workspace with create_workspace."
)
TEMPLATE_ID_DESCRIPTION = (
    "The UUIDv4 of the template to read details for. Obtain this from list_templates."
)

PAGE_SIZE = 10
LIST_DESCRIPTION_MAX = 200
README_EXCERPT_MAX = 1000
READ_README_MAX = 8000
PARAMETER_DESCRIPTION_MAX = 300

TEMPLATE_NOT_FOUND = "template not found"


def template_item(entry: Ranked, readme: str) -> dict[str, Any]:
    """[lt.items] One listed template; empty or zero fields are left out."""
    tpl, signals = entry.template, entry.signals
    item: dict[str, Any] = {"id": str(tpl.id), "name": tpl.name}
    if display := tpl.display_name.strip():
        item["display_name"] = display
    if description := tpl.description.strip():
        item["description"] = truncate(description, LIST_DESCRIPTION_MAX)
    if signals.org_developers > 0:
        item["active_developers"] = signals.org_developers
    if signals.active_count > 0:
        item["your_workspace_count"] = signals.active_count
    if signals.last_used_at is not None:
        item["last_used_by_you"] = rfc3339(signals.last_used_at)
    if excerpt := readme_text(readme, README_EXCERPT_MAX):
        item["readme_excerpt"] = excerpt
    return item


# --- list_templates -------------------------------------------------------------------


async def _allowed(ctx: ChatContext) -> frozenset[uuid.UUID]:
    return await ctx.allowlist() if ctx.allowlist is not None else frozenset()


async def list_templates(ctx: ChatContext, *, query: str = "", page: int = 1) -> ToolResult:
    try:  # [lt.decl] as the owner
        owner = await ctx.as_owner()
    except Exception as exc:
        return ToolResult.error(f"authorize list_templates owner: load user authorization: {exc}")
    allowlist = await _allowed(ctx)
    visible = [  # [lt.query] the visible templates
        t
        for t in await templates.organization_templates(owner, ctx.organization_id)
        if not t.deleted and not t.deprecated.strip() and (not allowlist or t.id in allowlist)
    ]
    query = query.strip()
    candidates = [Ranked(t, query_score(t, query)) for t in visible]
    if query:
        candidates = [c for c in candidates if c.query_score > 0]
    now = ctx.clock.now()
    signals_failed = False
    try:
        signals = await templates.ranking_signals(
            owner,
            owner_id=ctx.owner_id,
            organization_id=ctx.organization_id,
            template_ids=[c.template.id for c in candidates],
            since=now - LOOKBACK,
        )
    except Exception:
        log.warning("failed to load template ranking signals", exc_info=True)
        signals, signals_failed = [], True
    by_template = {s.template_id: s for s in signals}
    for candidate in candidates:
        found = by_template.get(candidate.template.id)
        candidate.signals = found or TemplateRankingSignals(template_id=candidate.template.id)
        candidate.affinity = affinity_score(candidate.signals, now)
    ranked = rank(candidates, query)
    recommended, next_step = recommend(ranked, len(visible), signals_failed)
    page = max(page, 1)  # [lt.page]
    start = min((page - 1) * PAGE_SIZE, len(ranked))
    end = min(start + PAGE_SIZE, len(ranked))
    readmes = await _readmes(owner, [r.template for r in ranked[start:end]])
    result: dict[str, Any] = {
        "templates": [template_item(r, readmes.get(r.template.id, "")) for r in ranked[start:end]],
        "page": page,
        "next_step": next_step,
    }
    if end < len(ranked):
        result["next_page"] = page + 1
    if recommended is not None:
        result["recommended_template_id"] = str(recommended)
    return ToolResult.json(result)


async def _readmes(owner: Ctx, page: list[Template]) -> dict[uuid.UUID, str]:
    """The active version's README of each template (best effort, as the owner)."""
    try:
        return await templates.active_readmes(owner, page)
    except Exception:
        log.warning("failed to load template READMEs", exc_info=True)
        return {}


# --- read_template --------------------------------------------------------------------


def _number(value: float) -> int | float:
    return int(value) if value.is_integer() else value


def parameter_entry(p: TemplateVersionParameter) -> dict[str, Any]:
    """[rt.result] One parameter; optional keys only when set."""
    entry: dict[str, Any] = {
        "name": p.name,
        "type": p.type,
        "required": p.required,
        "mutable": p.mutable,
    }
    if display := p.display_name.strip():
        entry["display_name"] = display
    if description := p.description.strip():
        entry["description"] = truncate(description, PARAMETER_DESCRIPTION_MAX)
    if p.default_value:
        entry["default"] = p.default_value
    if p.ephemeral:
        entry["ephemeral"] = True
    if p.form_type:
        entry["form_type"] = p.form_type
    options: list[dict[str, Any]] = []
    for option in p.options:
        shown: dict[str, Any] = {"name": option.get("name", ""), "value": option.get("value", "")}
        for key in ("description", "icon"):
            if text := str(option.get(key) or "").strip():
                shown[key] = text
        options.append(shown)
    if options:
        entry["options"] = options
    if p.validation_regex:
        entry["validation_regex"] = p.validation_regex
    if p.validation_min is not None:
        entry["validation_min"] = _number(p.validation_min)
    if p.validation_max is not None:
        entry["validation_max"] = _number(p.validation_max)
    return entry


def preset_entry(p: TemplateVersionPreset, parameters: list[dict[str, str]]) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": str(p.id), "name": p.name, "default": p.is_default}
    if description := p.description.strip():
        entry["description"] = description
    if icon := p.icon.strip():
        entry["icon"] = icon
    if p.desired_prebuild_instances and p.desired_prebuild_instances > 0:
        entry["desired_prebuild_instances"] = p.desired_prebuild_instances
    entry["parameters"] = parameters
    return entry


async def read_template(ctx: ChatContext, *, template_id: str) -> ToolResult:
    ref = template_id.strip()
    if not ref:  # [rt.errors]
        return ToolResult.error("template_id is required")
    tpl_id, parse_error = parse_uuid(ref)
    if tpl_id is None:
        return ToolResult.error(f"invalid template_id: {parse_error}")
    allowlist = await _allowed(ctx)
    if allowlist and tpl_id not in allowlist:
        return ToolResult.error(TEMPLATE_NOT_FOUND)
    try:
        owner = await ctx.as_owner()
    except Exception as exc:
        return ToolResult.error(f"load user authorization: {exc}")
    template = await templates.get_template_by_id(owner, tpl_id)
    if template is None or template.deleted or template.organization_id != ctx.organization_id:
        return ToolResult.error(TEMPLATE_NOT_FOUND)
    version_id = template.active_version_id
    try:
        rows = await templates.version_parameters(owner, version_id) if version_id else []
    except Exception as exc:
        return ToolResult.error(f"failed to get template parameters: {exc}")
    try:
        presets = await templates.version_presets(owner, version_id) if version_id else []
    except Exception as exc:
        return ToolResult.error(f"failed to get template presets: {exc}")
    preset_values: dict[uuid.UUID, list[dict[str, str]]] = {p.id: [] for p in presets}
    if presets:
        try:
            for value in await templates.preset_parameters(owner, [p.id for p in presets]):
                preset_values[value.preset_id].append({"name": value.name, "value": value.value})
        except Exception as exc:
            return ToolResult.error(f"failed to get preset parameters: {exc}")
    readme = ""
    try:
        version = await templates.get_version(owner, version_id) if version_id else None
        readme = version.readme if version is not None else ""
    except Exception:
        log.warning("failed to read the README of template %s", template.id, exc_info=True)
    info: dict[str, Any] = {
        "id": str(template.id),
        "name": template.name,
        "active_version_id": str(version_id) if version_id else None,
    }
    if display := template.display_name.strip():
        info["display_name"] = display
    if description := template.description.strip():
        info["description"] = description
    result: dict[str, Any] = {
        "template": info,
        "readme": readme_text(readme, READ_README_MAX),
        "parameters": [parameter_entry(p) for p in rows],
    }
    if presets:
        result["presets"] = [preset_entry(p, preset_values[p.id]) for p in presets]
    return ToolResult.json(result)
