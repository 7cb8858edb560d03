"""The error-code page, generated from the code.

Until orgbase has one catalog module (code -> status -> meaning), the codes are found in
the source: every code a domain error (``orgbase/core/errors.py`` and the areas'
subclasses) is raised with, directly or through a small factory (``token_error(code,
...)``, ``refuse(..., code)``), every kind's default code, and the codes the gateway
writes itself; each with the HTTP status the one mapping (``orgbase/platform/errors.py``)
answers and the first message it is raised with. Repointing this page at a catalog means
replacing ``collect()``; ``render()`` stays.

    .venv/bin/python -m scripts.docs.error_codes > errors.md
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orgbase
from orgbase.core.errors import OrgbaseError
from orgbase.platform import errors as mapping
from orgbase.platform.errors import status_of_kind
from scripts.docs.markdown import cell

ROOT = Path(orgbase.__file__).resolve().parent


@dataclass
class ErrorCode:
    code: str
    statuses: set[int] = field(default_factory=set)
    message: str = ""
    modules: set[str] = field(default_factory=set)


@dataclass
class Source:
    """One module's syntax tree and its module-level string constants."""

    name: str
    tree: ast.Module
    constants: dict[str, str]

    def literal(self, node: ast.expr | None) -> str:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name):
            return self.constants.get(node.id, "")
        if isinstance(node, ast.JoinedStr):
            return "".join(
                self.literal(p) if isinstance(p, ast.Constant) else "…" for p in node.values
            )
        return ""


def _kinds() -> dict[str, type[OrgbaseError]]:
    """Every OrgbaseError subclass by class name (importing orgbase's modules finds them)."""
    for module in pkgutil.walk_packages([str(ROOT)], prefix="orgbase."):
        importlib.import_module(module.name)
    kinds: dict[str, type[OrgbaseError]] = {}
    pending: list[type[OrgbaseError]] = [OrgbaseError]
    while pending:
        kind = pending.pop()
        kinds[kind.__name__] = kind
        pending.extend(kind.__subclasses__())
    return kinds


def _sources() -> list[Source]:
    sources = []
    for path in sorted(ROOT.rglob("*.py")):
        tree = ast.parse(path.read_text())
        constants = {
            node.targets[0].id: node.value.value
            for node in tree.body
            if isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        }
        name = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts)
        sources.append(Source(name, tree, constants))
    return sources


def _factories(sources: list[Source], kinds: dict[str, type[OrgbaseError]]) -> dict[str, Any]:
    """Functions returning a domain error built from their ``code`` parameter:
    ``{name: (kind, position of code)}``."""
    found: dict[str, Any] = {}
    for source in sources:
        for node in ast.walk(source.tree):
            if not isinstance(node, ast.FunctionDef) or not isinstance(node.returns, ast.Name):
                continue
            names = [a.arg for a in node.args.args]
            if node.returns.id in kinds and "code" in names:
                found[node.name] = (kinds[node.returns.id], names.index("code"))
    return found


def _called_name(call: ast.Call) -> str:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return ""


def _raised(
    call: ast.Call, source: Source, kinds: dict[str, type[OrgbaseError]], factories: dict[str, Any]
) -> tuple[str, int | None, str] | None:
    """(code, status, message) of a call that makes an error with a literal code."""
    name = _called_name(call)
    args = call.args
    keyword = next((k.value for k in call.keywords if k.arg == "code"), None)
    if name in kinds and keyword is not None:
        message = source.literal(args[0]) if args else ""
        return source.literal(keyword), status_of_kind(kinds[name]), message
    if name in factories:
        kind, position = factories[name]
        given = args[position] if len(args) > position else keyword
        other = 1 if position == 0 else 0
        message = source.literal(args[other]) if len(args) > other else ""
        return source.literal(given), status_of_kind(kind), message
    if name in ("encode_error", "error_body") and len(args) >= 2:
        return source.literal(args[0]), None, source.literal(args[1])
    return None


def collect() -> list[ErrorCode]:
    kinds = _kinds()
    sources = _sources()
    factories = _factories(sources, kinds)
    found: dict[str, ErrorCode] = {}

    def note(code: str, status: int | None, message: str, module: str) -> None:
        if not code:
            return
        entry = found.setdefault(code, ErrorCode(code))
        if status is not None:
            entry.statuses.add(status)
        entry.message = entry.message or message
        entry.modules.add(module)

    for kind in kinds.values():
        if "default_code" in vars(kind):
            note(kind.default_code, status_of_kind(kind), kind.__doc__ or "", kind.__module__)
    # What the gateway answers for the framework's own refusals (routing, validation).
    for status, code in mapping._CODES_BY_STATUS.items():
        note(code, status, "", mapping.__name__)
    for source in sources:
        for node in ast.walk(source.tree):
            if isinstance(node, ast.Call) and (raised := _raised(node, source, kinds, factories)):
                note(*raised, source.name)
    return sorted(found.values(), key=lambda e: e.code)


def render() -> str:
    lines = [
        "# Error codes",
        "",
        'Every error is JSON `{"code", "message", "details", "hint", "request_id"}` with a',
        "stable, machine-readable `code` (the shape PostgREST clients parse); the same codes",
        "travel in WebSocket error frames. This list is generated from the source by",
        "`scripts/docs/error_codes.py` when the site is built: each code an error is raised",
        "with, the HTTP status it is answered with (— where the code is written with its",
        "status directly), a message it is raised with, and where. The data API also",
        "answers PostgreSQL's SQLSTATEs as codes (`23505`, `42501`, ...) with PostgREST's",
        "statuses: see [the data API](api/data.md).",
        "",
        "| code | status | example message | raised in |",
        "|---|---|---|---|",
    ]
    for entry in collect():
        statuses = ", ".join(str(s) for s in sorted(entry.statuses)) or "—"
        modules = ", ".join(f"`{m}`" for m in sorted(entry.modules))
        lines.append(f"| `{entry.code}` | {statuses} | {cell(entry.message)} | {modules} |")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render())
