"""Options that several ``orgbase`` command groups share."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click

F = TypeVar("F", bound=Callable[..., object])


def folder_option(envvar: str, default: str) -> Callable[[F], F]:
    """``--dir``: the operator's folder a command reads or writes (as ``directory``)."""
    return click.option(
        "--dir",
        "directory",
        type=click.Path(file_okay=False, path_type=Path),
        envvar=envvar,
        default=Path(default),
        show_default=True,
    )
