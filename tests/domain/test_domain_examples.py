"""The templates that ship with berth load and render."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from berth.domain.enums import BackendType, Isolation
from berth.domain.parameters import validate_parameter_values
from berth.domain.render import render_template
from berth.domain.template import load_template_dir

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "templates"


@pytest.mark.parametrize(
    ("folder", "backend"),
    [("local", BackendType.LOCAL), ("docker", BackendType.DOCKER)],
)
def test_example_templates_load_and_render(folder: str, backend: BackendType) -> None:
    loaded = load_template_dir(EXAMPLES / folder)
    doc = loaded.doc
    assert doc.backend.type is backend
    assert doc.default_ttl == dt.timedelta(hours=8)
    assert doc.daily_cost == 1
    assert loaded.readme.strip()
    assert "---" not in loaded.readme.splitlines()[0]  # no front matter
    (agent,) = doc.agents
    assert (agent.name, agent.chat, agent.directory) == ("main", True, "~/project")
    (script,) = agent.scripts
    assert script.blocks_login
    assert script.run_on == "start"
    assert [p.name for p in doc.parameters] == ["repo_url"]
    values = validate_parameter_values(doc.parameters, {"repo_url": "https://example.com/r.git"})
    out = render_template(
        doc,
        parameters=values,
        workspace={"name": "ws"},
        owner={"name": "ann"},
        template={"name": doc.name},
    )
    assert "python3 --version" in out.agents[0].scripts[0].script
    assert "git --version" in out.agents[0].scripts[0].script
    assert "git clone https://example.com/r.git ." in out.agents[0].scripts[0].script
    assert out.agents[0].env["GIT_AUTHOR_NAME"] == "ann"


def test_local_example_is_sandboxed() -> None:
    assert load_template_dir(EXAMPLES / "local").doc.backend.isolation is Isolation.BWRAP


def test_docker_example_uses_the_local_image() -> None:
    assert load_template_dir(EXAMPLES / "docker").doc.backend.image == "berth-python:latest"
