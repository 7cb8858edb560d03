"""The configuration page, generated from the settings tree (orgbase/core/settings.py).

Walks ``Settings`` and its section structs: every field's variable, type, constraints,
default and docstring (the string literal under the field, read from the source). Nothing
here is kept by hand: a new setting appears once it has a docstring, and
tests/unit/test_docs_generators.py fails when one has none.

    .venv/bin/python -m scripts.docs.settings_reference > configuration.md
"""

from __future__ import annotations

import ast
import inspect
import types
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

import msgspec

from orgbase.core import settings as settings_module
from orgbase.core.settings import PREFIX, Settings
from scripts.docs.markdown import cell


@dataclass(frozen=True)
class Field:
    variable: str
    type: str
    default: str
    doc: str


@dataclass(frozen=True)
class Section:
    name: str
    doc: str
    fields: list[Field]


def docstrings() -> dict[str, dict[str, str]]:
    """``{class name: {field: docstring}}`` from the settings module's source; a class's
    own docstring is under the key ``""``."""
    tree = ast.parse(inspect.getsource(settings_module))
    found: dict[str, dict[str, str]] = {}
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        docs = {"": ast.get_docstring(node) or ""}
        body = node.body
        for here, after in zip(body, [*body[1:], None], strict=True):
            if not (isinstance(here, ast.AnnAssign) and isinstance(here.target, ast.Name)):
                continue
            if (
                isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                docs[here.target.id] = inspect.cleandoc(after.value.value)
        found[node.name] = docs
    return found


def _constraints(metas: list[Any]) -> str:
    parts = []
    for meta in metas:
        if not isinstance(meta, msgspec.Meta):
            continue
        for name, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            value = getattr(meta, name)
            if value is not None:
                parts.append(f"{sign} {value}")
        if meta.pattern:
            parts.append(f"matches `{meta.pattern}`")
    return ", ".join(parts)


def type_name(hint: Any) -> str:
    """A reader's name for a field's type: ``int (>= 1)``, ``one of dev, test, prod``."""
    metas: list[Any] = []
    while get_origin(hint) is Annotated:
        hint, *more = get_args(hint)
        metas.extend(more)
    origin = get_origin(hint)
    if origin is Literal:
        name = "one of " + ", ".join(f"`{value}`" for value in get_args(hint))
    elif origin in (tuple, list):
        name = f"comma-separated list of {type_name(get_args(hint)[0])}"
    elif origin in (Union, types.UnionType):
        options = [a for a in get_args(hint) if a is not type(None)]
        name = f"{' or '.join(type_name(a) for a in options)}, optional"
    else:
        name = getattr(hint, "__name__", str(hint))
    limits = _constraints(metas)
    return f"{name} ({limits})" if limits else name


def default_text(field: msgspec.structs.FieldInfo) -> str:
    if field.required:
        return "required"
    value = field.default if field.default is not msgspec.NODEFAULT else field.default_factory()
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value) if value else "none"
    return str(value)


def sections() -> list[Section]:
    docs = docstrings()
    top_hints = get_type_hints(Settings, include_extras=True)
    top_fields: list[Field] = []
    out: list[Section] = []
    for info in msgspec.structs.fields(Settings):
        hint = top_hints[info.name]
        if isinstance(hint, type) and issubclass(hint, msgspec.Struct):
            out.append(_section(info.name, hint, docs))
            continue
        doc = docs["Settings"].get(info.name, "")
        variable = f"{PREFIX}{info.name.upper()}"
        top_fields.append(Field(variable, type_name(hint), default_text(info), doc))
    return [Section("", docs["Settings"][""], top_fields), *out]


def _section(name: str, struct: type[msgspec.Struct], docs: dict[str, dict[str, str]]) -> Section:
    hints = get_type_hints(struct, include_extras=True)
    own = docs.get(struct.__name__, {})
    fields = [
        Field(
            f"{PREFIX}{name.upper()}_{info.name.upper()}",
            type_name(hints[info.name]),
            default_text(info),
            own.get(info.name, ""),
        )
        for info in msgspec.structs.fields(struct)
    ]
    return Section(name, own.get("", ""), fields)


def render() -> str:
    lines = [
        "# Configuration",
        "",
        "Generated from the settings tree (`orgbase/core/settings.py`) by",
        "`scripts/docs/settings_reference.py` when the site is built: every variable, its",
        "type, its default and what it does, as the code declares them.",
        "",
        "Settings are built from `ORGBASE_*` environment variables at start and validated",
        "with a message naming the bad variable (a misspelt name is refused with a",
        "suggestion). `orgbase serve --env-file FILE` (and every other command) reads a",
        "`KEY=VALUE` file first; real environment variables win. In a checkout, a command",
        "given no `--env-file` and no `ORGBASE_*` variable reads the local stack's",
        "`.orgbase/services.env`. Outside dev mode no secret has a default.",
        "",
    ]
    for section in sections():
        title = f"`{PREFIX}{section.name.upper()}_*`" if section.name else "Top level"
        lines += [f"## {title}", ""]
        if section.doc:
            lines += [" ".join(section.doc.split()), ""]
        lines += ["| variable | type | default | meaning |", "|---|---|---|---|"]
        for field in section.fields:
            lines.append(
                f"| `{field.variable}` | {cell(field.type)} | `{cell(field.default)}`"
                f" | {cell(field.doc)} |"
            )
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render())
