"""``orgbase functions``: the operator's functions from the command line."""

from __future__ import annotations

from pathlib import Path

import click

from orgbase.platform.cli_options import folder_option

DIR_OPTION = folder_option("ORGBASE_APP_FUNCTIONS_DIR", "functions")


@click.group()
def functions() -> None:
    """The operator's functions (/functions/v1/{name})."""


@functions.command("new")
@click.argument("name")
@DIR_OPTION
def functions_new(name: str, directory: Path) -> None:
    """Write a function from a template, with its test (functions/tests/)."""
    from orgbase.functions.template import TemplateError, new_function

    try:
        written = new_function(directory, name)
    except TemplateError as exc:
        raise click.ClickException(str(exc)) from exc
    for path in written:
        click.echo(f"created {path}")


@functions.command("list")
@DIR_OPTION
def functions_list(directory: Path) -> None:
    """The functions of the folder, their access, triggers and schedule (read, not run)."""
    from orgbase.functions.loader import load_catalog

    catalog = load_catalog(directory)
    if not catalog.functions:
        click.echo(f"no functions in {directory}")
    for spec in catalog.functions.values():
        config = spec.config
        line = f"{spec.name:24} {config.access:8} {','.join(config.methods)}"
        if config.triggers:
            line += f"  on {','.join(config.triggers)}"
        if config.schedule:
            line += f"  every {config.schedule!r}"
        if spec.error:
            line += f"  BROKEN: {spec.error}"
        click.echo(line)
