"""PostgREST's URL grammar, parsed into a small tree (pure: no SQL, no schema).

select=id,title,alias:title,data->>k,count::text,owner(name),rel!fk!inner(*)
<field>=[not.]<op>.<value>        in.(a,"b,c")   is.null
or=(a.eq.1,and(b.gt.2,not.c.is.null))   not.and=(...)
order=col.desc.nullslast,other      limit=20  offset=40
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from orgbase.core.errors import Invalid

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,62}")
JSON_KEY = re.compile(r"[A-Za-z0-9_ $-]{1,63}")
CASTS: dict[str, str] = {
    # The casts a select may ask for (``col::int``), and the type each one names.
    "int": "integer",
    "integer": "integer",
    "bigint": "bigint",
    "smallint": "smallint",
    "numeric": "numeric",
    "float": "double precision",
    "double precision": "double precision",
    "real": "real",
    "boolean": "boolean",
    "bool": "boolean",
    "text": "text",
    "date": "date",
    "timestamptz": "timestamp with time zone",
    "timestamp": "timestamp without time zone",
    "time": "time without time zone",
    "uuid": "uuid",
    "json": "json",
    "jsonb": "jsonb",
}
OPERATORS = frozenset(
    {
        "eq",
        "neq",
        "gt",
        "gte",
        "lt",
        "lte",
        "like",
        "ilike",
        "match",
        "imatch",
        "in",
        "is",
        "isdistinct",
        "cs",
        "cd",
        "ov",
        "fts",
        "plfts",
        "phfts",
        "wfts",
    }
)
IS_VALUES = frozenset({"null", "not_null", "true", "false", "unknown"})
RESERVED = frozenset(
    {
        "select",
        "order",
        "limit",
        "offset",
        "on_conflict",
        "columns",
        "or",
        "and",
        "not.or",
        "not.and",
    }
)


MAX_LOGIC_DEPTH = 16
"""How deep and/or/not groups nest in one filter (PostgreSQL and the parser stay bounded)."""
MAX_DIGITS = 12


def is_number(text: str) -> bool:
    """ASCII digits only: str.isdigit() also takes '²' and other digits int() refuses."""
    return text.isascii() and text.isdigit()


def parse_error(message: str, details: str | None = None) -> Invalid:
    return Invalid(message, code="PGRST100", details=details)


@dataclass(frozen=True)
class Field:
    column: str
    path: tuple[tuple[str, str], ...] = ()
    """JSON path steps: ('->' or '->>', key)."""

    @property
    def default_name(self) -> str:
        return self.path[-1][1] if self.path else self.column


@dataclass(frozen=True)
class SelectColumn:
    field: Field
    alias: str | None = None
    cast: str | None = None


@dataclass(frozen=True)
class Star:
    pass


@dataclass(frozen=True)
class SelectEmbed:
    relation: str
    items: tuple[SelectColumn | Star | SelectEmbed, ...]
    alias: str | None = None
    hint: str | None = None
    join: Literal["inner", "left"] = "left"


SelectItem = SelectColumn | Star | SelectEmbed


@dataclass(frozen=True)
class Condition:
    field: Field
    op: str
    value: str | tuple[str, ...] | None
    negate: bool = False


@dataclass(frozen=True)
class Logic:
    op: Literal["and", "or"]
    items: tuple[Condition | Logic, ...]
    negate: bool = False


Filter = Condition | Logic


@dataclass(frozen=True)
class OrderTerm:
    field: Field
    descending: bool = False
    nulls: Literal["first", "last"] | None = None


@dataclass
class Query:
    select: tuple[SelectItem, ...] = (Star(),)
    filters: list[Filter] = field(default_factory=list)
    order: tuple[OrderTerm, ...] = ()
    limit: int | None = None
    offset: int = 0
    on_conflict: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()

    def page_size(self, max_rows: int) -> int:
        """The rows one answer holds: the asked limit, at most ``max_rows``."""
        return max_rows if self.limit is None else min(self.limit, max_rows)


# -- splitting ------------------------------------------------------------------------


def split_top(text: str, separator: str = ",") -> list[str]:
    """Split at ``separator`` outside parentheses and double quotes."""
    parts: list[str] = []
    depth = 0
    quoted = False
    current: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if quoted:
            current.append(char)
            if char == "\\" and index + 1 < len(text):
                current.append(text[index + 1])
                index += 1
            elif char == '"':
                quoted = False
        elif char == '"':
            quoted = True
            current.append(char)
        elif char == "(":
            depth += 1
            current.append(char)
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise parse_error("unbalanced parentheses", text)
            current.append(char)
        elif char == separator and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        index += 1
    if quoted or depth != 0:
        raise parse_error("unbalanced quotes or parentheses", text)
    parts.append("".join(current))
    return parts


def unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        inner = value[1:-1]
        return re.sub(r"\\(.)", r"\1", inner)
    return value


def identifier(text: str, what: str = "name") -> str:
    name = unquote(text.strip())
    if not IDENT.fullmatch(name):
        raise parse_error(f"invalid {what}: {text!r}")
    return name


# -- fields -----------------------------------------------------------------------------

_ARROWS = re.compile(r"(->>|->)")


def parse_field(text: str) -> Field:
    pieces = _ARROWS.split(text.strip())
    column = identifier(pieces[0], "column")
    path: list[tuple[str, str]] = []
    for arrow, raw_key in zip(pieces[1::2], pieces[2::2], strict=True):
        key = unquote(raw_key)
        if not JSON_KEY.fullmatch(key):
            raise parse_error(f"invalid JSON key: {key!r}")
        path.append((arrow, key))
    return Field(column, tuple(path))


# -- select -----------------------------------------------------------------------------

_EMBED = re.compile(
    r"^(?:(?P<alias>[^:()]+):)?(?P<rel>[^!()]+)(?P<bang>(?:![^!()]+)*)\((?P<body>.*)\)$", re.S
)


_ALIAS = re.compile(r"^(?P<alias>[^:()]+):(?!:)(?P<rest>.+)$", re.S)


def parse_select(text: str, depth: int = 0) -> tuple[SelectItem, ...]:
    if depth > 4:
        raise parse_error("embedding is limited to 4 levels")
    items: list[SelectItem] = []
    for raw in split_top(text):
        part = raw.strip()
        if not part:
            raise parse_error("empty item in select", text)
        if part == "*":
            items.append(Star())
            continue
        embed = _EMBED.match(part)
        if embed:
            hint: str | None = None
            join: Literal["inner", "left"] = "left"
            for mark in filter(None, (embed.group("bang") or "").split("!")):
                if mark in ("inner", "left"):
                    join = mark
                else:
                    hint = identifier(mark, "embedding hint")
            body = embed.group("body").strip()
            items.append(
                SelectEmbed(
                    relation=identifier(embed.group("rel"), "relation"),
                    items=parse_select(body, depth + 1) if body else (Star(),),
                    alias=identifier(embed.group("alias"), "alias")
                    if embed.group("alias")
                    else None,
                    hint=hint,
                    join=join,
                )
            )
            continue
        alias = None
        aliased = _ALIAS.match(part)
        if aliased:
            alias, part = identifier(aliased.group("alias"), "alias"), aliased.group("rest")
        cast = None
        if "::" in part:
            part, cast = part.rsplit("::", 1)
            cast = cast.strip().lower()
            if cast not in CASTS:
                raise parse_error(f"unsupported cast: {cast!r}", f"use one of {sorted(CASTS)}")
        items.append(SelectColumn(parse_field(part), alias, cast))
    return tuple(items)


# -- filters ----------------------------------------------------------------------------


def parse_operation(field_: Field, text: str) -> Condition:
    negate = False
    if text.startswith("not."):
        negate, text = True, text[4:]
    op, dot, value = text.partition(".")
    if not dot or op not in OPERATORS:
        raise parse_error(f"unknown operator in {text!r}", f"operators: {sorted(OPERATORS)}")
    if op == "in":
        if not (value.startswith("(") and value.endswith(")")):
            raise parse_error("in needs a list: in.(a,b,c)", value)
        inner = value[1:-1]
        items = tuple(unquote(v.strip()) for v in split_top(inner)) if inner.strip() else ()
        return Condition(field_, op, items, negate)
    if op == "is":
        if value.lower() not in IS_VALUES:
            raise parse_error(f"is takes one of {sorted(IS_VALUES)}", value)
        return Condition(field_, op, value.lower(), negate)
    if op in ("fts", "plfts", "phfts", "wfts") and value.startswith("("):
        raise parse_error("text search languages are not supported", value)
    return Condition(field_, op, unquote(value), negate)


def parse_logic(key: str, value: str) -> Logic:
    negate = key.startswith("not.")
    op = key[4:] if negate else key
    if not (value.startswith("(") and value.endswith(")")):
        raise parse_error(f"{op} needs a parenthesised list", value)
    return Logic(op, _logic_items(value[1:-1], 1), negate)  # type: ignore[arg-type]


def _logic_items(text: str, depth: int) -> tuple[Filter, ...]:
    if depth > MAX_LOGIC_DEPTH:
        raise parse_error(f"logical groups nest at most {MAX_LOGIC_DEPTH} deep")
    items: list[Filter] = []
    for raw in split_top(text):
        part = raw.strip()
        negate = False
        body = part
        if body.startswith("not.") and (body[4:].startswith("and(") or body[4:].startswith("or(")):
            negate, body = True, body[4:]
        for op in ("and", "or"):
            if body.startswith(op + "(") and body.endswith(")"):
                items.append(Logic(op, _logic_items(body[len(op) + 1 : -1], depth + 1), negate))
                break
        else:
            # field.op.value, where the field may hold JSON arrows but no dots.
            match = re.match(r"^([^.]+)\.(.+)$", part, re.S)
            if not match:
                raise parse_error(f"invalid condition {part!r}")
            items.append(parse_operation(parse_field(match.group(1)), match.group(2)))
    if not items:
        raise parse_error("empty logical group")
    return tuple(items)


# -- order ------------------------------------------------------------------------------


def parse_order(text: str) -> tuple[OrderTerm, ...]:
    terms = []
    for raw in split_top(text):
        pieces = raw.strip().split(".")
        descending = False
        nulls: Literal["first", "last"] | None = None
        for modifier in pieces[1:]:
            if modifier == "asc":
                descending = False
            elif modifier == "desc":
                descending = True
            elif modifier == "nullsfirst":
                nulls = "first"
            elif modifier == "nullslast":
                nulls = "last"
            else:
                raise parse_error(f"unknown order modifier {modifier!r}", raw)
        terms.append(OrderTerm(parse_field(pieces[0]), descending, nulls))
    return tuple(terms)


# -- the whole query string -------------------------------------------------------------


def _non_negative(name: str, value: str) -> int:
    if not is_number(value) or len(value) > MAX_DIGITS:
        raise parse_error(f"{name} must be a non-negative integer", value)
    return int(value)


def parse_query(pairs: list[tuple[str, str]]) -> Query:
    query = Query()
    for key, value in pairs:
        if key == "select":
            query.select = parse_select(value) if value.strip() else (Star(),)
        elif key == "order":
            query.order = parse_order(value)
        elif key == "limit":
            query.limit = _non_negative("limit", value)
        elif key == "offset":
            query.offset = _non_negative("offset", value)
        elif key == "on_conflict":
            query.on_conflict = tuple(identifier(v, "column") for v in value.split(","))
        elif key == "columns":
            query.columns = tuple(identifier(v, "column") for v in value.split(","))
        elif key in ("or", "and", "not.or", "not.and"):
            query.filters.append(parse_logic(key, value))
        elif "." in key.split("->")[0]:
            raise parse_error(
                f"filters on embedded resources are not supported: {key!r}",
                "filter the parent, or query the related table directly",
            )
        else:
            query.filters.append(parse_operation(parse_field(key), value))
    return query
