"""The SQL builder's expressions: from a parsed query and the schema cache to select
lists, embeddings, filters and orderings, and their parameters (statements.py puts them
into whole statements).

Names come only from the schema cache (quoted); every value is a bound parameter, cast
by PostgreSQL to the column's type (a bad value is a 22P02 error, a 400).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from orgbase.core.errors import Invalid, NotFound
from orgbase.services.postgres.grammar import (
    CASTS,
    Condition,
    Field,
    Filter,
    Logic,
    OrderTerm,
    SelectColumn,
    SelectEmbed,
    SelectItem,
    Star,
    is_number,
)
from orgbase.services.postgres.schema import Column, ForeignKey, Table, quote_ident

_COMPARE = {"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_CONTAINS = {"cs": "@>", "cd": "<@", "ov": "&&"}
_TEXT_SEARCH = {
    "fts": "to_tsquery",
    "plfts": "plainto_tsquery",
    "phfts": "phraseto_tsquery",
    "wfts": "websearch_to_tsquery",
}
_IS = {
    "null": "IS NULL",
    "not_null": "IS NOT NULL",
    "true": "IS TRUE",
    "false": "IS FALSE",
    "unknown": "IS UNKNOWN",
}


def column_missing(table: Table, name: str) -> Invalid:
    return Invalid(
        f"column {table.name}.{name} does not exist", code="42703", hint="check the column name"
    )


def table_missing(name: str) -> NotFound:
    return NotFound(
        f"Could not find the table 'api.{name}' in the schema cache",
        code="PGRST205",
        hint="only tables of the api schema with tenancy enabled are exposed",
    )


@dataclass
class Params:
    """Collects bound values; ``start`` is the number of the first placeholder."""

    start: int
    values: list[Any] = field(default_factory=list)

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f"${self.start + len(self.values) - 1}"


@dataclass
class Builder:
    tables: dict[str, Table]
    params: Params
    aliases: int = 0

    def alias(self) -> str:
        self.aliases += 1
        return f"_e{self.aliases}"

    def table(self, name: str) -> Table:
        found = self.tables.get(name)
        if found is None:
            raise table_missing(name)
        return found

    # -- expressions ------------------------------------------------------------------

    def column(self, table: Table, name: str) -> Column:
        found = table.columns.get(name)
        if found is None:
            raise column_missing(table, name)
        return found

    def field(self, table: Table, alias: str, field_: Field) -> tuple[str, str | None]:
        """SQL for a field, and its type when known (None for a JSON path's result)."""
        column = self.column(table, field_.column)
        expression = f"{alias}.{quote_ident(column.name)}"
        if not field_.path:
            return expression, column.type
        if not column.is_json:
            raise Invalid(f"column {table.name}.{column.name} is not JSON", code="42883")
        for arrow, key in field_.path:
            # An array index when it fits PostgreSQL's int (longer digit runs are keys).
            placeholder = (
                self.params.add(int(key)) + "::int"
                if is_number(key) and len(key) <= 9
                else self.params.add(key) + "::text"
            )
            expression = f"({expression} {arrow} {placeholder})"
        last_arrow = field_.path[-1][0]
        return expression, ("text" if last_arrow == "->>" else "jsonb_path")

    # -- select -----------------------------------------------------------------------

    def select_list(self, table: Table, alias: str, items: Sequence[SelectItem]) -> str:
        parts: list[str] = []
        for item in items:
            if isinstance(item, Star):
                parts += [f"{alias}.{quote_ident(c)} AS {quote_ident(c)}" for c in table.columns]
            elif isinstance(item, SelectColumn):
                expression, _ = self.field(table, alias, item.field)
                if item.cast:
                    expression = f"({expression})::{CASTS[item.cast]}"
                name = item.alias or item.field.default_name
                parts.append(f"{expression} AS {quote_ident(name)}")
            else:
                parts.append(self.embed(table, alias, item))
        if not parts:
            raise Invalid("select has nothing to return", code="PGRST100")
        return ", ".join(parts)

    def relation(self, table: Table, embed: SelectEmbed) -> tuple[ForeignKey, bool]:
        """The foreign key behind an embedding, and whether it points to one row."""
        name = embed.relation
        found: dict[str, tuple[ForeignKey, bool]] = {}
        for fk in table.outgoing:
            column_names = (
                {fk.columns[0], fk.columns[0].removesuffix("_id")}
                if len(fk.columns) == 1
                else set()
            )
            if name in (fk.ref_table, fk.name) or name in column_names:
                found[f"{fk.name}>"] = (fk, True)
        for fk in table.incoming:
            if name in (fk.table, fk.name):
                found[f"{fk.name}<"] = (fk, False)
        if embed.hint:
            found = {
                k: (fk, one)
                for k, (fk, one) in found.items()
                if embed.hint == fk.name or embed.hint in fk.columns or embed.hint in fk.ref_columns
            }
        if not found:
            raise Invalid(
                f"Could not find a relationship between '{table.name}' and '{name}'"
                " in the schema cache",
                code="PGRST200",
                hint="embed a table linked to this one by a foreign key",
            )
        if len(found) > 1:
            raise Invalid(
                "Could not embed because more than one relationship was found for"
                f" '{table.name}' and '{name}'",
                code="PGRST201",
                details=sorted(fk.name for fk, _ in found.values()),
                hint=f"name the foreign key: {name}!<constraint>(...)",
            )
        return next(iter(found.values()))

    def _join_condition(self, fk: ForeignKey, one: bool, parent: str, child: str) -> str:
        pairs = zip(fk.columns, fk.ref_columns, strict=True)
        if one:  # parent.fk_columns -> child.ref_columns
            return " AND ".join(
                f"{child}.{quote_ident(r)} = {parent}.{quote_ident(c)}" for c, r in pairs
            )
        return " AND ".join(
            f"{child}.{quote_ident(c)} = {parent}.{quote_ident(r)}" for c, r in pairs
        )

    def embed(self, table: Table, alias: str, embed: SelectEmbed) -> str:
        fk, one = self.relation(table, embed)
        target = self.table(fk.ref_table if one else fk.table)
        child = self.alias()
        inner = self.select_list(target, child, embed.items)
        condition = self._join_condition(fk, one, alias, child)
        name = quote_ident(embed.alias or embed.relation)
        source = f"FROM {target.qualified} {child} WHERE {condition}"
        if one:
            return (
                f"(SELECT row_to_json({child}_r)"
                f" FROM (SELECT {inner} {source} LIMIT 1) {child}_r) AS {name}"
            )
        return (
            f"(SELECT coalesce(json_agg({child}_r), '[]'::json)"
            f" FROM (SELECT {inner} {source}) {child}_r) AS {name}"
        )

    def inner_joins(self, table: Table, alias: str, items: Sequence[SelectItem]) -> list[str]:
        """EXISTS conditions for embeddings marked !inner (rows without a match are dropped)."""
        conditions = []
        for item in items:
            if isinstance(item, SelectEmbed) and item.join == "inner":
                fk, one = self.relation(table, item)
                target = self.table(fk.ref_table if one else fk.table)
                child = self.alias()
                condition = self._join_condition(fk, one, alias, child)
                conditions.append(
                    f"EXISTS (SELECT 1 FROM {target.qualified} {child} WHERE {condition})"
                )
        return conditions

    # -- filters ----------------------------------------------------------------------

    def condition(self, table: Table, alias: str, condition: Condition) -> str:
        expression, kind = self.field(table, alias, condition.field)
        op = condition.op
        sql: str
        if op == "is":
            sql = f"{expression} {_IS[str(condition.value)]}"
        elif op in ("like", "ilike"):
            pattern = str(condition.value).replace("*", "%")
            keyword = "LIKE" if op == "like" else "ILIKE"
            sql = f"{expression}::text {keyword} {self.params.add(pattern)}::text"
        elif op in ("match", "imatch"):
            operator = "~" if op == "match" else "~*"
            sql = f"{expression}::text {operator} {self.params.add(condition.value)}::text"
        elif op in _TEXT_SEARCH:
            vector = expression if kind == "tsvector" else f"to_tsvector({expression}::text)"
            sql = f"{vector} @@ {_TEXT_SEARCH[op]}({self.params.add(condition.value)}::text)"
        elif op == "in":
            values = list(condition.value or ())
            if not values:
                sql = "false"
            else:
                sql = f"{expression} = ANY({self._typed_array(values, kind)})"
        else:
            value = self._typed(str(condition.value), kind)
            if op in _COMPARE:
                sql = f"{expression} {_COMPARE[op]} {value}"
            elif op in _CONTAINS:
                sql = _contains(expression, op, value, kind)
            elif op == "isdistinct":
                sql = f"{expression} IS DISTINCT FROM {value}"
            else:  # pragma: no cover - the grammar admits no other operator
                raise Invalid(f"unsupported operator {op}", code="PGRST100")
        return f"NOT ({sql})" if condition.negate else f"({sql})"

    def _typed(self, value: str | list[str], kind: str | None) -> str:
        """The value bound as text (a list: as a text array), cast to the column's type."""
        placeholder = self.params.add(value)
        array = "[]" if isinstance(value, list) else ""
        if kind is None or kind == "text":
            return f"{placeholder}::text{array}"
        target = "jsonb" if kind == "jsonb_path" else kind
        return f"{placeholder}::text{array}::{target}{array}"

    def _typed_array(self, values: list[str], kind: str | None) -> str:
        if kind and kind.endswith("[]"):
            raise Invalid("in. does not apply to array columns; use cs/cd/ov", code="PGRST100")
        return self._typed(values, kind)

    def filters(self, table: Table, alias: str, filters: Sequence[Filter]) -> list[str]:
        return [self.filter(table, alias, f) for f in filters]

    def filter(self, table: Table, alias: str, item: Filter) -> str:
        if isinstance(item, Condition):
            return self.condition(table, alias, item)
        assert isinstance(item, Logic)
        joined = f" {item.op.upper()} ".join(self.filter(table, alias, i) for i in item.items)
        return f"NOT ({joined})" if item.negate else f"({joined})"

    def order(self, table: Table, alias: str, terms: Sequence[OrderTerm]) -> str:
        parts = []
        for term in terms:
            expression, _ = self.field(table, alias, term.field)
            text = f"{expression} {'DESC' if term.descending else 'ASC'}"
            if term.nulls:
                text += f" NULLS {term.nulls.upper()}"
            parts.append(text)
        return ", ".join(parts)


def _contains(expression: str, op: str, value: str, kind: str | None) -> str:
    """cs, cd and ov: for arrays, JSON and ranges (on other types PostgreSQL has no such
    operator: a 400 that says so, not its 42883)."""
    applies = (
        kind is None
        or kind in ("json", "jsonb", "jsonb_path")
        or kind.endswith("[]")
        or "range" in kind
    )
    if not applies:
        raise Invalid(
            f"{op} applies to arrays, JSON and ranges, not to {kind}",
            code="42883",
            hint="use eq, like or in on this column",
        )
    return f"{expression} {_CONTAINS[op]} {value}"
