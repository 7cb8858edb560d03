"""The functions of the `api` schema that the data API serves at /v1/db/rpc/{name}, read
from the catalogs with the tables (and reloaded with them).

Only functions the tenant role may execute are listed; names and argument types come from
here, never from the request.
"""

from __future__ import annotations

from dataclasses import dataclass

from orgbase.core.postgres import Connection
from orgbase.services.postgres.schema import SCHEMA, Column, Table, quote_ident


@dataclass(frozen=True)
class Argument:
    name: str
    type: str
    has_default: bool
    is_json: bool


@dataclass(frozen=True)
class Function:
    name: str
    oid: int
    arguments: tuple[Argument, ...]
    returns: str
    """format_type of the return type (``bigint``, ``api.items``, ``record``, ``void``)."""
    returns_set: bool
    volatility: str
    """'i' IMMUTABLE, 's' STABLE, 'v' VOLATILE."""
    columns: dict[str, Column] | None
    """The columns of a composite result (a table type, OUT parameters, RETURNS TABLE);
    None for a scalar (or void) result."""
    result_table: str | None
    """The tenant table whose row type it returns (embedding then follows its keys)."""
    security_definer: bool

    @property
    def qualified(self) -> str:
        return f"{quote_ident(SCHEMA)}.{quote_ident(self.name)}"

    @property
    def read_only(self) -> bool:
        return self.volatility in ("i", "s")

    @property
    def single_json_argument(self) -> bool:
        """One unnamed json/jsonb parameter: the whole body is that argument."""
        return len(self.arguments) == 1 and self.arguments[0].is_json and not self.arguments[0].name

    @property
    def required(self) -> set[str]:
        return {a.name for a in self.arguments if not a.has_default}

    def as_table(self, tables: dict[str, Table]) -> Table:
        """The result as a table the query builder can select, filter and order."""
        source = tables.get(self.result_table or "")
        return Table(
            name=self.name,
            columns=dict(self.columns or {}),
            primary_key=(),
            unique_keys=[],
            outgoing=list(source.outgoing) if source else [],
            incoming=list(source.incoming) if source else [],
        )


_FUNCTIONS = """
SELECT p.oid, p.proname AS name, p.provolatile::text AS volatility, p.proretset AS returns_set,
       p.prosecdef AS security_definer, p.pronargdefaults AS defaults,
       format_type(p.prorettype, NULL) AS returns, t.typrelid AS result_rel,
       t.typtype = 'c' OR p.prorettype = 'record'::regtype AS composite,
       coalesce(p.proallargtypes, p.proargtypes::oid[]) AS all_types,
       coalesce(p.proargmodes::text[], array_fill('i'::text, ARRAY[p.pronargs])) AS modes,
       coalesce(p.proargnames, array_fill(''::text, ARRAY[p.pronargs])) AS names,
       (SELECT tt.table_name FROM orgbase.tenant_tables tt
        JOIN pg_class rc ON rc.oid = t.typrelid
        JOIN pg_namespace rn ON rn.oid = rc.relnamespace
        WHERE tt.schema_name = rn.nspname AND tt.table_name = rc.relname) AS result_table
FROM pg_proc p
JOIN pg_namespace n ON n.oid = p.pronamespace
JOIN pg_type t ON t.oid = p.prorettype
WHERE n.nspname = $1 AND p.prokind = 'f'
  AND has_function_privilege('orgbase_api', p.oid, 'EXECUTE')
  AND p.provariadic = 0
ORDER BY p.proname, p.oid
"""
_TYPES = """
SELECT t.oid, format_type(t.oid, NULL) AS type, t.typcategory AS category,
       t.typcategory = 'A' AS is_array, t.oid IN ('json'::regtype, 'jsonb'::regtype) AS is_json
FROM pg_type t WHERE t.oid = ANY($1::oid[])
"""
_REL_COLUMNS = """
SELECT a.attrelid AS rel, a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type,
       t.typcategory AS category, t.typcategory = 'A' AS is_array,
       a.atttypid IN ('json'::regtype, 'jsonb'::regtype) AS is_json
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""


def _column(name: str, type_: str, category: str, is_array: bool, is_json: bool) -> Column:
    return Column(
        name=name,
        type=type_,
        category=category,
        nullable=True,
        has_default=False,
        identity="",
        generated=False,
        is_array=is_array,
        is_json=is_json,
    )


async def introspect_functions(connection: Connection) -> dict[str, list[Function]]:
    """Functions by name (overloads share a name; a call picks one by its argument names)."""
    rows = await connection.fetch(_FUNCTIONS, SCHEMA)
    type_oids = sorted({oid for r in rows for oid in r["all_types"]})
    types = {r["oid"]: r for r in await connection.fetch(_TYPES, type_oids)}
    rels = sorted({r["result_rel"] for r in rows if r["result_rel"]})
    rel_columns: dict[int, dict[str, Column]] = {}
    for r in await connection.fetch(_REL_COLUMNS, rels):
        rel_columns.setdefault(r["rel"], {})[r["name"]] = _column(
            r["name"], r["type"], r["category"], r["is_array"], r["is_json"]
        )
    found: dict[str, list[Function]] = {}
    for r in rows:
        inputs: list[Argument] = []
        outputs: dict[str, Column] = {}
        in_count = sum(1 for m in r["modes"] if m in ("i", "b"))
        seen_inputs = 0
        for type_oid, mode, name in zip(r["all_types"], r["modes"], r["names"], strict=False):
            info = types[type_oid]
            if mode in ("i", "b"):
                seen_inputs += 1
                inputs.append(
                    Argument(
                        name=name,
                        type=info["type"],
                        has_default=seen_inputs > in_count - r["defaults"],
                        is_json=info["is_json"],
                    )
                )
            if mode in ("o", "b", "t"):
                outputs[name] = _column(
                    name, info["type"], info["category"], info["is_array"], info["is_json"]
                )
        columns: dict[str, Column] | None = None
        if outputs and r["composite"]:
            columns = outputs
        elif r["result_rel"]:
            columns = rel_columns.get(r["result_rel"], {})
        if any(not a.name for a in inputs) and not (len(inputs) == 1 and inputs[0].is_json):
            continue  # unnamed arguments cannot be given by name: not served
        if r["composite"] and columns is None:
            continue  # SETOF record without a column list: not served
        found.setdefault(r["name"], []).append(
            Function(
                name=r["name"],
                oid=r["oid"],
                arguments=tuple(inputs),
                returns=r["returns"],
                returns_set=r["returns_set"],
                volatility=r["volatility"],
                columns=columns,
                result_table=r["result_table"],
                security_definer=r["security_definer"],
            )
        )
    return found
