"""The PostgREST grammar parser, on its own."""

from __future__ import annotations

import pytest

from orgbase.core.errors import Invalid
from orgbase.services.postgres.grammar import (
    Condition,
    Field,
    Logic,
    OrderTerm,
    SelectColumn,
    SelectEmbed,
    Star,
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
