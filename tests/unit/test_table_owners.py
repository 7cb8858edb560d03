"""Every table has one owner (orgbase/core/tables.py), and only its owner names it in SQL.

The SQL text of each area is every string of its Python source: literals, f-strings (their
constant parts, with ``{}`` where a value goes) and ``+`` concatenations of them, but not
docstrings. A module that names ``orgbase.<table>`` or ``api.<table>`` (or a table of the
schema right after FROM, JOIN, INTO, UPDATE or TABLE, unqualified) fails the test unless
its area owns the table. The migrations define the schema and are not checked (the
module's docstring says why); the tables they create are the list every owner must cover.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from orgbase.core.tables import EXCEPTIONS, OWNERS

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "orgbase"
MIGRATIONS = [
    *sorted((ROOT / "sql" / "rls").glob("*.sql")),
    *sorted((ROOT / "migrations").glob("*.sql")),
]
_CREATED = re.compile(r"CREATE TABLE (?:IF NOT EXISTS )?((?:orgbase|api)\.\w+)", re.IGNORECASE)
_DROPPED = re.compile(r"DROP TABLE (?:IF EXISTS )?((?:orgbase|api)\.\w+)", re.IGNORECASE)
_QUALIFIED = re.compile(r'\b"?(orgbase|api)"?\."?([a-z_][a-z0-9_]*)"?(?![\w(])')


def schema_tables() -> set[str]:
    """The tables the migrations (and `orgbase migrate` itself) create and keep."""
    tables: set[str] = set()
    sources = [path.read_text() for path in MIGRATIONS]
    sources.append((PACKAGE / "platform" / "migrations.py").read_text())
    for text in sources:
        tables |= {name.lower() for name in _CREATED.findall(text)}
        tables -= {name.lower() for name in _DROPPED.findall(text)}
    return tables


def _joined(node: ast.AST) -> str | None:
    """The text of a string expression: a literal, an f-string, or a ``+`` of them."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(_joined(part) or "{}" for part in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _joined(node.left), _joined(node.right)
        if left is not None or right is not None:
            return (left or "{}") + (right or "{}")
    return None


def _docstrings(tree: ast.AST) -> set[int]:
    """Strings standing alone as statements: docstrings of modules, classes, functions
    and attributes (documentation, never run)."""
    return {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }


def sql_strings(source: str) -> Iterator[str]:
    """Every string of a module but its docstrings, each expression once (the parts of an
    f-string or a concatenation are not given again on their own)."""
    tree = ast.parse(source)
    skip = _docstrings(tree)
    inside: set[int] = set()
    for node in ast.walk(tree):
        if id(node) in skip or id(node) in inside:
            continue
        text = _joined(node)
        if text is None:
            continue
        inside |= {id(child) for child in ast.walk(node)}
        yield text


def named_tables(text: str, tables: set[str]) -> set[str]:
    named = {f"{schema}.{name}" for schema, name in _QUALIFIED.findall(text)} & tables
    bare = {table.split(".")[1]: table for table in tables}
    pattern = rf"\b(?:FROM|JOIN|INTO|UPDATE|TABLE)\s+({'|'.join(sorted(bare))})\b"
    named |= {bare[name] for name in re.findall(pattern, text)}
    return named


def area_of(module: str) -> str:
    """``orgbase.services.postgres.sql`` -> ``services.postgres``; ``orgbase.auth.x``
    -> ``auth``."""
    parts = module.split(".")[1:]
    if parts[0] == "services" and len(parts) > 2:
        return ".".join(parts[:2])
    return parts[0]


def modules() -> Iterator[tuple[str, Path]]:
    """Every module of orgbase but the list of owners itself."""
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        if module != "orgbase.core.tables":
            yield module, path


def violations(tables: set[str]) -> list[str]:
    found = []
    for module, path in modules():
        area = area_of(module)
        for text in sql_strings(path.read_text()):
            for table in sorted(named_tables(text, tables)):
                owner = OWNERS[table]
                if owner.area != area and (module, table) not in EXCEPTIONS:
                    found.append(f"{module} names {table}, owned by {owner.area} ({owner.why})")
    return sorted(set(found))


def test_every_table_has_one_owner() -> None:
    tables = schema_tables()
    assert len(tables) > 20
    assert sorted(tables - OWNERS.keys()) == [], "tables without an owner in core/tables.py"
    assert sorted(OWNERS.keys() - tables) == [], "owners of tables the schema does not have"
    areas = {area_of(module) for module, _ in modules()}
    assert {owner.area for owner in OWNERS.values()} <= areas


def test_only_its_owner_names_a_table() -> None:
    assert violations(schema_tables()) == []


def test_exceptions_are_real_and_few() -> None:
    tables = schema_tables()
    known = dict(modules())
    for (module, table), reason in EXCEPTIONS.items():
        assert module in known
        assert table in tables
        assert reason
        texts = sql_strings(known[module].read_text())
        assert any(table in named_tables(text, tables) for text in texts), (module, table)
    assert len(EXCEPTIONS) <= 5


def test_the_reader_finds_tables_however_the_text_is_built() -> None:
    """What the check must see (and what it must not count)."""
    source = '''
"""A docstring may talk about orgbase.users."""
WHERE = "id = $1"
A = f"SELECT email FROM orgbase.users WHERE {WHERE}"
B = "SELECT 1 FROM " + "orgbase.memberships"
C = ("DELETE FROM orgbase."
     "outbox")
D = "SELECT orgbase.role_rank($1)"
E = "UPDATE sessions SET aal = $2"
X = 1
"""Nor in an attribute's: orgbase.api_keys."""
def f() -> None:
    """Nor here: orgbase.orgs."""
    x = 'INSERT INTO "orgbase"."orgs" (name) VALUES ($1)'
'''
    tables = schema_tables()
    found = [named_tables(text, tables) for text in sql_strings(source)]
    assert set().union(*found) == {
        "orgbase.users",
        "orgbase.memberships",
        "orgbase.outbox",
        "orgbase.sessions",
        "orgbase.orgs",
    }
    assert sum(1 for names in found if names) == 5
