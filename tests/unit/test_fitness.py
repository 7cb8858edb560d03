"""Fitness of the code base: sizes and the import graph, checked on every run.

A class over 250 lines or a function over 60 is split before it lands; an import circle
between modules (hidden by a function-local import or not) is broken before it lands.
What is over today is listed below with its size: it may shrink, never grow, and leaves
the list when it is back under the bound (the test says so).
"""

from __future__ import annotations

import ast
from pathlib import Path

import grimp
import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "orgbase"
CLASS_LINES = 250
FUNCTION_LINES = 60

# "path:Name" -> lines today; to be split, never grown.
OVER_TODAY: dict[str, int] = {}
# Import circles known today (sorted module names); to be broken, never joined by others.
CIRCLES_TODAY: list[list[str]] = []


def _sizes() -> dict[str, int]:
    """Every class and function of the package over its bound, by "path:Name"."""
    over: dict[str, int] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        where = path.relative_to(PACKAGE).as_posix()
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                bound = CLASS_LINES
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                bound = FUNCTION_LINES
            else:
                continue
            lines = (node.end_lineno or node.lineno) - node.lineno + 1
            if lines > bound:
                over[f"{where}:{node.name}"] = lines
    return over


def test_no_class_or_function_over_its_bound() -> None:
    over = _sizes()
    new = {name: lines for name, lines in over.items() if name not in OVER_TODAY}
    assert not new, f"split these (class <= {CLASS_LINES}, function <= {FUNCTION_LINES}): {new}"
    grown = {n: (OVER_TODAY[n], lines) for n, lines in over.items() if lines > OVER_TODAY.get(n, 0)}
    assert not grown, f"over their bound and grown (was, now): {grown}"


def test_the_list_of_what_is_over_is_current() -> None:
    back_under = sorted(set(OVER_TODAY) - set(_sizes()))
    assert not back_under, f"back under the bound: remove from OVER_TODAY: {back_under}"


def _circles() -> list[list[str]]:
    """The strongly connected parts of the module graph with more than one module."""
    graph = grimp.build_graph("orgbase", exclude_type_checking_imports=True, cache_dir=None)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(start: str) -> None:
        # Tarjan's algorithm, iterative: a package of a few hundred modules is shallow, but
        # recursion depth should not depend on the import graph.
        work = [(start, iter(edges[start]))]
        order[start] = low[start] = len(order)
        stack.append(start)
        while work:
            node, targets = work[-1]
            target = next(targets, None)
            if target is not None:
                if target not in order:
                    order[target] = low[target] = len(order)
                    stack.append(target)
                    work.append((target, iter(edges[target])))
                elif target in stack:
                    low[node] = min(low[node], order[target])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == order[node]:
                part = []
                while True:
                    member = stack.pop()
                    part.append(member)
                    if member == node:
                        break
                if len(part) > 1:
                    circles.append(sorted(part))

    for module in sorted(edges):
        if module not in order:
            visit(module)
    return sorted(circles)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_no_new_import_circle() -> None:
    circles = _circles()
    new = [c for c in circles if c not in CIRCLES_TODAY]
    assert not new, f"import circles: {new}"
    gone = [c for c in CIRCLES_TODAY if c not in circles]
    assert not gone, f"broken circles: remove from CIRCLES_TODAY: {gone}"
