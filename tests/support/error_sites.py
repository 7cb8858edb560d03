"""Every error code orgbase can answer, read from its source with ``ast``.

A site is a construction of a domain error (an ``OrgbaseError`` kind): its ``code=``, or
its kind's ``default_code`` when it names none. A module-level function that passes one
of its parameters on as a code (``def refuse(message, code="invalid_query")``) is a
factory: its call sites are sites, with the argument given or the parameter's default.
Names are resolved through the imported module's globals, so ``errors.Invalid``, an
imported constant and a renamed import all count. A code that is none of these (built at
run time, or passed through a method) is unresolved, and the catalog's test refuses it.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, TypeAlias

import orgbase
from orgbase.core.errors import OrgbaseError

ROOT = Path(orgbase.__file__).parent.parent
Function: TypeAlias = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass(frozen=True)
class Site:
    code: str
    kind: type[OrgbaseError]
    where: str
    """``path:line`` from the repository's root."""


@dataclass(frozen=True)
class Factory:
    """A function whose parameter ``param`` becomes the code of a ``kind``."""

    kind: type[OrgbaseError]
    param: str
    index: int | None
    """The parameter's position (None when keyword-only)."""
    default: ast.expr | None


@dataclass
class Scan:
    sites: list[Site] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)
    """``path:line: code=<expression>`` for each code the scan could not read."""


def modules() -> Iterator[tuple[ModuleType, ast.Module]]:
    """Every module of the server (the SDK, orgbase.client, raises none of these)."""
    for info in pkgutil.walk_packages(orgbase.__path__, "orgbase."):
        if info.name.startswith("orgbase.client"):
            continue
        module = importlib.import_module(info.name)
        yield module, ast.parse(Path(inspect.getfile(module)).read_text())


def _resolve(node: ast.expr, module: ModuleType) -> Any:
    if isinstance(node, ast.Name):
        return vars(module).get(node.id)
    if isinstance(node, ast.Attribute):
        owner = _resolve(node.value, module)
        return getattr(owner, node.attr, None) if owner is not None else None
    return None


def _kind(node: ast.expr, module: ModuleType) -> type[OrgbaseError] | None:
    found = _resolve(node, module)
    if isinstance(found, type) and issubclass(found, OrgbaseError):
        return found
    return None


def _constant(node: ast.expr, module: ModuleType) -> str | None:
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else None
    found = _resolve(node, module)
    return found if isinstance(found, str) else None


def _argument(call: ast.Call, name: str, index: int | None) -> ast.expr | None:
    for keyword in call.keywords:
        if keyword.arg == name:
            return keyword.value
    if index is not None and index < len(call.args):
        return call.args[index]
    return None


class _Walker:
    """The calls of one module, each with the function it sits in."""

    def __init__(self, module: ModuleType, tree: ast.Module) -> None:
        self.module = module
        self.calls: list[tuple[ast.Call, Function | None]] = []
        self._visit(tree, None)

    def _visit(self, node: ast.AST, function: Function | None) -> None:
        for child in ast.iter_child_nodes(node):
            inner = (
                child if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function
            )
            if isinstance(child, ast.Call):
                self.calls.append((child, function))
            self._visit(child, inner)

    def target(
        self, call: ast.Call, factories: dict[object, Factory]
    ) -> tuple[type[OrgbaseError], ast.expr | None, ast.expr | None] | None:
        """(kind, the code's expression, its default) when ``call`` makes an error."""
        kind = _kind(call.func, self.module)
        if kind is not None:
            return kind, _argument(call, "code", None), None
        factory = factories.get(_resolve(call.func, self.module))
        if factory is None:
            return None
        return factory.kind, _argument(call, factory.param, factory.index), factory.default


def _factory_of(function: Function, kind: type[OrgbaseError], param: str) -> Factory:
    positional = [*function.args.posonlyargs, *function.args.args]
    names = [argument.arg for argument in positional]
    if param in names:
        index = names.index(param)
        defaults = function.args.defaults
        offset = index - (len(positional) - len(defaults))
        return Factory(kind, param, index, defaults[offset] if offset >= 0 else None)
    keyword_only = [argument.arg for argument in function.args.kwonlyargs]
    default = function.args.kw_defaults[keyword_only.index(param)]
    return Factory(kind, param, None, default)


def _params(function: Function | None) -> set[str]:
    if function is None:
        return set()
    arguments = function.args
    return {a.arg for a in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs)}


def _factories(walkers: list[_Walker]) -> dict[object, Factory]:
    """Module-level functions that pass a parameter on as a code, to a fixed point."""
    factories: dict[object, Factory] = {}
    changed = True
    while changed:
        changed = False
        for walker in walkers:
            for call, function in walker.calls:
                made = walker.target(call, factories)
                if made is None or function is None:
                    continue
                kind, code, _ = made
                if not isinstance(code, ast.Name) or code.id not in _params(function):
                    continue
                target = vars(walker.module).get(function.name)
                if callable(target) and target not in factories:
                    factories[target] = _factory_of(function, kind, code.id)
                    changed = True
    return factories


def _read(
    walker: _Walker,
    call: ast.Call,
    function: Function | None,
    made: tuple[type[OrgbaseError], ast.expr | None, ast.expr | None],
    factories: dict[object, Factory],
) -> str | None:
    """The site's code; "" when its caller's callers are the sites; None if unreadable."""
    kind, code, default = made
    given = code if code is not None else default
    if given is None or (isinstance(given, ast.Constant) and given.value is None):
        return kind.default_code
    value = _constant(given, walker.module)
    if value is not None:
        return value
    if function is None or not isinstance(code, ast.Name) or code.id not in _params(function):
        return None
    # A factory's own body passing its parameter on: its callers are the sites.
    return "" if vars(walker.module).get(function.name) in factories else None


def scan(dynamic: frozenset[str] = frozenset()) -> Scan:
    """Every site; ``dynamic`` names functions (``module.function``) whose codes are made
    at run time on purpose (a SQLSTATE) and are checked another way."""
    walkers = [_Walker(module, tree) for module, tree in modules()]
    factories = _factories(walkers)
    result = Scan()
    for walker in walkers:
        path = Path(inspect.getfile(walker.module)).relative_to(ROOT)
        for call, function in walker.calls:
            made = walker.target(call, factories)
            if made is None:
                continue
            where = f"{path}:{call.lineno}"
            code = _read(walker, call, function, made, factories)
            if code:
                result.sites.append(Site(code, made[0], where))
            elif code is None:
                name = f"{walker.module.__name__}.{function.name}" if function else ""
                if name not in dynamic:
                    shown = ast.unparse(made[1]) if made[1] is not None else "?"
                    result.unresolved.append(f"{where}: code={shown}")
    return result
