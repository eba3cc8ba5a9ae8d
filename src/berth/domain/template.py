"""The template document (``template.yaml``, DESIGN §5), its rules, and its loader.

A template is what an administrator curates and a model picks, so a bad one must be
refused at push time with an answer a person can act on: every failure is an
:class:`~berth.errors.InvalidInput` (:class:`TemplateError`) whose message names the
file and whose validations name the field as a dotted path (``agents[1].chat``) and the
rule in plain words. Pydantic does the typing; its errors are translated here and never
leak (no tracebacks, no URLs).

All rules live in model validators, so ``TemplateDoc.model_validate`` enforces them
however a document arrives (a push, a stored build, a rendered copy). Durations are Go
strings (``8h``, ``2m``) and serialize back to Go's canonical form, so
``model_dump(mode="json")`` round-trips.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from berth.domain.enums import BackendType, FormType, Isolation, ParameterType
from berth.domain.parameters import value_problems
from berth.domain.template_fields import (
    ENV_NAME,
    GoDuration,
    MemorySize,
    Name,
    ParameterName,
    ScalarStr,
    memory_bytes,
)
from berth.domain.template_yaml import (
    DOCUMENT,
    Loc,
    RuleErrors,
    TemplateError,
    errors_from_pydantic,
    invalid_template,
    kind_of,
    load_yaml,
    refuse,
)

__all__ = [
    "DEFAULT_PIDS",
    "DEFAULT_TMP_SIZE",
    "AgentDoc",
    "BackendDoc",
    "LimitsMode",
    "LoadedTemplate",
    "OptionDoc",
    "ParameterDoc",
    "ParameterValidationDoc",
    "PrebuildsDoc",
    "PresetDoc",
    "ScriptDoc",
    "TemplateDoc",
    "TemplateError",
    "load_template_dir",
    "parse_template",
    "validate_template_data",
]


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


DEFAULT_PIDS = 1024
"""``backend.pids`` when a template sets none: the most processes (threads too) at once."""
DEFAULT_TMP_SIZE = "1g"
"""``backend.tmp_size`` when a template sets none: the size of ``/tmp`` and of ``/dev/shm``."""

LimitsMode = Literal["enforce", "best-effort"]
"""``backend.limits``: ``enforce`` (a limit the host cannot hold fails the build) or
``best-effort`` (the build log warns and the workspace runs without it)."""


# --- the document -------------------------------------------------------------


class BackendDoc(_Doc):
    """Where workspaces run. ``isolation`` defaults to ``bwrap`` for ``local``.

    Limits: ``cpus``, ``memory``, ``pids`` (default :data:`DEFAULT_PIDS`), ``tmp_size``
    (default :data:`DEFAULT_TMP_SIZE`, each of ``/tmp`` and ``/dev/shm``) and ``disk``
    (the home). Unset fields stay ``None`` in the document, so a stored build says what
    its template asked for; the ``*_limit``/``*_bytes`` properties apply the defaults.
    """

    type: BackendType = BackendType.LOCAL
    isolation: Isolation | None = None
    network: bool = True
    image: str | None = None
    cpus: float | None = Field(default=None, gt=0)
    memory: MemorySize | None = None
    pids: int | None = Field(default=None, gt=0)
    tmp_size: MemorySize | None = None
    disk: MemorySize | None = None
    limits: LimitsMode = "enforce"
    fake: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_isolation(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        fields = cast("dict[str, Any]", data)
        if fields.get("type", "local") == "local" and fields.get("isolation") is None:
            return {**fields, "isolation": "bwrap"}
        return fields

    @model_validator(mode="after")
    def _rules(self) -> BackendDoc:
        problems: list[tuple[Loc, str]] = []
        if self.isolation is not None and self.type is not BackendType.LOCAL:
            problems.append((("isolation",), "only the local backend takes isolation"))
        needs_image = self.type in (BackendType.DOCKER, BackendType.KUBERNETES)
        if needs_image and not self.image:
            problems.append((("image",), f"the {self.type} backend needs an image"))
        if self.image is not None and self.type is BackendType.LOCAL:
            problems.append((("image",), "the local backend runs on the host and takes no image"))
        if self.fake is not None and self.type is not BackendType.FAKE:
            problems.append((("fake",), "only the fake backend (for tests) takes fake settings"))
        if problems:
            raise RuleErrors(problems)
        return self

    @property
    def memory_bytes(self) -> int | None:
        """``memory`` in bytes (binary multiples: ``2g`` = 2 GiB), or None if unset."""
        return memory_bytes(self.memory) if self.memory else None

    @property
    def pids_limit(self) -> int:
        """``pids``, or :data:`DEFAULT_PIDS` if unset."""
        return self.pids or DEFAULT_PIDS

    @property
    def tmp_size_bytes(self) -> int:
        """``tmp_size`` in bytes, or :data:`DEFAULT_TMP_SIZE`'s if unset."""
        return memory_bytes(self.tmp_size or DEFAULT_TMP_SIZE) or 0

    @property
    def disk_bytes(self) -> int | None:
        """``disk`` in bytes, or None if unset (the home may grow as the host allows)."""
        return memory_bytes(self.disk) if self.disk else None

    @property
    def best_effort(self) -> bool:
        """True if limits the host cannot enforce only warn (``limits: best-effort``)."""
        return self.limits == "best-effort"


class OptionDoc(_Doc):
    name: str
    value: ScalarStr
    description: str = ""
    icon: str = ""


class ParameterValidationDoc(_Doc):
    regex: str | None = None
    error: str | None = None
    min: float | None = None
    max: float | None = None
    monotonic: Literal["increasing", "decreasing"] | None = None


def _default_form(kind: object, has_options: bool) -> str:
    if kind == "bool":
        return "checkbox"
    if kind == "list(string)":
        return "multi-select" if has_options else "tag-select"
    return "dropdown" if has_options else "input"


_FORM_NEEDS_TYPE = {
    FormType.CHECKBOX: ParameterType.BOOL,
    FormType.SWITCH: ParameterType.BOOL,
    FormType.MULTI_SELECT: ParameterType.LIST_STRING,
    FormType.TAG_SELECT: ParameterType.LIST_STRING,
}
_FORM_NEEDS_OPTIONS = (FormType.DROPDOWN, FormType.RADIO, FormType.MULTI_SELECT)


class ParameterDoc(_Doc):
    """A value the workspace creator supplies. ``required`` is true when there is no default."""

    name: ParameterName
    display_name: str = ""
    description: str = ""
    type: ParameterType = ParameterType.STRING
    form_type: FormType = FormType.INPUT
    default: ScalarStr | None = None
    required: bool = True
    mutable: bool = False
    ephemeral: bool = False
    options: list[OptionDoc] = Field(default_factory=list[OptionDoc])
    validation: ParameterValidationDoc = Field(default_factory=ParameterValidationDoc)

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        filled = dict(cast("dict[str, Any]", data))
        if filled.get("required") is None:
            filled["required"] = filled.get("default") is None
        if filled.get("form_type") is None:
            filled["form_type"] = _default_form(
                filled.get("type", "string"), bool(filled.get("options"))
            )
        return filled

    @model_validator(mode="after")
    def _rules(self) -> ParameterDoc:
        problems: list[tuple[Loc, str]] = []
        if self.required and self.default is not None:
            problems.append((("required",), "cannot be true when the parameter has a default"))
        if self.ephemeral and not self.mutable:
            problems.append((("ephemeral",), "an ephemeral parameter must also be mutable"))
        for field in ("name", "value"):
            seen: set[str] = set()
            for i, option in enumerate(self.options):
                key: str = getattr(option, field)
                if key in seen:
                    problems.append(
                        (("options", i, field), f"duplicate option {field} {json.dumps(key)}")
                    )
                seen.add(key)
        needed = _FORM_NEEDS_TYPE.get(self.form_type)
        if needed is not None and self.type is not needed:
            problems.append((("form_type",), f"{self.form_type} needs type {needed}"))
        if self.form_type in _FORM_NEEDS_OPTIONS and not self.options:
            problems.append((("form_type",), f"{self.form_type} needs options"))
        problems += [(("validation", *loc), d) for loc, d in self._validation_problems()]
        if not problems and self.default is not None:
            problems += [(("default",), d) for d in value_problems(self, self.default)]
        if problems:
            raise RuleErrors(problems)
        return self

    def _validation_problems(self) -> list[tuple[Loc, str]]:
        rule = self.validation
        problems: list[tuple[Loc, str]] = []
        if rule.regex is not None:
            if self.type is not ParameterType.STRING:
                problems.append((("regex",), "applies only to string parameters"))
            try:
                re.compile(rule.regex)
            except re.error as err:
                problems.append((("regex",), f"invalid regex: {err}"))
        for field in ("min", "max", "monotonic"):
            if getattr(rule, field) is not None and self.type is not ParameterType.NUMBER:
                problems.append(((field,), "applies only to number parameters"))
        if rule.min is not None and rule.max is not None and rule.min > rule.max:
            problems.append((("max",), "must not be less than min"))
        return problems


class PrebuildsDoc(_Doc):
    instances: int = Field(default=0, ge=0, strict=True)
    """Warm workspaces of the preset to keep; a whole number, never ``true`` or ``"2"``.
    The site's cap (``BERTH_PREBUILDS_MAX``) is checked when the template is pushed."""


class PresetDoc(_Doc):
    """Named parameter values; ``prebuilds.instances`` warm workspaces are kept ready."""

    name: str = Field(min_length=1)
    description: str = ""
    default: bool = False
    parameters: dict[str, ScalarStr] = Field(default_factory=dict[str, str])
    prebuilds: PrebuildsDoc = Field(default_factory=PrebuildsDoc)


class ScriptDoc(_Doc):
    """A script the agent runs; ``blocks_login`` makes it part of the startup lifecycle.

    ``run_on: claim`` scripts run when a user claims a prebuilt workspace (after the
    start scripts, which ran for the prebuild's system user), for what depends on the
    owner, such as their git identity or dotfiles.
    """

    display_name: str = Field(min_length=1)
    run_on: Literal["start", "stop", "claim"] = "start"
    blocks_login: bool = False
    timeout: GoDuration = dt.timedelta(0)  # 0 = no limit
    script: str


class AgentDoc(_Doc):
    """An agent process in the workspace; ``chat: true`` marks the one the chat tools use."""

    name: Name
    chat: bool = False
    display_order: int = 0
    directory: str = ""
    external: bool = False
    connection_timeout: GoDuration = dt.timedelta(minutes=2)  # 0 = wait forever
    env: dict[str, ScalarStr] = Field(default_factory=dict[str, str])
    scripts: list[ScriptDoc] = Field(default_factory=list[ScriptDoc])

    @model_validator(mode="after")
    def _rules(self) -> AgentDoc:
        bad = [k for k in self.env if not ENV_NAME.fullmatch(k)]
        if bad:
            detail = "invalid variable name: use letters, digits and underscores, not first a digit"
            raise RuleErrors([(("env", k), detail) for k in bad])
        return self


class TemplateDoc(_Doc):
    """The whole ``template.yaml``."""

    name: Name
    display_name: str = ""
    description: str = ""
    icon: str = ""
    default_ttl: GoDuration = dt.timedelta(0)  # 0 = never autostop
    daily_cost: int = Field(default=0, ge=0)
    require_active_version: bool = False
    backend: BackendDoc = Field(default_factory=BackendDoc)
    prepare: str = ""
    parameters: list[ParameterDoc] = Field(default_factory=list[ParameterDoc])
    presets: list[PresetDoc] = Field(default_factory=list[PresetDoc])
    agents: list[AgentDoc] = Field(default_factory=list[AgentDoc])

    @property
    def has_external_agent(self) -> bool:
        """True if an agent runs on a host the user manages (chat tools refuse these)."""
        return any(a.external for a in self.agents)

    @model_validator(mode="after")
    def _rules(self) -> TemplateDoc:
        problems = _unique("agents", [a.name for a in self.agents], "agent name")
        problems += _unique("parameters", [p.name for p in self.parameters], "parameter name")
        problems += _unique("presets", [p.name for p in self.presets], "preset name")
        chat = [(i, a.name) for i, a in enumerate(self.agents) if a.chat]
        for i, name in chat[1:]:
            detail = f'only one agent may have chat: true; "{chat[0][1]}" and "{name}" both do'
            problems.append((("agents", i, "chat"), detail))
        defaults = [(i, p.name) for i, p in enumerate(self.presets) if p.default]
        for i, name in defaults[1:]:
            detail = f'only one preset may be the default; "{defaults[0][1]}" and "{name}" both are'
            problems.append((("presets", i, "default"), detail))
        params = {p.name: p for p in self.parameters}
        for i, preset in enumerate(self.presets):
            for key, value in preset.parameters.items():
                loc: Loc = ("presets", i, "parameters", key)
                if key not in params:
                    problems.append((loc, f'no parameter named "{key}" in this template'))
                else:
                    problems += [(loc, d) for d in value_problems(params[key], value)]
        if problems:
            raise RuleErrors(problems)
        return self


def _unique(section: str, names: list[str], what: str) -> list[tuple[Loc, str]]:
    seen: set[str] = set()
    problems: list[tuple[Loc, str]] = []
    for i, name in enumerate(names):
        if name in seen:
            problems.append(((section, i, "name"), f'duplicate {what} "{name}"'))
        seen.add(name)
    return problems


# --- loading --------------------------------------------------------------------


def parse_template(yaml_text: str, *, filename: str = "template.yaml") -> TemplateDoc:
    """Parse and check a ``template.yaml``; raise :class:`TemplateError` naming ``filename``."""
    data = load_yaml(yaml_text, filename=filename)
    if not isinstance(data, dict):
        detail = f"the top level must be a mapping of fields, got {kind_of(data)}"
        raise refuse(filename, DOCUMENT, detail)
    return validate_template_data(cast("dict[str, Any]", data), filename=filename)


def validate_template_data(data: dict[str, Any], *, filename: str) -> TemplateDoc:
    """Validate already-parsed data (a stored or rendered document) into a TemplateDoc."""
    try:
        return TemplateDoc.model_validate(data)
    except ValidationError as err:
        raise invalid_template(filename, errors_from_pydantic(err, TemplateDoc)) from None


@dataclass(frozen=True, slots=True)
class LoadedTemplate:
    """A template folder: the checked document, its README (or ""), and the YAML as written."""

    doc: TemplateDoc
    readme: str
    yaml_text: str


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise refuse(str(path), DOCUMENT, "not UTF-8 text") from None
    except OSError as err:
        raise refuse(str(path), DOCUMENT, f"cannot read: {err.strerror}") from None


def load_template_dir(path: Path) -> LoadedTemplate:
    """Load ``template.yaml`` (or ``template.yml``) and the optional ``README.md`` in ``path``."""
    candidates = [path / n for n in ("template.yaml", "template.yml") if (path / n).is_file()]
    if not candidates:
        raise refuse(str(path / "template.yaml"), DOCUMENT, "no template.yaml in this folder")
    if len(candidates) > 1:
        detail = "both template.yaml and template.yml exist; keep one"
        raise refuse(str(candidates[0]), DOCUMENT, detail)
    yaml_text = _read(candidates[0])
    doc = parse_template(yaml_text, filename=str(candidates[0]))
    readme = path / "README.md"
    readme_text = _read(readme) if readme.is_file() else ""
    return LoadedTemplate(doc=doc, readme=readme_text, yaml_text=yaml_text)
