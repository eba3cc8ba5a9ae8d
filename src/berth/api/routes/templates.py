"""Templates, their versions, parameters and presets."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from berth.api.deps import CtxDep, RuntimeDep, TemplateDep
from berth.api.schemas import (
    ParameterOut,
    PresetOut,
    PushedOut,
    PushTemplateRequest,
    TemplateDetailOut,
    TemplateOut,
    VersionOut,
)
from berth.services import templates

router = APIRouter(tags=["templates"])


@router.get("/templates")
async def list_templates(ctx: CtxDep, organization: str | None = None) -> list[TemplateOut]:
    return [TemplateOut.of(t) for t in await templates.list_templates(ctx, organization)]


@router.post(
    "/templates",
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": PushedOut, "description": "A new version of an existing template"}},
)
async def push_template(
    body: PushTemplateRequest, ctx: CtxDep, runtime: RuntimeDep, response: Response
) -> PushedOut:
    cap = runtime.settings.prebuilds_max
    pushed = await templates.push_template(ctx, body.files, body.organization, max_prebuilds=cap)
    if not pushed.created:
        response.status_code = status.HTTP_200_OK
    return PushedOut(
        template=TemplateOut.of(pushed.template),
        version=VersionOut.of(pushed.version),
        created=pushed.created,
    )


@router.get("/templates/{template}")
async def get_template(template: TemplateDep, ctx: CtxDep) -> TemplateDetailOut:
    detail = await templates.get_template(ctx, template)
    return TemplateDetailOut.model_validate(
        {
            **TemplateOut.fields_of(detail.template),
            "active_version": detail.version and VersionOut.of(detail.version),
            "parameters": [ParameterOut.of(p) for p in detail.parameters],
            "presets": [PresetOut.of(p, values) for p, values in detail.presets],
        }
    )


@router.get("/templates/{template}/versions")
async def list_versions(template: TemplateDep, ctx: CtxDep) -> list[VersionOut]:
    return [VersionOut.of(v) for v in await templates.list_versions(ctx, template.id)]


@router.delete("/templates/{template}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_template(template: TemplateDep, ctx: CtxDep) -> Response:
    await templates.delete_template(ctx, template)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
