"""Templates over HTTP (DESIGN §5): push, versions, show, refusals that store nothing, delete."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.support.api import (
    LiveServer,
    count_rows,
    envelope,
    fields,
    json_list,
    ok,
    template_files,
    template_yaml,
)

NAME = "api-test"


def _push(client: httpx.Client, files: dict[str, str], **extra: Any) -> httpx.Response:
    return client.post("/templates", json={"files": files, **extra})


def test_push_creates_then_adds_an_active_version(admin: httpx.Client) -> None:
    first = ok(_push(admin, template_files(NAME)), 201)
    assert first["created"] is True
    template, version = first["template"], first["version"]
    assert template["name"] == NAME
    assert template["description"] == "The first version."
    assert template["active_version_id"] == version["id"]
    assert version["template_id"] == template["id"]
    assert version["name"] == "v1"
    assert version["readme"].startswith(f"# {NAME}")
    me = ok(admin.get("/users/me"))
    assert version["created_by"] == me["id"]

    second = ok(_push(admin, template_files(NAME, description="The second version.")), 200)
    assert second["created"] is False
    assert second["template"]["id"] == template["id"]
    assert second["version"]["id"] != version["id"]
    assert second["version"]["name"] == "v2"
    assert second["template"]["active_version_id"] == second["version"]["id"]

    shown = ok(admin.get(f"/templates/{NAME}"))
    assert shown["description"] == "The second version."
    assert shown["active_version_id"] == second["version"]["id"]
    assert shown["active_version"]["id"] == second["version"]["id"]
    versions = json_list(admin.get(f"/templates/{NAME}/versions"))
    assert [v["name"] for v in versions] == ["v1", "v2"]
    assert [v["id"] for v in versions] == [version["id"], second["version"]["id"]]
    assert json_list(admin.get(f"/templates/{template['id']}/versions")) == versions
    listed = [t for t in json_list(admin.get("/templates")) if t["name"] == NAME]
    assert len(listed) == 1
    assert listed[0]["active_version_id"] == second["version"]["id"]


def test_show_returns_the_parameters_and_presets_of_the_yaml(admin: httpx.Client) -> None:
    pushed = ok(_push(admin, template_files(NAME)), 201)
    by_name = ok(admin.get(f"/templates/{NAME}"))
    by_id = ok(admin.get(f"/templates/{pushed['template']['id']}"))
    assert by_name == by_id
    assert by_name["id"] == pushed["template"]["id"]
    assert by_name["display_name"] == "API test"
    assert by_name["icon"] == "/icon/test.svg"
    assert by_name["default_ttl"] == "2h0m0s"
    assert by_name["daily_cost"] == 3
    assert by_name["require_active_version"] is False
    assert by_name["deprecated"] == ""

    region, cpus = by_name["parameters"]
    assert region == {
        "name": "region",
        "display_name": "Region",
        "description": "Where the workspace runs.",
        "type": "string",
        "form_type": "dropdown",
        "default": "eu",
        "required": False,
        "mutable": False,
        "ephemeral": False,
        "options": [
            {"name": "Europe", "value": "eu", "description": "Frankfurt", "icon": "/icon/eu.svg"},
            {"name": "United States", "value": "us", "description": "", "icon": ""},
        ],
        "validation_regex": "",
        "validation_error": "",
        "validation_min": None,
        "validation_max": None,
        "validation_monotonic": "",
    }
    assert cpus["name"] == "cpus"
    assert cpus["type"] == "number"
    assert cpus["form_type"] == "input"
    assert cpus["default"] == "2"
    assert cpus["mutable"] is True
    assert cpus["options"] == []
    assert (cpus["validation_min"], cpus["validation_max"]) == (1, 8)
    assert cpus["validation_monotonic"] == "increasing"

    (preset,) = by_name["presets"]
    uuid.UUID(preset["id"])
    assert preset["name"] == "big"
    assert preset["description"] == "Eight CPUs in the US"
    assert preset["default"] is True
    assert preset["desired_prebuild_instances"] == 2
    assert sorted((p["name"], p["value"]) for p in preset["parameters"]) == [
        ("cpus", "8"),
        ("region", "us"),
    ]


# --- refusals: each is a 422 naming the field, and nothing is stored -----------------------

_VALID = template_yaml(NAME)
_BAD_DOCUMENTS: list[tuple[str, dict[str, str], str]] = [
    (
        "unknown top-level field",
        {"template.yaml": _VALID + "colour: red\n"},
        "colour",
    ),
    (
        "unknown nested field",
        {"template.yaml": _VALID.replace("backend:\n", "backend:\n  cores: 4\n")},
        "backend.cores",
    ),
    (
        "unknown field in a list item",
        {"template.yaml": _VALID + "    colour: red\n"},
        "agents[0].colour",
    ),
    (
        "invalid name",
        {"template.yaml": _VALID.replace(f"name: {NAME}\n", "name: Bad_Name!\n", 1)},
        "name",
    ),
    (
        "unknown parameter type",
        {"template.yaml": _VALID.replace("    type: number\n", "    type: integer\n")},
        "parameters[1].type",
    ),
    (
        "preset naming a missing parameter",
        {"template.yaml": _VALID.replace('      cpus: "8"\n', '      memory: "8"\n')},
        "presets[0].parameters.memory",
    ),
    (
        "prebuilds of a template with an external agent",
        {"template.yaml": _VALID + "  - name: laptop\n    external: true\n"},
        "presets[0].prebuilds.instances",
    ),
    (
        "two chat agents",
        {"template.yaml": _VALID + "  - name: second\n    chat: true\n"},
        "agents[1].chat",
    ),
    (
        "invalid YAML",
        {"template.yaml": f"name: {NAME}\nagents: [\n  {{name: main\n"},
        "(document)",
    ),
    (
        "no template.yaml",
        {"README.md": "# only a readme\n"},
        "files",
    ),
    (
        "unknown file",
        {"template.yaml": _VALID, "notes.txt": "hello\n"},
        "files.notes.txt",
    ),
    (
        "both template.yaml and template.yml",
        {"template.yaml": _VALID, "template.yml": _VALID},
        "files",
    ),
    (
        "prebuild instances true",
        {"template.yaml": _VALID.replace("instances: 2", "instances: true")},
        "presets[0].prebuilds.instances",
    ),
    (
        "prebuild instances a string",
        {"template.yaml": _VALID.replace("instances: 2", 'instances: "2"')},
        "presets[0].prebuilds.instances",
    ),
    (
        "prebuild instances negative",
        {"template.yaml": _VALID.replace("instances: 2", "instances: -1")},
        "presets[0].prebuilds.instances",
    ),
    (
        "prebuild instances above the site's cap (BERTH_PREBUILDS_MAX, 100)",
        {"template.yaml": _VALID.replace("instances: 2", "instances: 101")},
        "presets[0].prebuilds.instances",
    ),
    (
        "prebuilds of all presets above the site's cap",
        {
            "template.yaml": _VALID.replace(
                "      instances: 2\n",
                "      instances: 60\n  - name: small\n    prebuilds: {instances: 41}\n",
            )
        },
        "presets",
    ),
    (
        "the YAML is not a mapping",
        {"template.yaml": "- just\n- a list\n"},
        "(document)",
    ),
]


@pytest.mark.parametrize(
    ("files", "field"),
    [pytest.param(files, field, id=case) for case, files, field in _BAD_DOCUMENTS],
)
def test_a_bad_push_is_refused_and_stores_nothing(
    admin: httpx.Client, database_url: str, files: dict[str, str], field: str
) -> None:
    ok(_push(admin, template_files(NAME)), 201)
    before_rows = count_rows(database_url)
    before_list = json_list(admin.get("/templates"))
    before_versions = json_list(admin.get(f"/templates/{NAME}/versions"))

    body = envelope(_push(admin, files), 422)
    assert field in fields(body), body
    assert "Traceback" not in str(body)

    assert count_rows(database_url) == before_rows
    assert json_list(admin.get("/templates")) == before_list
    assert json_list(admin.get(f"/templates/{NAME}/versions")) == before_versions


def test_template_validation_names_the_file_the_field_and_the_rule(admin: httpx.Client) -> None:
    files = {"template.yml": _VALID.replace("    type: number\n", "    type: integer\n")}
    body = envelope(_push(admin, files), 422)
    assert "template.yml" in body["message"]
    (problem,) = body["validations"]
    assert problem["field"] == "parameters[1].type"
    assert "string" in problem["detail"]
    assert "number" in problem["detail"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"files": {"template.yaml": _VALID}, "colour": "red"}, "colour"),
        ({"file": {"template.yaml": _VALID}}, "files"),
        ({"files": {"template.yaml": 42}}, "files.template.yaml"),
        ({"files": ["template.yaml"]}, "files"),
    ],
    ids=["unknown key", "misspelt key", "file content not a string", "files not a mapping"],
)
def test_a_bad_push_request_is_refused_in_the_envelope(
    admin: httpx.Client, database_url: str, payload: dict[str, Any], field: str
) -> None:
    before = count_rows(database_url)
    body = envelope(admin.post("/templates", json=payload), 422)
    assert field in fields(body), body
    assert count_rows(database_url) == before


def test_push_to_an_unknown_organization_is_404(admin: httpx.Client, database_url: str) -> None:
    before = count_rows(database_url)
    body = envelope(_push(admin, template_files(NAME), organization="nowhere"), 404)
    assert body["message"] == "organization not found"
    assert count_rows(database_url) == before


def test_delete_hides_the_template_and_frees_its_name(
    admin: httpx.Client, live_server: LiveServer
) -> None:
    pushed = ok(_push(admin, template_files(NAME)), 201)
    template_id = pushed["template"]["id"]

    response = admin.delete(f"/templates/{NAME}")
    assert response.status_code == 204, response.text
    assert response.content == b""

    assert envelope(admin.get(f"/templates/{NAME}"), 404) == {"message": "template not found"}
    assert envelope(admin.get(f"/templates/{template_id}"), 404) == {
        "message": "template not found"
    }
    envelope(admin.get(f"/templates/{NAME}/versions"), 404)
    assert NAME not in {t["name"] for t in json_list(admin.get("/templates"))}
    assert envelope(admin.delete(f"/templates/{NAME}"), 404) == {"message": "template not found"}
    envelope(admin.delete(f"/templates/{template_id}"), 404)

    # The name is free again: a push makes a new template, not a version of the old one.
    again = ok(_push(admin, template_files(NAME)), 201)
    assert again["created"] is True
    assert again["template"]["id"] != template_id
    assert again["version"]["name"] == "v1"
    assert NAME in {t["name"] for t in json_list(admin.get("/templates"))}


def test_unknown_templates_are_404(admin: httpx.Client) -> None:
    missing = {"message": "template not found"}
    assert envelope(admin.get("/templates/no-such-template"), 404) == missing
    assert envelope(admin.get(f"/templates/{uuid.uuid4()}"), 404) == missing
    assert envelope(admin.get(f"/templates/{uuid.uuid4()}/versions"), 404) == missing
    assert envelope(admin.delete(f"/templates/{uuid.uuid4()}"), 404) == missing
