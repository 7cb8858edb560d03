"""The PostgREST grammar parser, on its own."""

from __future__ import annotations

import pytest

from orgbase.core.errors import Invalid
from orgbase.services.postgres.grammar import (
    MAX_DIGITS,
    MAX_LOGIC_DEPTH,
    Condition,
    Field,
    Logic,
    OrderTerm,
    SelectColumn,
    SelectEmbed,
    Star,
    identifier,
    parse_field,
    parse_order,
    parse_query,
    parse_select,
    split_top,
)


def test_select_items() -> None:
    assert parse_select("*") == (Star(),)
    assert parse_select("id,name:title,points::text,data->a->>b") == (
        SelectColumn(Field("id")),
        SelectColumn(Field("title"), alias="name"),
        SelectColumn(Field("points"), cast="text"),
        SelectColumn(Field("data", (("->", "a"), ("->>", "b")))),
    )
    embed = parse_select("owner:people!owner_fk!inner(name,tasks(*))")[0]
    assert embed == SelectEmbed(
        relation="people",
        alias="owner",
        hint="owner_fk",
        join="inner",
        items=(SelectColumn(Field("name")), SelectEmbed(relation="tasks", items=(Star(),))),
    )


@pytest.mark.parametrize(
    "bad",
    [
        "id,,title",
        "a b",
        "id::regclass",
        "x(",
        "x)",
        "1abc",
        'a"b',
        "x->'y'",
        "a(b(c(d(e(f(g))))))",
    ],
)
def test_bad_selects(bad: str) -> None:
    with pytest.raises(Invalid) as caught:
        parse_select(bad)
    assert caught.value.code == "PGRST100"


def test_filters_and_logic() -> None:
    query = parse_query(
        [
            ("id", 'in.(1,"2,3","q\\"x")'),
            ("title", "not.ilike.*a*"),
            ("or", "(a.eq.1,and(b.gt.2,c.not.is.null))"),
            ("not.and", "(d.lt.4,e.eq.5)"),
        ]
    )
    assert query.filters == [
        Condition(Field("id"), "in", ("1", "2,3", 'q"x')),
        Condition(Field("title"), "ilike", "*a*", negate=True),
        Logic(
            "or",
            (
                Condition(Field("a"), "eq", "1"),
                Logic(
                    "and",
                    (
                        Condition(Field("b"), "gt", "2"),
                        Condition(Field("c"), "is", "null", negate=True),
                    ),
                ),
            ),
        ),
        Logic(
            "and", (Condition(Field("d"), "lt", "4"), Condition(Field("e"), "eq", "5")), negate=True
        ),
    ]


@pytest.mark.parametrize(
    "pair",
    [
        ("id", "eqq.1"),
        ("id", "eq"),
        ("id", "in.1,2"),
        ("id", "is.maybe"),
        ("or", "a.eq.1"),
        ("or", "()"),
        ("limit", "-1"),
        ("offset", "x"),
        ("owner.name", "eq.x"),
        ("id;drop", "eq.1"),
    ],
)
def test_bad_filters(pair: tuple[str, str]) -> None:
    with pytest.raises(Invalid):
        parse_query([pair])


def test_order_and_paging() -> None:
    assert parse_order("a.desc.nullslast,b,c->>k.asc.nullsfirst") == (
        OrderTerm(Field("a"), True, "last"),
        OrderTerm(Field("b")),
        OrderTerm(Field("c", (("->>", "k"),)), False, "first"),
    )
    query = parse_query([("limit", "20"), ("offset", "40"), ("on_conflict", "a,b")])
    assert (query.limit, query.offset, query.on_conflict) == (20, 40, ("a", "b"))
    with pytest.raises(Invalid):
        parse_order("a.sideways")


def test_split_respects_quotes_and_parentheses() -> None:
    assert split_top('a,"b,c",d(e,f),g') == ["a", '"b,c"', "d(e,f)", "g"]
    with pytest.raises(Invalid):
        split_top('a,"b')


def test_fields_and_json_paths() -> None:
    assert parse_field(" data->a->>b ") == Field("data", (("->", "a"), ("->>", "b")))
    assert parse_field('data->"a key"').path == (("->", "a key"),)
    assert Field("data", (("->>", "k"),)).default_name == "k"
    assert Field("title").default_name == "title"
    for bad in ("data->", "data->a.b", "1col", "a-b", "data->'k'"):
        with pytest.raises(Invalid):
            parse_field(bad)


def test_identifiers_are_bounded() -> None:
    assert identifier("a" * 63) == "a" * 63
    with pytest.raises(Invalid):
        identifier("a" * 64)  # PostgreSQL would truncate it to another name


def test_quoted_values_keep_every_character() -> None:
    condition = parse_query([("title", r'eq."a,b).c\"d\\"')]).filters[0]
    assert condition == Condition(Field("title"), "eq", 'a,b).c"d\\')
    unquoted = parse_query([("title", "eq.a.b")]).filters[0]
    assert isinstance(unquoted, Condition)
    assert unquoted.value == "a.b"  # only the first dot separates the operator


def test_is_values_are_case_insensitive_and_closed() -> None:
    assert parse_query([("done", "is.TRUE")]).filters == [Condition(Field("done"), "is", "true")]
    with pytest.raises(Invalid):
        parse_query([("done", "is.'true'")])


def test_logic_depth_is_bounded() -> None:
    def nested(depth: int) -> str:
        return "(" + "and(" * (depth - 1) + "a.eq.1" + ")" * (depth - 1) + ")"

    assert parse_query([("or", nested(MAX_LOGIC_DEPTH))]).filters
    with pytest.raises(Invalid):
        parse_query([("or", nested(MAX_LOGIC_DEPTH + 1))])


def test_paging_numbers_are_ascii_and_bounded() -> None:
    assert parse_query([("limit", "9" * MAX_DIGITS)]).limit == int("9" * MAX_DIGITS)
    for bad in ("9" * (MAX_DIGITS + 1), "²", "1.5", " 1", ""):
        with pytest.raises(Invalid):
            parse_query([("limit", bad)])


def test_text_search_languages_are_refused() -> None:
    with pytest.raises(Invalid):
        parse_query([("title", "fts(english).cat")])
    assert parse_query([("title", "fts.cat & dog")]).filters == [
        Condition(Field("title"), "fts", "cat & dog")
    ]


def test_an_empty_select_means_every_column() -> None:
    assert parse_query([("select", " ")]).select == (Star(),)
    assert parse_select("tasks()") == (SelectEmbed(relation="tasks", items=(Star(),)),)


def test_columns_and_on_conflict_take_identifiers() -> None:
    query = parse_query([("columns", "a,b"), ("on_conflict", "c")])
    assert (query.columns, query.on_conflict) == (("a", "b"), ("c",))
    with pytest.raises(Invalid):
        parse_query([("columns", "a,b c")])
