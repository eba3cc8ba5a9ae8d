"""The limit fields of a template's backend: ``pids``, ``tmp_size``, ``disk``, ``limits``."""

from __future__ import annotations

import pytest

from berth.domain.template import (
    DEFAULT_PIDS,
    TemplateDoc,
    TemplateError,
    parse_template,
)


def test_limits_default_to_what_the_design_says_and_stay_unset_in_the_document() -> None:
    doc = parse_template("name: t\nbackend: {type: local}\n")
    backend = doc.backend
    assert (backend.pids, backend.tmp_size, backend.disk) == (None, None, None)
    assert backend.pids_limit == DEFAULT_PIDS == 1024
    assert backend.tmp_size_bytes == 1024**3
    assert backend.disk_bytes is None
    assert backend.limits == "enforce"
    assert not backend.best_effort
    dumped = doc.model_dump(mode="json")["backend"]
    assert (dumped["pids"], dumped["tmp_size"], dumped["disk"]) == (None, None, None)


def test_limits_are_read_and_round_trip_through_a_stored_build() -> None:
    yaml_text = (
        "name: t\nbackend:\n  type: local\n  memory: 256m\n  pids: 200\n"
        "  tmp_size: 64m\n  disk: 2g\n  limits: best-effort\n"
    )
    doc = parse_template(yaml_text)
    backend = doc.backend
    assert (backend.pids_limit, backend.tmp_size_bytes) == (200, 64 * 1024**2)
    assert (backend.memory_bytes, backend.disk_bytes) == (256 * 1024**2, 2 * 1024**3)
    assert backend.best_effort
    again = TemplateDoc.model_validate(doc.model_dump(mode="json"))
    assert again == doc


@pytest.mark.parametrize(
    ("field", "value", "detail"),
    [
        ("pids", "0", "must be > 0"),
        ("pids", "many", "whole number"),
        ("tmp_size", "0", "invalid memory size"),
        ("tmp_size", "lots", "invalid memory size"),
        ("disk", "-1g", "invalid memory size"),
        ("limits", "sometimes", "best-effort"),
    ],
)
def test_bad_limits_are_refused_naming_the_field(field: str, value: str, detail: str) -> None:
    with pytest.raises(TemplateError) as refused:
        parse_template(f"name: t\nbackend:\n  type: local\n  {field}: {value}\n")
    (validation,) = refused.value.validations
    assert validation.field == f"backend.{field}"
    assert detail in validation.detail, validation.detail
