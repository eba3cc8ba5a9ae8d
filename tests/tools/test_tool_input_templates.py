"""Issue 8's tool-input checks for the tools that need no agent: create_workspace,
list_templates, read_template, start_workspace and stop_workspace.

Their arguments reach the database, not a workspace: a NUL byte in a build parameter
was a raw ``invalid byte sequence for encoding "UTF8": 0x00`` from Postgres, with
the SQL, as the tool's answer. Now it is refused as an argument, on both databases;
and random and adversarial arguments (any characters, lone surrogates, pages of
±2⁶⁴, wrong types) always get a result or a clear text error, never a database
error or a ``<tool> failed: …``. Each property runs a bounded number of examples.
"""

from __future__ import annotations

from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from berth.records import Template
from berth.tools.result import ToolResult
from tests.support.tool_results import error_of, result_of
from tests.support.tools import World

pytestmark = pytest.mark.anyio

SIZED: dict[str, Any] = {
    "parameters": [
        {"name": "size", "default": "small", "mutable": True},
        {"name": "region", "default": "us", "mutable": True},
    ],
    "presets": [{"name": "big", "parameters": {"size": "large", "region": "eu"}}],
}
NUL_PARAMETERS = "invalid arguments: parameters: names and values must not contain NUL bytes"

PROPERTIES = settings(
    max_examples=25,
    deadline=None,
    database=None,  # nothing written into the tree
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Any character at all: NUL and other controls, lone surrogates, astral planes.
NASTY = st.one_of(
    st.text(max_size=20),
    st.text(st.characters(exclude_categories=()), max_size=20),
    st.sampled_from(["", " ", "\0", "a\0b", "\ud800", "\x01\x7f", "é" * 1000, "large"]),
)
WRONG_TYPES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)


@pytest.fixture
async def sized(world: World) -> Template:
    return await world.template("sized", **SIZED)


def _has_nul(parameters: object) -> bool:
    if not isinstance(parameters, dict):
        return False
    items = cast(dict[Any, Any], parameters).items()
    return any("\0" in str(key) or "\0" in str(value) for key, value in items)


def _has_lone_surrogate(parameters: object) -> bool:
    """Text that is not valid UTF-8: its own error, which may come before the NUL one."""
    if not isinstance(parameters, dict):
        return False
    for item in cast(dict[Any, Any], parameters).items():
        for text in map(str, item):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                return True
    return False


def _sound(tool: str, result: ToolResult) -> None:
    """A result, or a text error that is not a crash or a database error."""
    if result.is_error:
        assert not result.text.startswith(f"{tool} failed:"), result.text[:500]
        assert "internal error" not in result.text, result.text[:500]
    else:
        assert isinstance(result.structured, dict)
    for leak in ("sqlalchemy", "[SQL:", "asyncpg", "sqlite3", "invalid byte sequence"):
        assert leak not in result.text, result.text[:500]


@pytest.mark.spec("cw.parameters")
@pytest.mark.parametrize("parameters", [{"size": "a\0b"}, {"si\0ze": "large"}])
async def test_nul_bytes_in_parameters_are_a_clear_error(
    world: World, sized: Template, parameters: dict[str, str]
) -> None:
    result = await world.create(template_id=str(sized.id), name="p", parameters=parameters)
    assert error_of(result) == NUL_PARAMETERS
    assert await world.workspaces() == []
    ok = result_of(await world.create(template_id=str(sized.id), parameters={"size": "a\x01b"}))
    assert ok["created"] is True


def _mostly(common: st.SearchStrategy[Any], *rare: st.SearchStrategy[Any]) -> Any:
    """``common`` half of the time, else one of ``rare``."""
    return st.booleans().flatmap(lambda pick: common if pick else st.one_of(*rare))


@settings(PROPERTIES, max_examples=20)  # half of them build a workspace
@given(
    template_id=_mostly(st.just("SIZED"), st.uuids().map(str), NASTY, WRONG_TYPES),
    name=st.one_of(st.none(), NASTY, st.just("x" * 10_000)),
    parameters=_mostly(
        st.dictionaries(
            st.sampled_from(["size", "region"]),
            st.one_of(NASTY, st.sampled_from(["\0", "a\0b"])),
            min_size=1,
            max_size=2,
        ),
        st.none(),
        st.dictionaries(NASTY, NASTY, max_size=2),
        WRONG_TYPES,
    ),
    preset_id=st.one_of(st.none(), st.uuids().map(str), NASTY),
)
async def test_create_workspace_with_random_arguments(
    world: World,
    sized: Template,
    template_id: object,
    name: str | None,
    parameters: object,
    preset_id: str | None,
) -> None:
    """Each example on a new chat, so the parameters reach the database when valid."""
    chat = await world.new_chat()
    arguments: dict[str, Any] = {"template_id": str(sized.id)}
    if template_id != "SIZED":
        arguments["template_id"] = template_id
    for key, value in (("name", name), ("parameters", parameters), ("preset_id", preset_id)):
        if value is not None:
            arguments[key] = value
    result = await world.call("create_workspace", arguments, chat_id=chat)
    _sound("create_workspace", result)
    if _has_nul(parameters) and not _has_lone_surrogate(parameters):
        assert NUL_PARAMETERS.removeprefix("invalid arguments: ") in result.text


@PROPERTIES
@given(
    call=st.one_of(
        st.tuples(
            st.just("list_templates"),
            st.fixed_dictionaries(
                {},
                optional={
                    "query": st.one_of(NASTY, WRONG_TYPES),
                    "page": st.one_of(st.integers(-(2**64), 2**64), WRONG_TYPES),
                },
            ),
        ),
        st.tuples(
            st.just("read_template"),
            st.fixed_dictionaries(
                {},
                optional={
                    "template_id": st.one_of(
                        st.just("SIZED"), st.uuids().map(str), NASTY, WRONG_TYPES
                    )
                },
            ),
        ),
        st.tuples(
            st.sampled_from(["start_workspace", "stop_workspace"]),
            st.dictionaries(NASTY, WRONG_TYPES, min_size=1, max_size=2),
        ),
    )
)
async def test_template_and_lifecycle_tools_with_random_arguments(
    world: World, sized: Template, call: tuple[str, dict[str, Any]]
) -> None:
    tool, arguments = call
    if arguments.get("template_id") == "SIZED":
        arguments["template_id"] = str(sized.id)
    result = await world.call(tool, arguments)
    _sound(tool, result)
    if tool in ("start_workspace", "stop_workspace"):  # they take no arguments
        assert result.text.startswith("invalid arguments: "), result.text
    if tool == "read_template" and arguments.get("template_id") == str(sized.id):
        assert result_of(result)["template"]["id"] == str(sized.id)
    if tool == "list_templates" and not result.is_error:
        assert isinstance(result_of(result)["templates"], list)
