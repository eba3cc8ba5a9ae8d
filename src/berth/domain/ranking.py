"""Ranking templates for a chat (spec §11): query relevance, affinity, a confident pick.

Pure: the signals come from the database (:class:`berth.records.TemplateRankingSignals`),
the verdict goes back to ``list_templates``. Port of the reference's ranking in
``listtemplates.go``: templates are ranked by query relevance, then by an affinity
("frecency") score made of the owner's recent usage and the organization's popularity,
and one template is recommended only when it is a confident pick.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from dataclasses import dataclass, field

from berth.records import Template, TemplateRankingSignals

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
