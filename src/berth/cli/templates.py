"""``berth templates push|list|show|versions|delete``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from berth.cli.common import (
    JSON,
    CliError,
    OrganizationOption,
    OutputOption,
    TokenOption,
    UrlOption,
    connect,
    new_app,
)
from berth.cli.output import (
    fmt_bool,
    fmt_time,
    fmt_value,
    print_fields,
    print_listing,
    print_models_json,
    print_table,
)

if TYPE_CHECKING:
    from berth.client import Parameter, Preset, Template, TemplateDetail, Version

__all__ = ["app"]

app = new_app("Templates: push a folder, list, show and delete.")

TemplateArg = Annotated[str, typer.Argument(metavar="TEMPLATE", help="Template name or id.")]


@app.command("push")
def push(
    folder: Annotated[
        Path,
        typer.Argument(
            metavar="DIR",
            help="A template folder: template.yaml and an optional README.md.",
            show_default=False,
        ),
    ],
    organization: OrganizationOption = None,
    output: OutputOption = "table",
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Push a template folder as a new active version.

    The first push of a name creates the template.
    """
    from berth.client import read_template_folder

    files = read_template_folder(folder)  # before connecting: a typo fails fast
    with connect(url, token) as client:
        result = client.push_template(files, organization=organization)
    if output == JSON:
        print_models_json(result)
        return
    template, version = result.template, result.version
    named = f" {version.name}" if version.name else ""
    if result.created:
        typer.echo(f"Created template {template.name} with version{named}.")
    else:
        typer.echo(f"Pushed version{named} of template {template.name}; it is now active.")


@app.command("list")
def list_(
    organization: OrganizationOption = None,
    output: OutputOption = "table",
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """List templates."""
    with connect(url, token) as client:
        templates = client.list_templates(organization=organization)
    print_listing(
        templates,
        output,
        ["NAME", "DISPLAY NAME", "DEFAULT TTL", "DAILY COST", "UPDATED", "ID"],
        _template_row,
        empty="No templates: push one with berth templates push DIR.",
    )


@app.command("show")
def show(
    template: TemplateArg,
    organization: OrganizationOption = None,
    output: OutputOption = "table",
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Show a template with its active version, parameters and presets."""
    with connect(url, token) as client:
        detail = client.get_template(template, organization=organization)
    if output == JSON:
        print_models_json(detail)
        return
    _print_detail(detail)


@app.command("versions")
def versions(
    template: TemplateArg,
    organization: OrganizationOption = None,
    output: OutputOption = "table",
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """List a template's versions."""
    with connect(url, token) as client:
        found = client.list_template_versions(template, organization=organization)
    print_listing(
        found, output, ["NAME", "CREATED", "CREATED BY", "EXTERNAL AGENT", "ID"], _version_row
    )


@app.command("delete")
def delete(
    template: TemplateArg,
    organization: OrganizationOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Delete a template."""
    if not yes and not typer.confirm(f"Delete template {template}?", err=True):
        raise CliError("not deleted")
    with connect(url, token) as client:
        client.delete_template(template, organization=organization)
    typer.echo(f"Deleted template {template}.")


def _template_row(template: Template) -> list[str]:
    return [
        template.name + (" (deprecated)" if template.is_deprecated else ""),
        template.display_name,
        template.default_ttl,
        str(template.daily_cost),
        fmt_time(template.updated_at),
        template.id,
    ]


def _version_row(version: Version) -> list[str]:
    return [
        version.name,
        fmt_time(version.created_at),
        version.created_by or "-",
        fmt_bool(version.has_external_agent),
        version.id,
    ]


def _print_detail(detail: TemplateDetail) -> None:
    version = detail.active_version
    title = detail.name + (f" — {detail.display_name}" if detail.display_name else "")
    print_fields(
        [
            ("Description", detail.description or "-"),
            ("ID", detail.id),
            ("Organization", detail.organization_id or "-"),
            ("Active version", f"{version.name} ({version.id})" if version else "-"),
            ("Default TTL", detail.default_ttl),
            ("Daily cost", str(detail.daily_cost)),
            ("Deprecated", _deprecation(detail)),
            ("Requires active version", fmt_bool(detail.require_active_version)),
            ("Updated", fmt_time(detail.updated_at)),
        ],
        title=title,
    )
    if detail.parameters:
        typer.echo()
        print_table(
            ["NAME", "TYPE", "DEFAULT", "REQUIRED", "MUTABLE", "OPTIONS", "DESCRIPTION"],
            [_parameter_row(p) for p in detail.parameters],
            title="Parameters",
        )
    if detail.presets:
        typer.echo()
        print_table(
            ["NAME", "DEFAULT", "PREBUILDS", "PARAMETERS", "DESCRIPTION"],
            [_preset_row(p) for p in detail.presets],
            title="Presets",
        )


def _deprecation(template: Template) -> str:
    if isinstance(template.deprecated, str) and template.deprecated:
        return f"yes: {template.deprecated}"
    return fmt_bool(template.is_deprecated)


def _parameter_row(parameter: Parameter) -> list[str]:
    return [
        parameter.name,
        parameter.type,
        fmt_value(parameter.default),
        fmt_bool(parameter.required),
        fmt_bool(parameter.mutable),
        ", ".join(fmt_value(option.value) for option in parameter.options) or "-",
        parameter.description,
    ]


def _preset_row(preset: Preset) -> list[str]:
    values = ", ".join(f"{p.name}={fmt_value(p.value)}" for p in preset.parameters)
    return [
        preset.name,
        fmt_bool(preset.default),
        str(preset.desired_prebuild_instances or 0),
        values or "-",
        preset.description,
    ]
