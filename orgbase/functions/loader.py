"""The catalog of functions: one module per function in the functions folder, read as
syntax (never imported here; the worker processes import them).

``whoami.py`` is the function ``whoami``; files whose name starts with ``_`` are helpers the
functions may import (the folder is on the workers' ``sys.path``), not functions.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

from orgbase.functions.spec import NAME, FunctionSpec, read_config


@dataclass(frozen=True)
class Catalog:
    directory: Path
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    fingerprint: tuple[tuple[str, int], ...] = ()
    """(file, mtime) of every module: a change of it means a reload."""

    def get(self, name: str) -> FunctionSpec | None:
        return self.functions.get(name)

    @property
    def usable(self) -> list[FunctionSpec]:
        return [spec for spec in self.functions.values() if spec.usable]


def fingerprint(directory: Path) -> tuple[tuple[str, int], ...]:
    """Every Python file of the folder with its modification time (sorted)."""
    if not directory.is_dir():
        return ()
    return tuple(sorted((p.name, p.stat().st_mtime_ns) for p in directory.glob("*.py")))


def load_catalog(directory: Path) -> Catalog:
    """Read every function module of ``directory`` (none when it does not exist)."""
    prints = fingerprint(directory)
    functions: dict[str, FunctionSpec] = {}
    for file_name, mtime in prints:
        if file_name.startswith("_"):
            continue
        path = directory / file_name
        spec = read_module(path)
        functions[spec.name] = FunctionSpec(
            name=spec.name, path=spec.path, config=spec.config, error=spec.error, mtime_ns=mtime
        )
    return Catalog(directory, functions, prints)


def read_module(path: Path) -> FunctionSpec:
    """A module's spec, with ``error`` set when it cannot be a function."""
    name = path.stem
    where = str(path)
    if not NAME.fullmatch(name):
        return FunctionSpec(
            name=name,
            path=where,
            error="a function's file name is a lower-case letter, then letters, digits, _ or -",
        )
    try:
        tree = ast.parse(path.read_bytes(), filename=where)
    except (OSError, SyntaxError, ValueError) as exc:
        return FunctionSpec(name=name, path=where, error=f"cannot read the module: {exc}")
    try:
        config = read_config(_config_literal(tree))
    except ValueError as exc:
        return FunctionSpec(name=name, path=where, error=str(exc))
    if not _has_async_handler(tree):
        return FunctionSpec(
            name=name, path=where, config=config, error="no `async def handler(request, ctx)`"
        )
    return FunctionSpec(name=name, path=where, config=config)


def _config_literal(tree: ast.Module) -> object:
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "config" for t in targets):
                if node.value is None:
                    return None
                try:
                    return ast.literal_eval(node.value)
                except (ValueError, TypeError, SyntaxError, RecursionError):
                    raise ValueError("config must be a literal (no names or calls)") from None
    return None


def _has_async_handler(tree: ast.Module) -> bool:
    return any(
        isinstance(node, ast.AsyncFunctionDef) and node.name == "handler" for node in tree.body
    )
