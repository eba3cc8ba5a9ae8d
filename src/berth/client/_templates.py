"""Templates and their versions."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from berth.client._core import ClientCore, given, org_params, segment
from berth.client.files import read_template_folder
from berth.client.models import PushResult, Template, TemplateDetail, Version

__all__ = ["TemplatesApi"]


class TemplatesApi(ClientCore):
    def list_templates(self, organization: str | None = None) -> list[Template]:
        """Templates in ``organization`` (name or id), or in every organization visible."""
        return self._get_list(Template, "/templates", params=org_params(organization))

    def push_template(
        self,
        template: str | os.PathLike[str] | Mapping[str, str],
        organization: str | None = None,
    ) -> PushResult:
        """Push a template folder (or its files: ``{"template.yaml": …, "README.md": …}``).

        The first push creates the template; every push creates a version and makes it
        active. An invalid document raises :class:`ApiError` (422) whose validations
        name the file's fields.
        """
        if isinstance(template, Mapping):
            files = dict(template)
        else:
            files = read_template_folder(Path(template))
        body = {"files": files, **given(organization=organization)}
        return self._parse(PushResult, self._request("POST", "/templates", json=body))

    def get_template(self, template: str, organization: str | None = None) -> TemplateDetail:
        """A template by id or name (names are looked up in ``organization`` or the default
        organization), with its active version, parameters and presets."""
        path = f"/templates/{segment(template)}"
        return self._get(TemplateDetail, path, params=org_params(organization))

    def delete_template(self, template: str, organization: str | None = None) -> None:
        path = f"/templates/{segment(template)}"
        self._request("DELETE", path, params=org_params(organization))

    def list_template_versions(
        self, template: str, organization: str | None = None
    ) -> list[Version]:
        path = f"/templates/{segment(template)}/versions"
        return self._get_list(Version, path, params=org_params(organization))
