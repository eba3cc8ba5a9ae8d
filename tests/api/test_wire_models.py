"""One wire model: the client's models (:mod:`berth.client.models`) against the response
schemas of the served OpenAPI document, field by field.

For each client model, the response schema it reads (:data:`READS`): every field the
server sends is a field of the client model, every field the client declares is one the
server sends, a field the server may leave out has a default in the client, and the JSON
types agree — string (also uuid) ↔ ``str``, date-time ↔ ``datetime``, integer ↔
``int``, number ↔ ``float``, boolean ↔ ``bool``, arrays item by item, nested objects
through ``$ref`` to the schema the nested client model reads, nullable ↔ ``| None``.

The client is a tolerant reader (its models' docstring): a field with a default may
accept ``None`` ("not sent") where the server never sends null. Anything else the client
accepts beyond what the server sends is listed, with its reason, in :data:`TOLERATED`.
"""

from __future__ import annotations

import datetime as dt
import types
import typing
from collections.abc import Iterator
from typing import Any, cast

import pytest
from pydantic import BaseModel

from berth.api.app import create_app
from berth.client import models
from berth.settings import Settings

Schema = dict[str, Any]
# What a value may be on the wire: ("string",), ("datetime",), ("integer",), ("number",),
# ("boolean",), ("null",), ("array", <kinds of the items>), ("object", <schema name>).
Kind = tuple[Any, ...]
Kinds = frozenset[Kind]
ANY: Kinds = frozenset({("any",)})
NOTHING: Kinds = frozenset()
NULL: Kinds = frozenset({("null",)})

READS: dict[type[models.ApiModel], str] = {
    models.Health: "Health",
    models.Replica: "ReplicaOut",
    models.User: "UserOut",
    models.Token: "TokenOut",
    models.NewToken: "NewTokenOut",
    models.Organization: "OrganizationOut",
    models.Template: "TemplateOut",
    models.TemplateDetail: "TemplateDetailOut",
    models.Version: "VersionOut",
    models.ParameterOption: "OptionOut",
    models.Parameter: "ParameterOut",
    models.PresetParameter: "NameValue",
    models.Preset: "PresetOut",
    models.PushResult: "PushedOut",
    models.ConfigValue: "ConfigOut",
    models.Job: "JobOut",
    models.Build: "BuildOut",
    models.Agent: "AgentOut",
    models.HomeDisk: "HomeDiskOut",
    models.Workspace: "WorkspaceOut",
    models.LogEntry: "LogOut",
    models.AgentLogEntry: "AgentLogOut",
    models.ExecResult: "ExecOut",
    models.Chat: "ChatOut",
    models.AgentToken: "AgentTokenOut",
    models.Prebuild: "PrebuildOut",
    models.PrebuildPreset: "PrebuildPresetOut",
    models.PrebuildPool: "PrebuildPoolOut",
}
"""Each client model and the response schema it reads."""

TOLERATED: dict[tuple[str, str], str] = {
    # A server from before deprecation messages sent a flag.
    ("Template", "deprecated"): "str | bool: a bool from servers that send one",
    # Parameter values are kept as the server sends them, so a server that types them
    # (numbers, booleans, lists) needs no new client.
    ("Parameter", "default"): "Any: the default as the server sends it",
    ("ParameterOption", "value"): "Any: the value as the server sends it",
    ("PresetParameter", "value"): "Any: the value as the server sends it",
}
"""Client fields that accept more than the server sends, on purpose: (model, field); a
subclass (``TemplateDetail``) inherits its base's."""


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> Schema:
    """The OpenAPI document as served (no lifespan runs, no database is opened)."""
    app = create_app(Settings(data_dir=tmp_path_factory.mktemp("wire")))
    return app.openapi()


def schemas(document: Schema) -> dict[str, Schema]:
    return cast("dict[str, Schema]", document["components"]["schemas"])


def ref_name(node: Schema) -> str | None:
    ref = node.get("$ref")
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None


def refs_in(node: object) -> Iterator[str]:
    """The schema names a node refers to, at any depth."""
    if isinstance(node, dict):
        mapping = cast("Schema", node)
        name = ref_name(mapping)
        if name is not None:
            yield name
        for value in mapping.values():
            yield from refs_in(value)
    elif isinstance(node, list):
        for item in cast("list[object]", node):
            yield from refs_in(item)


def response_schemas(document: Schema) -> set[str]:
    """Every schema a response of some path sends, nested ones included."""
    found: set[str] = set()
    todo = [
        name
        for path in cast("dict[str, Schema]", document["paths"]).values()
        for operation in path.values()
        for response in cast("dict[str, Schema]", operation.get("responses", {})).values()
        for name in refs_in(response.get("content", {}))
    ]
    while todo:
        name = todo.pop()
        if name not in found:
            found.add(name)
            todo.extend(refs_in(schemas(document)[name]))
    return found


def server_kinds(node: Schema) -> Kinds:
    """What the server may send for a property schema."""
    name = ref_name(node)
    if name is not None:
        return frozenset({("object", name)})
    if "anyOf" in node:
        return NOTHING.union(*(server_kinds(n) for n in cast("list[Schema]", node["anyOf"])))
    kind = node.get("type")
    if kind == "string":
        return frozenset({("datetime",) if node.get("format") == "date-time" else ("string",)})
    if kind in ("integer", "number", "boolean", "null"):
        return frozenset({(kind,)})
    if kind == "array":
        return frozenset({("array", server_kinds(cast("Schema", node["items"])))})
    raise AssertionError(f"a property schema this test does not know: {node}")


def client_kinds(annotation: object) -> Kinds:
    """What a client field annotation accepts."""
    if annotation is Any:
        return ANY
    origin = typing.get_origin(annotation)
    if origin in (types.UnionType, typing.Union):
        return NOTHING.union(*(client_kinds(a) for a in typing.get_args(annotation)))
    if origin is list:
        (item,) = typing.get_args(annotation)
        return frozenset({("array", client_kinds(item))})
    simple: dict[object, Kind] = {
        str: ("string",),
        int: ("integer",),
        float: ("number",),
        bool: ("boolean",),
        type(None): ("null",),
    }
    if annotation in simple:
        return frozenset({simple[annotation]})
    if annotation is dt.datetime:
        return frozenset({("datetime",)})
    if isinstance(annotation, type) and issubclass(annotation, models.ApiModel):
        assert annotation in READS, f"nested model {annotation.__name__} is not in READS"
        return frozenset({("object", READS[annotation])})
    raise AssertionError(f"a client annotation this test does not know: {annotation!r}")


def tolerated(model: type[BaseModel], field: str) -> bool:
    return any((base.__name__, field) in TOLERATED for base in model.__mro__)


def drift(model: type[BaseModel], schema: Schema) -> list[str]:
    """How ``model`` and the response schema it reads disagree; [] when they agree."""
    sent = cast("dict[str, Schema]", schema.get("properties", {}))
    always_sent = set(cast("list[str]", schema.get("required", [])))
    fields = model.model_fields
    name = model.__name__
    problems = [f"{name} lacks {field!r}, which the server sends" for field in sent.keys() - fields]
    problems += [
        f"{name}.{field} is not in the server's {schema['title']}" for field in fields.keys() - sent
    ]
    for field in sorted(sent.keys() & fields.keys()):
        info = fields[field]
        if field not in always_sent and info.is_required():
            problems.append(f"{name}.{field} is required, but the server may leave it out")
        wire, accepted = server_kinds(sent[field]), client_kinds(info.annotation)
        if tolerated(model, field):
            if accepted == wire:
                problems.append(f"{name}.{field} reads just what the server sends: untolerate it")
            elif accepted != ANY and not wire <= accepted:
                problems.append(f"{name}.{field} cannot read {sorted(wire - accepted)}")
            continue
        if accepted == ANY:
            problems.append(f"{name}.{field} accepts anything: type it, or add it to TOLERATED")
            continue
        if not wire <= accepted:
            problems.append(f"{name}.{field} cannot read {sorted(wire - accepted)}")
        extra = accepted - wire
        if extra == NULL and not info.is_required() and info.default is None:
            extra = NOTHING  # None as the default: "not sent", as a tolerant reader does
        if extra:
            problems.append(f"{name}.{field} accepts {sorted(extra)}, which the server never sends")
    return problems


def test_every_client_model_that_mirrors_a_response_is_mapped() -> None:
    exported = {getattr(models, n) for n in models.__all__}
    api_models = {m for m in exported if isinstance(m, type) and issubclass(m, models.ApiModel)}
    assert api_models - {models.ApiModel} == set(READS)


def test_the_mapped_schemas_are_served_as_responses(document: Schema) -> None:
    assert set(READS.values()) <= response_schemas(document)


@pytest.mark.parametrize("model", list(READS), ids=lambda m: m.__name__)
def test_the_client_model_matches_the_response_schema_it_reads(
    model: type[models.ApiModel], document: Schema
) -> None:
    assert drift(model, schemas(document)[READS[model]]) == []


def test_every_tolerated_field_is_one_both_sides_have(document: Schema) -> None:
    by_name = {model.__name__: model for model in READS}
    for name, field in TOLERATED:
        model = by_name[name]
        assert field in model.model_fields, (name, field)
        assert field in schemas(document)[READS[model]]["properties"], (name, field)


def test_drift_is_found() -> None:
    """The check itself: a field only one side has, and a type that changed, are found."""
    schema: Schema = {
        "title": "ConfigOut",
        "properties": {"key": {"type": "integer"}, "added": {"type": "string"}},
        "required": ["key", "added"],
    }
    assert drift(models.ConfigValue, schema) == [
        "ConfigValue lacks 'added', which the server sends",
        "ConfigValue.value is not in the server's ConfigOut",
        "ConfigValue.key cannot read [('integer',)]",
        "ConfigValue.key accepts [('string',)], which the server never sends",
    ]
