"""Every requirement of the chat-tools spec has a test that names it, and vice versa.

Tests name requirements with ``@pytest.mark.spec("id", …)``. The manifest
``tests/spec/requirements.txt`` lists the ids; this module checks that it covers the
spec (when ``../shared/spec/chat-tools.md`` is present, as in CI), that every id in it
is named by a test, and that tests name no id outside it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
MANIFEST = TESTS / "spec" / "requirements.txt"
SPEC = TESTS.parent.parent / "shared" / "spec" / "chat-tools.md"
SPEC_ID = re.compile(r"\[([a-z][a-z0-9.*-]*)\]")


def manifest_ids() -> set[str]:
    lines = MANIFEST.read_text().splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def spec_ids(text: str) -> set[str]:
    return set(SPEC_ID.findall(text))


def _spec_marker_ids(node: ast.AST) -> list[str]:
    """Ids in ``pytest.mark.spec("a", "b")`` (as decorator or in ``pytestmark``)."""
    found: list[str] = []
    for call in ast.walk(node):
        if not isinstance(call, ast.Call):
            continue
        func = call.func
        if isinstance(func, ast.Attribute) and func.attr == "spec":
            found += [
                a.value
                for a in call.args
                if isinstance(a, ast.Constant) and isinstance(a.value, str)
            ]
    return found


def named_ids() -> dict[str, list[str]]:
    """Each id named by a test, with the files that name it."""
    named: dict[str, list[str]] = {}
    for path in TESTS.rglob("test_*.py"):
        for requirement in _spec_marker_ids(ast.parse(path.read_text())):
            named.setdefault(requirement, []).append(str(path.relative_to(TESTS)))
    return named


def test_manifest_covers_the_spec() -> None:
    if not SPEC.is_file():
        pytest.skip(f"the spec is not at {SPEC}; the manifest cannot be compared with it")
    manifest = manifest_ids()
    missing: list[str] = []
    for requirement in sorted(spec_ids(SPEC.read_text())):
        if requirement.endswith(".*"):
            prefix = requirement[:-1]
            if not any(m.startswith(prefix) for m in manifest):
                missing.append(requirement)
        elif requirement not in manifest:
            missing.append(requirement)
    assert missing == [], f"spec requirements missing from {MANIFEST.name}: {missing}"


def test_every_requirement_is_named_by_a_test() -> None:
    untested = sorted(manifest_ids() - set(named_ids()))
    assert untested == [], f"requirements no test names: {untested}"


def test_tests_name_only_known_requirements() -> None:
    unknown = {r: files for r, files in named_ids().items() if r not in manifest_ids()}
    assert unknown == {}, f"tests name ids that are not in {MANIFEST.name}: {unknown}"
