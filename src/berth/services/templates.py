"""Templates: push a folder as a new active version, list, show, delete.

A push is one transaction: the template row (on first push), the version with its
parsed document, its parameters and presets, and the template's metadata pointing at
the new version. A document that fails validation stores nothing.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from berth.db.authz import AuthzStore, not_found
from berth.db.dialects import is_unique_violation
from berth.db.policy import Kind
from berth.domain.template import TemplateDoc, load_template_dir, parse_template
from berth.domain.template_yaml import invalid_template
from berth.errors import Conflict, InvalidInput, Validation
from berth.events import messages
from berth.records import (
    PresetParameter,
    Template,
    TemplateRankingSignals,
    TemplateVersion,
    TemplateVersionParameter,
    TemplateVersionPreset,
)
from berth.services.base import Ctx
from berth.services.refs import organization_in

TEMPLATE_FILES = ("template.yaml", "template.yml")
README_FILE = "README.md"
MAX_FILE_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class Pushed:
    template: Template
    version: TemplateVersion
    created: bool


@dataclass(frozen=True, slots=True)
class TemplateDetail:
    template: Template
    version: TemplateVersion | None
    parameters: list[TemplateVersionParameter]
    presets: list[tuple[TemplateVersionPreset, list[PresetParameter]]]


def _read_files(files: Mapping[str, str]) -> tuple[str, str, str]:
    """(file name, template text, readme) from a pushed file map, validated."""
    unknown = sorted(set(files) - {*TEMPLATE_FILES, README_FILE})
    problems = [Validation(f"files.{name}", "unknown file") for name in unknown]
    problems += [
        Validation(f"files.{name}", f"larger than {MAX_FILE_BYTES} bytes")
        for name, text in files.items()
        if len(text.encode()) > MAX_FILE_BYTES
    ]
    present = [name for name in TEMPLATE_FILES if name in files]
    if not present:
        problems.append(Validation("files", "template.yaml is required"))
    elif len(present) > 1:
        problems.append(Validation("files", "give template.yaml or template.yml, not both"))
    if problems:
        raise InvalidInput("The pushed files are not a template.", validations=problems)
    return present[0], files[present[0]], files.get(README_FILE, "")


def _parameter_rows(version_id: uuid.UUID, doc: TemplateDoc) -> list[TemplateVersionParameter]:
    return [
        TemplateVersionParameter(
            template_version_id=version_id,
            name=p.name,
            display_order=i,
            display_name=p.display_name,
            description=p.description,
            type=p.type.value,
            form_type=p.form_type.value,
            default_value=p.default or "",
            required=p.required,
            mutable=p.mutable,
            ephemeral=p.ephemeral,
            options=[o.model_dump(mode="json") for o in p.options],
            validation_regex=p.validation.regex or "",
            validation_error=p.validation.error or "",
            validation_min=p.validation.min,
            validation_max=p.validation.max,
            validation_monotonic=p.validation.monotonic or "",
        )
        for i, p in enumerate(doc.parameters)
    ]


async def store_version(
    store: AuthzStore,
    *,
    organization_id: uuid.UUID,
    doc: TemplateDoc,
    source: str,
    readme: str,
) -> Pushed:
    """Create the template if needed, add a version, make it active."""
    actor_id = store.actor.user_id
    if actor_id is None:
        raise InvalidInput("Templates are pushed by users.")
    template = await store.get_template_by_organization_and_name(organization_id, doc.name)
    created = template is None
    if template is None:
        try:
            template = await store.insert_template(
                organization_id=organization_id, name=doc.name, created_by=actor_id
            )
        except Exception as exc:
            if is_unique_violation(exc):
                raise Conflict(
                    f"Template {doc.name!r} was created concurrently; push again."
                ) from exc
            raise
    number = await store.count_template_versions(template.id) + 1
    version = await store.insert_template_version(
        template_id=template.id,
        name=f"v{number}",
        document=doc.model_dump(mode="json"),
        source=source,
        readme=readme,
        has_external_agent=doc.has_external_agent,
        created_by=actor_id,
    )
    await store.insert_template_version_parameters(_parameter_rows(version.id, doc))
    for preset in doc.presets:
        instances = preset.prebuilds.instances
        await store.insert_template_version_preset(
            template_version_id=version.id,
            name=preset.name,
            description=preset.description,
            icon="",
            is_default=preset.default,
            desired_prebuild_instances=instances or None,
            parameters=dict(preset.parameters),
        )
    updated = await store.update_template(
        template.id,
        display_name=doc.display_name,
        description=doc.description,
        icon=doc.icon,
        default_ttl_ms=int(doc.default_ttl.total_seconds() * 1000),
        daily_cost=doc.daily_cost,
        require_active_version=doc.require_active_version,
        active_version_id=version.id,
    )
    if updated is None:
        raise not_found(Kind.TEMPLATE)
    return Pushed(template=updated, version=version, created=created)


async def push_template(
    ctx: Ctx,
    files: Mapping[str, str],
    organization: str | None,
    *,
    max_prebuilds: int | None = None,
) -> Pushed:
    """A new version, made active; ``max_prebuilds`` is the site's cap on prebuilds."""
    filename, text, readme = _read_files(files)
    doc = parse_template(text, filename=filename)
    if max_prebuilds is not None:
        _check_prebuilds(doc, filename, max_prebuilds)
    async with ctx.write() as store:
        org = await organization_in(store, organization)
        pushed = await store_version(
            store, organization_id=org.id, doc=doc, source=text, readme=readme
        )
    # A new active version: the reconciler replaces the older version's prebuilds.
    await ctx.publish(messages.PREBUILDS, messages.PrebuildsChanged())
    return pushed


def _check_prebuilds(doc: TemplateDoc, filename: str, limit: int) -> None:
    """Refuse presets that ask for more prebuilds than the site keeps (``BERTH_PREBUILDS_MAX``),
    and prebuilds of a template with external agents (berth never starts those agents, so
    such a prebuild could never become ready)."""
    if doc.has_external_agent:
        problems = [
            Validation(
                f"presets[{i}].prebuilds.instances",
                "a template with external agents cannot keep prebuilds: berth does not "
                "start their agents",
            )
            for i, preset in enumerate(doc.presets)
            if preset.prebuilds.instances > 0
        ]
        if problems:
            raise invalid_template(filename, problems)
    problems = [
        Validation(
            f"presets[{i}].prebuilds.instances",
            f"must be <= {limit}, the site's cap on prebuilds (BERTH_PREBUILDS_MAX)",
        )
        for i, preset in enumerate(doc.presets)
        if preset.prebuilds.instances > limit
    ]
    total = sum(p.prebuilds.instances for p in doc.presets)
    if not problems and total > limit:
        problems.append(
            Validation(
                "presets",
                f"ask for {total} prebuilds in all; the site keeps at most {limit} "
                "(BERTH_PREBUILDS_MAX)",
            )
        )
    if problems:
        raise invalid_template(filename, problems)


async def install_template_dir(store: AuthzStore, organization_id: uuid.UUID, path: Path) -> Pushed:
    """Push a template folder from disk (the bundled examples, on first start)."""
    loaded = load_template_dir(path)
    return await store_version(
        store,
        organization_id=organization_id,
        doc=loaded.doc,
        source=loaded.yaml_text,
        readme=loaded.readme,
    )


async def list_templates(ctx: Ctx, organization: str | None) -> list[Template]:
    async with ctx.read() as store:
        if organization:
            org = await organization_in(store, organization)
            return await store.list_templates(organization_ids=[org.id])
        return await store.list_templates()


async def get_template(ctx: Ctx, template: Template) -> TemplateDetail:
    """The template with its active version, parameters and presets."""
    async with ctx.read() as store:
        version = None
        if template.active_version_id is not None:
            version = await store.get_template_version_by_id(template.active_version_id)
        if version is None:
            return TemplateDetail(template, None, [], [])
        parameters = await store.list_template_version_parameters(version.id)
        presets = await store.list_template_version_presets(version.id)
        values = await store.list_preset_parameters([p.id for p in presets])
        return TemplateDetail(
            template,
            version,
            parameters,
            [(p, [v for v in values if v.preset_id == p.id]) for p in presets],
        )


async def list_versions(ctx: Ctx, template_id: uuid.UUID) -> list[TemplateVersion]:
    async with ctx.read() as store:
        return await store.list_template_versions(template_id)


async def delete_template(ctx: Ctx, template: Template) -> None:
    """Soft-delete a template that no live workspace uses.

    Permission before state: the template is marked deleted first (which checks that
    the actor may delete it), and only then are its workspaces counted; when some are
    live the transaction is rolled back with the conflict. So an actor who may not
    delete the template gets the same answer whether it is in use or not.
    """
    async with ctx.write() as store:
        await store.mark_template_deleted(template.id)
        if count := await store.count_live_workspaces_by_template(template.id):
            raise Conflict(
                f"Template {template.name!r} is used by {count} workspace(s).",
                detail="Delete those workspaces first.",
            )


# --- reads for the chat tools, one step each (list_templates, read_template) -------------


async def organization_templates(ctx: Ctx, organization_id: uuid.UUID) -> list[Template]:
    """The organization's templates the actor may see (deleted and deprecated included)."""
    async with ctx.read() as store:
        return await store.list_templates(organization_ids=[organization_id])


async def ranking_signals(
    ctx: Ctx,
    *,
    owner_id: uuid.UUID,
    organization_id: uuid.UUID,
    template_ids: Sequence[uuid.UUID],
    since: dt.datetime,
) -> list[TemplateRankingSignals]:
    async with ctx.read() as store:
        return await store.get_template_ranking_signals(
            owner_id=owner_id,
            organization_id=organization_id,
            template_ids=template_ids,
            since=since,
        )


async def active_readmes(ctx: Ctx, templates: Sequence[Template]) -> dict[uuid.UUID, str]:
    """The README of each template's active version, by template id: one read of the
    versions however many templates (a listing's page)."""
    wanted = [t.active_version_id for t in templates if t.active_version_id is not None]
    if not wanted:
        return {}
    async with ctx.read() as store:
        versions = {v.id: v for v in await store.list_template_versions_by_ids(wanted)}
    return {
        t.id: versions[t.active_version_id].readme
        for t in templates
        if t.active_version_id is not None and t.active_version_id in versions
    }


async def get_template_by_id(ctx: Ctx, template_id: uuid.UUID) -> Template | None:
    async with ctx.read() as store:
        return await store.get_template_by_id(template_id)


async def get_version(ctx: Ctx, version_id: uuid.UUID) -> TemplateVersion | None:
    async with ctx.read() as store:
        return await store.get_template_version_by_id(version_id)


async def version_parameters(ctx: Ctx, version_id: uuid.UUID) -> list[TemplateVersionParameter]:
    async with ctx.read() as store:
        return await store.list_template_version_parameters(version_id)


async def version_presets(ctx: Ctx, version_id: uuid.UUID) -> list[TemplateVersionPreset]:
    async with ctx.read() as store:
        return await store.list_template_version_presets(version_id)


async def preset_parameters(ctx: Ctx, preset_ids: Sequence[uuid.UUID]) -> list[PresetParameter]:
    async with ctx.read() as store:
        return await store.list_preset_parameters(preset_ids)
