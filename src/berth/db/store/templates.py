"""Queries on templates, their versions, parameters and presets."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from berth.db import tables as t
from berth.db.store.base import StoreBase, key
from berth.records import (
    PresetParameter,
    Template,
    TemplateVersion,
    TemplateVersionParameter,
    TemplateVersionPreset,
)

_TEMPLATE_BY_ID = t.templates.select().where(t.templates.c.id == key())


class TemplateQueries(StoreBase):
    async def insert_template(
        self, *, organization_id: uuid.UUID, name: str, created_by: uuid.UUID, **fields: Any
    ) -> Template:
        now = self._now()
        return await self._insert(
            Template,
            t.templates,
            id=uuid.uuid4(),
            organization_id=organization_id,
            name=name,
            created_by=created_by,
            created_at=now,
            updated_at=now,
            **fields,
        )

    async def get_template_by_id(self, template_id: uuid.UUID) -> Template | None:
        return await self._one(Template, _TEMPLATE_BY_ID, {"key": template_id})

    async def list_templates_by_ids(self, template_ids: Sequence[uuid.UUID]) -> list[Template]:
        """The templates with these ids (deleted ones too, as :meth:`get_template_by_id`),
        in one query; in no particular order."""
        tp = t.templates
        return await self._all(Template, tp.select().where(tp.c.id.in_(list(template_ids))))

    async def get_template_by_organization_and_name(
        self, organization_id: uuid.UUID, name: str
    ) -> Template | None:
        tp = t.templates
        return await self._one(
            Template,
            tp.select().where(
                tp.c.organization_id == organization_id,
                sa.func.lower(tp.c.name) == name.lower(),
                tp.c.deleted.is_(False),
            ),
        )

    async def list_templates(
        self, *, organization_ids: Sequence[uuid.UUID] | None = None
    ) -> list[Template]:
        """Live templates, all or those of ``organization_ids``, by name."""
        tp = t.templates
        stmt = tp.select().where(tp.c.deleted.is_(False)).order_by(tp.c.name, tp.c.id)
        if organization_ids is not None:
            stmt = stmt.where(tp.c.organization_id.in_(list(organization_ids)))
        return await self._all(Template, stmt)

    async def update_template(self, template_id: uuid.UUID, **fields: Any) -> Template | None:
        """Set the given metadata columns (display name, TTL, active version, …)."""
        tp = t.templates
        return await self._update_one(
            Template, tp, tp.c.id == template_id, updated_at=self._now(), **fields
        )

    async def mark_template_deleted(self, template_id: uuid.UUID) -> Template | None:
        tp = t.templates
        return await self._update_one(
            Template, tp, tp.c.id == template_id, deleted=True, updated_at=self._now()
        )

    # --- versions ---------------------------------------------------------------------

    async def insert_template_version(
        self,
        *,
        template_id: uuid.UUID,
        name: str,
        document: dict[str, Any],
        source: str,
        readme: str,
        has_external_agent: bool,
        created_by: uuid.UUID,
    ) -> TemplateVersion:
        return await self._insert(
            TemplateVersion,
            t.template_versions,
            id=uuid.uuid4(),
            template_id=template_id,
            name=name,
            document=document,
            source=source,
            readme=readme,
            has_external_agent=has_external_agent,
            created_by=created_by,
            created_at=self._now(),
        )

    async def get_template_version_by_id(self, version_id: uuid.UUID) -> TemplateVersion | None:
        v = t.template_versions
        return await self._one(TemplateVersion, v.select().where(v.c.id == version_id))

    async def list_template_versions_by_ids(
        self, version_ids: Sequence[uuid.UUID]
    ) -> list[TemplateVersion]:
        """The versions with these ids, in one query (a listing's READMEs); in no
        particular order."""
        v = t.template_versions
        return await self._all(TemplateVersion, v.select().where(v.c.id.in_(list(version_ids))))

    async def list_template_versions(self, template_id: uuid.UUID) -> list[TemplateVersion]:
        v = t.template_versions
        return await self._all(
            TemplateVersion,
            v.select().where(v.c.template_id == template_id).order_by(v.c.created_at, v.c.id),
        )

    async def count_template_versions(self, template_id: uuid.UUID) -> int:
        v = t.template_versions
        stmt = sa.select(sa.func.count()).select_from(v).where(v.c.template_id == template_id)
        return int((await self._execute(stmt)).scalar_one())

    async def insert_template_version_parameters(
        self, rows: Sequence[TemplateVersionParameter]
    ) -> None:
        if rows:
            await self._execute(t.template_version_parameters.insert(), [_as_dict(r) for r in rows])

    async def list_template_version_parameters(
        self, version_id: uuid.UUID
    ) -> list[TemplateVersionParameter]:
        p = t.template_version_parameters
        return await self._all(
            TemplateVersionParameter,
            p.select().where(p.c.template_version_id == version_id).order_by(p.c.display_order),
        )

    # --- presets ----------------------------------------------------------------------

    async def insert_template_version_preset(
        self,
        *,
        template_version_id: uuid.UUID,
        name: str,
        description: str,
        icon: str,
        is_default: bool,
        desired_prebuild_instances: int | None,
        parameters: dict[str, str],
    ) -> TemplateVersionPreset:
        preset = await self._insert(
            TemplateVersionPreset,
            t.template_version_presets,
            id=uuid.uuid4(),
            template_version_id=template_version_id,
            name=name,
            description=description,
            icon=icon,
            is_default=is_default,
            desired_prebuild_instances=desired_prebuild_instances,
        )
        if parameters:
            await self._execute(
                t.template_version_preset_parameters.insert(),
                [{"preset_id": preset.id, "name": k, "value": v} for k, v in parameters.items()],
            )
        return preset

    async def get_template_version_preset_by_id(
        self, preset_id: uuid.UUID
    ) -> TemplateVersionPreset | None:
        p = t.template_version_presets
        return await self._one(TemplateVersionPreset, p.select().where(p.c.id == preset_id))

    async def list_template_version_presets(
        self, version_id: uuid.UUID
    ) -> list[TemplateVersionPreset]:
        p = t.template_version_presets
        return await self._all(
            TemplateVersionPreset,
            p.select().where(p.c.template_version_id == version_id).order_by(p.c.name, p.c.id),
        )

    async def list_preset_parameters(
        self, preset_ids: Sequence[uuid.UUID]
    ) -> list[PresetParameter]:
        p = t.template_version_preset_parameters
        return await self._all(
            PresetParameter,
            p.select().where(p.c.preset_id.in_(list(preset_ids))).order_by(p.c.preset_id, p.c.name),
        )


def _as_dict(record: TemplateVersionParameter) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record.__dataclass_fields__}
