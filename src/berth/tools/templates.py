"""``list_templates`` (spec §11) and ``read_template`` (spec §12), run as the chat owner.

Port of the reference's ``listtemplates.go`` / ``readtemplate.go``: templates are
ranked by query relevance, then by an affinity ("frecency") score made of the owner's
recent usage and the organization's popularity, and the result tells the model what to
do next (``next_step``) and, when one template is a confident pick, which one.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import uuid
from dataclasses import dataclass, field
from typing import Any

from berth.db.authz import AuthzStore
from berth.domain.actors import Actor
from berth.records import (
    Template,
    TemplateRankingSignals,
    TemplateVersionParameter,
    TemplateVersionPreset,
)
from berth.tools.context import ChatContext
from berth.tools.create_workspace import parse_uuid_arg
from berth.tools.owner import owner_actor
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

NEXT_STEP_USE_RECOMMENDED = (
    "Use recommended_template_id with create_workspace. Call read_template first only if "
    "you need parameter or preset details."
)
NEXT_STEP_ASK_USER = (
    "Do not call create_workspace yet. Ask the user to choose a template, unless they "
    "already named one."
)
NEXT_STEP_NO_MATCHES = "No templates matched the query. Retry without a query or ask the user."
NEXT_STEP_NO_TEMPLATES = "No templates are available to this chat. Inform the user."

PAGE_SIZE = 10
LOOKBACK = dt.timedelta(days=60)
HALF_LIFE = dt.timedelta(days=14)
PERSONAL_WEIGHT = 10.0
DELETED_WEIGHT = 0.5
ORG_WEIGHT = 1.0
MIN_DEVELOPERS_FOR_RECOMMENDATION = 2
MIN_CONFIDENT_AFFINITY = ORG_WEIGHT * math.log1p(MIN_DEVELOPERS_FOR_RECOMMENDATION)
"""``ln(3)``: organization popularity alone is confident at two developers."""
MIN_CONFIDENT_GAP = ORG_WEIGHT * (
    math.log1p(MIN_DEVELOPERS_FOR_RECOMMENDATION)
    - math.log1p(MIN_DEVELOPERS_FOR_RECOMMENDATION - 1)
)
"""``ln(3) − ln(2)``: "2 developers versus 1" recommends, "16 versus 15" does not."""
AFFINITY_EPSILON = 1e-9

QUERY_SCORE_EXACT = 4
QUERY_SCORE_PREFIX = 3
QUERY_SCORE_CONTAINS = 2
QUERY_SCORE_DESCRIPTION = 1

LIST_DESCRIPTION_MAX = 200
README_EXCERPT_MAX = 1000
READ_README_MAX = 8000
PARAMETER_DESCRIPTION_MAX = 300

TEMPLATE_NOT_FOUND = "template not found"


# --- ranking ----------------------------------------------------------------------------


def _normalize(value: str) -> str:
    return value.strip().lower()


def _compact(value: str) -> str:
    return value.replace(" ", "").replace("-", "").replace("_", "")


def _name_score(field_value: str, query: str, query_compact: str) -> int:
    value = _normalize(field_value)
    if not value:
        return 0
    compact = _compact(value)
    if value == query or compact == query_compact:
        return QUERY_SCORE_EXACT
    if value.startswith(query) or compact.startswith(query_compact):
        return QUERY_SCORE_PREFIX
    if query in value or query_compact in compact:
        return QUERY_SCORE_CONTAINS
    return 0


def query_score(template: Template, query: str) -> int:
    """[lt.query] 4 exact, 3 prefix, 2 contains (name, display name); 1 description; else 0."""
    normalized = _normalize(query)
    compact = _compact(normalized)
    if not normalized or not compact:
        return 0
    best = max(_name_score(f, normalized, compact) for f in (template.name, template.display_name))
    if best > 0:
        return best
    description = _normalize(template.description)
    if normalized in description or compact in _compact(description):
        return QUERY_SCORE_DESCRIPTION
    return 0


def affinity_score(signals: TemplateRankingSignals, now: dt.datetime) -> float:
    """[lt.affinity] Recency-decayed personal use plus log-scaled organization popularity."""
    personal = 0.0
    if signals.last_used_at is not None:
        count = signals.active_count + DELETED_WEIGHT * signals.deleted_recent_count
        age = max(now - signals.last_used_at, dt.timedelta(0))
        personal = PERSONAL_WEIGHT * count * 0.5 ** (age / HALF_LIFE)
    return personal + ORG_WEIGHT * math.log1p(signals.org_developers)


@dataclass
class Ranked:
    template: Template
    query_score: int = 0
    signals: TemplateRankingSignals = field(
        default_factory=lambda: TemplateRankingSignals(template_id=uuid.UUID(int=0))
    )
    affinity: float = 0.0


def rank(candidates: list[Ranked], query: str) -> list[Ranked]:
    """[lt.order] Query score (with a query) and affinity descending, then name and id."""
    by_name = sorted(candidates, key=lambda r: (r.template.name, str(r.template.id)))
    # Stable: entries equal on score and affinity keep the name/id order.
    return sorted(by_name, key=lambda r: (-r.query_score if query else 0, -r.affinity))


def _at_least(score: float, threshold: float) -> bool:
    return score >= threshold - AFFINITY_EPSILON


def recommend(
    ranked: list[Ranked], visible: int, signals_failed: bool = False
) -> tuple[uuid.UUID | None, str]:
    """[lt.recommend] [lt.next-step] The confident pick (if any) and the next step."""
    if not ranked:
        return None, NEXT_STEP_NO_TEMPLATES if visible == 0 else NEXT_STEP_NO_MATCHES
    top = ranked[0]
    if visible == 1 and len(ranked) == 1:
        return top.template.id, NEXT_STEP_USE_RECOMMENDED
    if top.query_score > 0 and (len(ranked) == 1 or top.query_score > ranked[1].query_score):
        return top.template.id, NEXT_STEP_USE_RECOMMENDED
    if signals_failed:
        return None, NEXT_STEP_ASK_USER
    if top.query_score > 0:  # a tie on the query score: affinity must break it clearly
        if len(ranked) > 1 and _at_least(top.affinity - ranked[1].affinity, MIN_CONFIDENT_GAP):
            return top.template.id, NEXT_STEP_USE_RECOMMENDED
        return None, NEXT_STEP_ASK_USER
    if not _at_least(top.affinity, MIN_CONFIDENT_AFFINITY):
        return None, NEXT_STEP_ASK_USER
    if (
        len(ranked) > 1
        and _at_least(ranked[1].affinity, MIN_CONFIDENT_AFFINITY)
        and not _at_least(top.affinity - ranked[1].affinity, MIN_CONFIDENT_GAP)
    ):
        return None, NEXT_STEP_ASK_USER
    return top.template.id, NEXT_STEP_USE_RECOMMENDED


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
        actor = await owner_actor(ctx)
    except Exception as exc:
        return ToolResult.error(f"authorize list_templates owner: load user authorization: {exc}")
    allowlist = await _allowed(ctx)
    async with ctx.db.read() as raw:  # [lt.query] the visible templates
        templates = [
            t
            for t in await AuthzStore(raw, actor).list_templates(
                organization_ids=[ctx.organization_id]
            )
            if not t.deleted and not t.deprecated.strip() and (not allowlist or t.id in allowlist)
        ]
    query = query.strip()
    candidates = [Ranked(t, query_score(t, query)) for t in templates]
    if query:
        candidates = [c for c in candidates if c.query_score > 0]
    now = ctx.clock.now()
    signals_failed = False
    try:
        async with ctx.db.read() as raw:
            signals = await AuthzStore(raw, actor).get_template_ranking_signals(
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
    recommended, next_step = recommend(ranked, len(templates), signals_failed)
    page = max(page, 1)  # [lt.page]
    start = min((page - 1) * PAGE_SIZE, len(ranked))
    end = min(start + PAGE_SIZE, len(ranked))
    readmes = await _readmes(ctx, actor, [r.template for r in ranked[start:end]])
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


async def _readmes(
    ctx: ChatContext, actor: Actor, templates: list[Template]
) -> dict[uuid.UUID, str]:
    """The active version's README of each template (best effort, as the owner)."""
    found: dict[uuid.UUID, str] = {}
    try:
        async with ctx.db.read() as raw:
            store = AuthzStore(raw, actor)
            for template in templates:
                if template.active_version_id is None:
                    continue
                version = await store.get_template_version_by_id(template.active_version_id)
                if version is not None:
                    found[template.id] = version.readme
    except Exception:
        log.warning("failed to load template READMEs", exc_info=True)
    return found


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
    tpl_id, parse_error = parse_uuid_arg(ref)
    if tpl_id is None:
        return ToolResult.error(f"invalid template_id: {parse_error}")
    allowlist = await _allowed(ctx)
    if allowlist and tpl_id not in allowlist:
        return ToolResult.error(TEMPLATE_NOT_FOUND)
    try:
        actor = await owner_actor(ctx)
    except Exception as exc:
        return ToolResult.error(f"load user authorization: {exc}")
    async with ctx.db.read() as raw:
        store = AuthzStore(raw, actor)
        template = await store.get_template_by_id(tpl_id)
        if template is None or template.deleted or template.organization_id != ctx.organization_id:
            return ToolResult.error(TEMPLATE_NOT_FOUND)
        version_id = template.active_version_id
        try:
            rows = await store.list_template_version_parameters(version_id) if version_id else []
        except Exception as exc:
            return ToolResult.error(f"failed to get template parameters: {exc}")
        try:
            presets = await store.list_template_version_presets(version_id) if version_id else []
        except Exception as exc:
            return ToolResult.error(f"failed to get template presets: {exc}")
        preset_values: dict[uuid.UUID, list[dict[str, str]]] = {p.id: [] for p in presets}
        if presets:
            try:
                for value in await store.list_preset_parameters([p.id for p in presets]):
                    preset_values[value.preset_id].append(
                        {"name": value.name, "value": value.value}
                    )
            except Exception as exc:
                return ToolResult.error(f"failed to get preset parameters: {exc}")
        readme = ""
        try:
            version = await store.get_template_version_by_id(version_id) if version_id else None
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
