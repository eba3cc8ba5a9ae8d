"""The template document: what a valid one reads as, and the folder loader.

The rules a document must follow, and how a refusal is reported, are in
``test_domain_template_errors.py``.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest

from berth.domain.enums import BackendType, FormType, Isolation, ParameterType
from berth.domain.template import TemplateDoc, TemplateError, load_template_dir, parse_template

DESIGN_EXAMPLE = """
name: python
display_name: Python 3
description: Debian with Python 3 and git. Pick this for Python work.
icon: /icon/python.svg
default_ttl: 8h
daily_cost: 1
require_active_version: false
backend:
  type: local
  isolation: bwrap
  network: true
  cpus: 2
  memory: 2g
prepare: |
  echo preparing
parameters:
  - name: repo_url
    display_name: Repository
    description: Cloned into ~/project on first start.
    type: string
    form_type: input
    default: ""
    required: false
    mutable: false
    ephemeral: false
    options: []
    validation: {}
  - name: cpus
    type: number
    default: 2
    validation: {min: 1, max: 8}
presets:
  - name: small
    description: One CPU
    default: true
    parameters: {cpus: "1"}
    prebuilds: {instances: 2}
agents:
  - name: main
    chat: true
    display_order: 0
    directory: ~/project
    external: false
    connection_timeout: 2m
    env: {GIT_AUTHOR_NAME: "{{ owner.name }}"}
    scripts:
      - display_name: clone
        run_on: start
        blocks_login: true
        timeout: 5m
        script: |
          [ -z "{{ parameters.repo_url }}" ] || git clone "{{ parameters.repo_url }}" .
"""


def test_design_example_loads() -> None:
    doc = parse_template(DESIGN_EXAMPLE)
    assert doc.name == "python"
    assert doc.default_ttl == dt.timedelta(hours=8)
    assert doc.daily_cost == 1
    assert doc.backend.type is BackendType.LOCAL
    assert doc.backend.isolation is Isolation.BWRAP
    assert doc.backend.memory_bytes == 2 * 1024**3
    assert doc.prepare == "echo preparing\n"
    repo, cpus = doc.parameters
    assert (repo.type, repo.form_type, repo.default, repo.required) == (
        ParameterType.STRING,
        FormType.INPUT,
        "",
        False,
    )
    assert (cpus.default, cpus.validation.min, cpus.validation.max) == ("2", 1, 8)
    preset = doc.presets[0]
    assert (preset.default, preset.parameters, preset.prebuilds.instances) == (
        True,
        {"cpus": "1"},
        2,
    )
    agent = doc.agents[0]
    assert (agent.name, agent.chat, agent.directory) == ("main", True, "~/project")
    assert agent.connection_timeout == dt.timedelta(minutes=2)
    assert agent.scripts[0].timeout == dt.timedelta(minutes=5)
    assert agent.scripts[0].blocks_login is True
    assert not doc.has_external_agent


def test_defaults_of_a_minimal_template() -> None:
    doc = parse_template("name: tiny\n")
    assert doc.backend.type is BackendType.LOCAL
    assert doc.backend.isolation is Isolation.BWRAP
    assert doc.backend.network is True
    assert doc.default_ttl == dt.timedelta(0)
    assert (doc.agents, doc.parameters, doc.presets, doc.prepare) == ([], [], [], "")


def test_parameter_defaults() -> None:
    doc = parse_template(
        textwrap.dedent("""
        name: t
        parameters:
          - {name: a}
          - {name: b, default: x}
          - {name: c, type: bool, default: true}
          - {name: d, type: list(string), default: [x, y]}
          - {name: e, options: [{name: One, value: 1}], default: 1}
          - {name: f, type: list(string), options: [{name: X, value: x}], default: []}
        """)
    )
    a, b, c, d, e, f = doc.parameters
    assert (a.required, a.default, a.form_type) == (True, None, FormType.INPUT)
    assert (b.required, b.default) == (False, "x")
    assert (c.default, c.form_type) == ("true", FormType.CHECKBOX)
    assert (d.default, d.form_type) == ('["x", "y"]', FormType.TAG_SELECT)
    assert (e.default, e.form_type, e.options[0].value) == ("1", FormType.DROPDOWN, "1")
    assert f.form_type is FormType.MULTI_SELECT


def test_claim_scripts_parse() -> None:
    doc = parse_template(
        textwrap.dedent("""
        name: t
        agents:
          - name: a
            scripts:
              - {display_name: setup, script: make}
              - {display_name: identity, run_on: claim, blocks_login: true, script: git config}
        """)
    )
    assert [s.run_on for s in doc.agents[0].scripts] == ["start", "claim"]


def test_an_unknown_run_on_is_refused() -> None:
    with pytest.raises(TemplateError) as info:
        parse_template(
            "name: t\nagents: [{name: a, scripts: [{display_name: s, script: x, run_on: bogus}]}]\n"
        )
    assert {v.field for v in info.value.validations} == {"agents[0].scripts[0].run_on"}


def test_external_agent() -> None:
    doc = parse_template("name: t\nagents: [{name: a, external: true}]\n")
    assert doc.has_external_agent


def test_docker_and_fake_backends() -> None:
    docker = parse_template("name: t\nbackend: {type: docker, image: 'x:1', memory: 512m}\n")
    assert docker.backend.isolation is None
    assert docker.backend.memory_bytes == 512 * 1024**2
    fake = parse_template("name: t\nbackend: {type: fake, fake: {script: {fail: true}}}\n")
    assert fake.backend.fake == {"script": {"fail": True}}


def test_json_round_trip_keeps_go_durations() -> None:
    doc = parse_template(DESIGN_EXAMPLE)
    data = doc.model_dump(mode="json")
    assert data["default_ttl"] == "8h0m0s"
    assert data["agents"][0]["connection_timeout"] == "2m0s"
    assert TemplateDoc.model_validate(data) == doc


# --- loader ----------------------------------------------------------------------


def test_load_template_dir_reads_yaml_and_readme(tmp_path: Path) -> None:
    (tmp_path / "template.yaml").write_text("name: t\n")
    (tmp_path / "README.md").write_text("# T\nHello.\n")
    loaded = load_template_dir(tmp_path)
    assert loaded.doc.name == "t"
    assert loaded.readme == "# T\nHello.\n"
    assert loaded.yaml_text == "name: t\n"


def test_load_template_dir_accepts_yml_and_no_readme(tmp_path: Path) -> None:
    (tmp_path / "template.yml").write_text("name: t\n")
    loaded = load_template_dir(tmp_path)
    assert (loaded.doc.name, loaded.readme) == ("t", "")


def test_load_template_dir_refuses_missing_and_ambiguous(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match=r"template\.yaml is not a valid template") as info:
        load_template_dir(tmp_path)
    assert "no template.yaml" in info.value.validations[0].detail
    (tmp_path / "template.yaml").write_text("name: t\n")
    (tmp_path / "template.yml").write_text("name: t\n")
    with pytest.raises(TemplateError) as info:
        load_template_dir(tmp_path)
    assert "both template.yaml and template.yml" in info.value.validations[0].detail


def test_load_template_dir_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text("name: t\nagents: [{name: x, chat: maybe}]\n")
    with pytest.raises(TemplateError) as info:
        load_template_dir(tmp_path)
    assert info.value.message.startswith(str(path))
    assert info.value.validations[0].field == "agents[0].chat"


def test_load_template_dir_refuses_non_utf8(tmp_path: Path) -> None:
    (tmp_path / "template.yaml").write_bytes(b"name: \xff\n")
    with pytest.raises(TemplateError) as info:
        load_template_dir(tmp_path)
    assert info.value.validations[0].detail == "not UTF-8 text"
