"""The SQL builder on its own: names from the schema cache, quoted; values bound."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest

from orgbase.core.errors import Invalid, NotFound, OrgbaseError
from orgbase.services.postgres import grammar
from orgbase.services.postgres.schema import ForeignKey
from orgbase.services.postgres.sql import Builder, Params
from tests.unit.tables import tables

PLACEHOLDER = re.compile(r"\$(\d+)")


def builder(start: int = 1) -> Builder:
    return Builder(tables(), Params(start))


def bound(sql: str, params: Params) -> dict[int, Any]:
    """Each placeholder in ``sql`` with the value bound to it (all must be bound)."""
    numbers = {int(n) for n in PLACEHOLDER.findall(sql)}
    values = {params.start + i: v for i, v in enumerate(params.values)}
    assert numbers == set(values), (sql, params.values)
    return values


def condition(sql_builder: Builder, item: grammar.Condition, table: str = "tasks") -> str:
    return sql_builder.condition(sql_builder.tables[table], "t", item)


def test_params_number_from_their_start() -> None:
    params = Params(5)
    assert [params.add("a"), params.add(["b"]), params.add(3)] == ["$5", "$6", "$7"]
    assert params.values == ["a", ["b"], 3]


@pytest.mark.parametrize(
    ("op", "symbol"), [("eq", "="), ("neq", "<>"), ("gt", ">"), ("gte", ">="), ("lt", "<")]
)
def test_comparisons_bind_the_value_cast_to_the_column_type(op: str, symbol: str) -> None:
    sql_builder = builder()
    sql = condition(sql_builder, grammar.Condition(grammar.Field("points"), op, "42"))
    assert f't."points" {symbol} $1::text::integer' in sql
    assert bound(sql, sql_builder.params) == {1: "42"}


def test_negation_wraps_the_whole_condition() -> None:
    sql = condition(builder(), grammar.Condition(grammar.Field("title"), "eq", "x", negate=True))
    assert sql.startswith("NOT (")
    assert sql.endswith(")")


@pytest.mark.parametrize(
    ("op", "operand", "sql_part", "value"),
    [
        ("ilike", "*50%_off*", "ILIKE $1::text", "%50%_off%"),  # * is the URL's wildcard
        ("like", "a*", "LIKE $1::text", "a%"),
        ("imatch", "^a.*b$", "~* $1::text", "^a.*b$"),
        ("wfts", "cat & dog", "websearch_to_tsquery($1::text)", "cat & dog"),
    ],
)
def test_text_operators_bind_their_operand(
    op: str, operand: str, sql_part: str, value: str
) -> None:
    sql_builder = builder()
    sql = condition(sql_builder, grammar.Condition(grammar.Field("title"), op, operand))
    assert sql_part in sql
    assert bound(sql, sql_builder.params) == {1: value}


def test_in_binds_one_array_of_the_column_type() -> None:
    sql_builder = builder()
    sql = condition(sql_builder, grammar.Condition(grammar.Field("id"), "in", ("1", "2", "3")))
    assert "= ANY($1::text[]::bigint[])" in sql
    assert bound(sql, sql_builder.params) == {1: ["1", "2", "3"]}


def test_an_empty_in_list_matches_nothing_and_binds_nothing() -> None:
    sql_builder = builder()
    assert condition(sql_builder, grammar.Condition(grammar.Field("id"), "in", ())) == "(false)"
    assert sql_builder.params.values == []


def test_in_on_an_array_column_is_refused() -> None:
    with pytest.raises(Invalid) as caught:
        condition(builder(), grammar.Condition(grammar.Field("tags"), "in", ("a",)))
    assert caught.value.code == "PGRST100"


@pytest.mark.parametrize(("value", "keyword"), [("null", "IS NULL"), ("not_null", "IS NOT NULL")])
def test_is_takes_keywords_from_its_own_table(value: str, keyword: str) -> None:
    sql_builder = builder()
    assert keyword in condition(sql_builder, grammar.Condition(grammar.Field("due"), "is", value))
    assert sql_builder.params.values == []


def test_containment_applies_to_arrays_and_json_only() -> None:
    sql_builder = builder()
    assert "@> $1::text::text[]" in condition(
        sql_builder, grammar.Condition(grammar.Field("tags"), "cs", "{a}")
    )
    assert "<@ $2::text::jsonb" in condition(
        sql_builder, grammar.Condition(grammar.Field("data"), "cd", "{}")
    )
    with pytest.raises(Invalid) as caught:
        condition(sql_builder, grammar.Condition(grammar.Field("title"), "ov", "{a}"))
    assert caught.value.code == "42883"


def test_json_paths_bind_keys_and_small_indexes() -> None:
    sql_builder = builder()
    path = (("->", "items"), ("->", "0"), ("->", "1234567890"), ("->>", "name"))
    expression, kind = sql_builder.field(
        sql_builder.tables["tasks"], "t", grammar.Field("data", path)
    )
    assert kind == "text"  # ->> at the end gives text
    # An index that fits PostgreSQL's int is an int; a longer digit run stays a key.
    assert bound(expression, sql_builder.params) == {
        1: "items",
        2: 0,
        3: "1234567890",
        4: "name",
    }
    assert "$2::int" in expression
    assert "$3::text" in expression


def test_a_json_path_on_a_plain_column_is_refused() -> None:
    with pytest.raises(Invalid) as caught:
        builder().field(tables()["tasks"], "t", grammar.Field("title", (("->", "a"),)))
    assert caught.value.code == "42883"


def test_unknown_names_are_errors_before_any_sql() -> None:
    sql_builder = builder()
    with pytest.raises(Invalid) as column:
        condition(sql_builder, grammar.Condition(grammar.Field("nope"), "eq", "1"))
    assert column.value.code == "42703"
    with pytest.raises(NotFound) as table:
        sql_builder.table("nope")
    assert table.value.code == "PGRST205"


def test_star_lists_every_column_quoted() -> None:
    sql = builder().select_list(tables()["people"], "t", (grammar.Star(),))
    assert sql == ", ".join(f't."{c}" AS "{c}"' for c in ("id", "name", "email"))


def test_aliases_and_casts() -> None:
    items = (grammar.SelectColumn(grammar.Field("points"), alias="score", cast="float"),)
    sql = builder().select_list(tables()["tasks"], "t", items)
    assert sql == '(t."points")::double precision AS "score"'


def test_names_with_quotes_are_escaped() -> None:
    """Names come from the catalog; one with a quote still cannot end its identifier."""
    schema = tables()
    people = schema["people"]
    odd = 'we"ird'
    people.columns[odd] = dataclasses.replace(people.columns["name"], name=odd)
    sql = Builder(schema, Params(1)).select_list(
        people, "t", (grammar.SelectColumn(grammar.Field(odd)),)
    )
    assert sql == 't."we""ird" AS "we""ird"'


def test_embedding_one_and_many() -> None:
    sql_builder = builder()
    items = grammar.parse_select("title,owner(name),comments(body)")
    sql = sql_builder.select_list(sql_builder.tables["tasks"], "t", items)
    # To one (tasks.owner_id -> people.id): one object; to many: an array, [] when none.
    assert '_e1."id" = t."owner_id"' in sql
    assert "row_to_json" in sql
    assert "LIMIT 1" in sql
    assert '_e2."task_id" = t."id"' in sql
    assert "'[]'::json" in sql
    assert sql.count('AS "owner"') == 1
    assert sql.count('AS "comments"') == 1


def test_embedding_needs_a_foreign_key() -> None:
    with pytest.raises(Invalid) as caught:
        builder().select_list(tables()["people"], "t", grammar.parse_select("comments(*)"))
    assert caught.value.code == "PGRST200"


def test_two_foreign_keys_to_one_table_need_a_hint() -> None:
    schema = tables()
    tasks = schema["tasks"]
    tasks.columns["reviewer_id"] = tasks.columns["owner_id"]
    second = ForeignKey("tasks_reviewer_id_fkey", "tasks", ("reviewer_id",), "people", ("id",))
    tasks.outgoing.append(second)
    schema["people"].incoming.append(second)
    with pytest.raises(Invalid) as caught:
        Builder(schema, Params(1)).select_list(tasks, "t", grammar.parse_select("people(*)"))
    assert caught.value.code == "PGRST201"
    hinted = Builder(schema, Params(1)).select_list(
        tasks, "t", grammar.parse_select("people!tasks_reviewer_id_fkey(name)")
    )
    assert '= t."reviewer_id"' in hinted


def test_inner_embeddings_become_exists_conditions() -> None:
    sql_builder = builder()
    items = grammar.parse_select("title,comments!inner(body),owner(name)")
    conditions = sql_builder.inner_joins(sql_builder.tables["tasks"], "t", items)
    assert len(conditions) == 1
    assert conditions[0].startswith('EXISTS (SELECT 1 FROM "api"."comments"')


def test_logic_groups_nest_and_negate() -> None:
    sql_builder = builder()
    tree = grammar.Logic(
        "or",
        (
            grammar.Condition(grammar.Field("done"), "is", "true"),
            grammar.Logic(
                "and",
                (
                    grammar.Condition(grammar.Field("points"), "gt", "1"),
                    grammar.Condition(grammar.Field("points"), "lt", "9"),
                ),
            ),
        ),
        negate=True,
    )
    sql = sql_builder.filter(sql_builder.tables["tasks"], "t", tree)
    assert sql.startswith("NOT (")
    assert " OR " in sql
    assert " AND " in sql
    assert sql.count("(") == sql.count(")")
    assert bound(sql, sql_builder.params) == {1: "1", 2: "9"}


def test_order_terms() -> None:
    terms = (
        grammar.OrderTerm(grammar.Field("due"), True, "last"),
        grammar.OrderTerm(grammar.Field("title")),
    )
    sql = builder().order(tables()["tasks"], "t", terms)
    assert sql == 't."due" DESC NULLS LAST, t."title" ASC'


def test_an_empty_selection_is_refused() -> None:
    with pytest.raises(OrgbaseError):
        builder().select_list(tables()["tasks"], "t", ())


def test_embedding_an_unknown_relation_names_it() -> None:
    embed = grammar.SelectEmbed(relation="ghosts", items=(grammar.Star(),))
    with pytest.raises(Invalid) as caught:
        builder().select_list(tables()["tasks"], "t", (embed,))
    assert "ghosts" in caught.value.message
