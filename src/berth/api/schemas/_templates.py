"""Templates, their versions, parameters and presets."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import BaseModel

from berth import records
from berth.api.schemas._base import Out, RecordOut, Request
from berth.domain.gocompat import format_duration

__all__ = [
    "NameValue",
    "OptionOut",
    "ParameterOut",
    "PresetOut",
    "PushTemplateRequest",
    "PushedOut",
    "TemplateDetailOut",
    "TemplateOut",
    "VersionOut",
]


class PushTemplateRequest(Request):
    organization: str | None = None
    files: dict[str, str]


class TemplateOut(Out):
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    display_name: str
    description: str
    icon: str
    active_version_id: uuid.UUID | None
    deprecated: str
    default_ttl: str
    daily_cost: int
    require_active_version: bool
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def fields_of(cls, t: records.Template) -> dict[str, object]:
        return dict(cls.of(t))

    @classmethod
    def of(cls, t: records.Template) -> TemplateOut:
        ttl = format_duration(dt.timedelta(milliseconds=t.default_ttl_ms))
        return cls.read(t, default_ttl=ttl)


class VersionOut(RecordOut):
    id: uuid.UUID
    template_id: uuid.UUID
    name: str
    readme: str
    has_external_agent: bool
    created_at: dt.datetime
    created_by: uuid.UUID


class OptionOut(Out):
    name: str
    value: str
    description: str = ""
    icon: str = ""


class ParameterOut(Out):
    name: str
    display_name: str
    description: str
    type: str
    form_type: str
    default: str
    required: bool
    mutable: bool
    ephemeral: bool
    options: list[OptionOut]
    validation_regex: str
    validation_error: str
    validation_min: float | None
    validation_max: float | None
    validation_monotonic: str

    @classmethod
    def of(cls, p: records.TemplateVersionParameter) -> ParameterOut:
        return cls.read(p, default=p.default_value)


class NameValue(Out):
    name: str
    value: str


class PresetOut(Out):
    id: uuid.UUID
    name: str
    description: str
    icon: str
    default: bool
    desired_prebuild_instances: int | None
    parameters: list[NameValue]

    @classmethod
    def of(
        cls, p: records.TemplateVersionPreset, values: list[records.PresetParameter]
    ) -> PresetOut:
        return cls.read(p, default=p.is_default, parameters=values)


class TemplateDetailOut(TemplateOut):
    active_version: VersionOut | None
    parameters: list[ParameterOut]
    presets: list[PresetOut]


class PushedOut(BaseModel):
    template: TemplateOut
    version: VersionOut
    created: bool
