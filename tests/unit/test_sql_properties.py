"""Property tests of the data API's path from a query string to SQL: whatever the values,
they are bound parameters, never SQL text; names are quoted; bad input is a PGRST error."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orgbase.core.errors import Invalid, OrgbaseError
from orgbase.core.postgres import CONTEXT_PARAMS
from orgbase.platform.errors import http_status
from orgbase.services.postgres.grammar import Logic, parse_query
from orgbase.services.postgres.request import apply_range
from tests.unit.tables import read_statement, tables

TASKS = tables()["tasks"]
PLACEHOLDER = re.compile(r"\$(\d+)")
MARK = "\u00a7"  # a character no SQL the builder writes contains
INJECTIONS = [
    "'; DROP TABLE api.tasks; --",
    '" OR 1=1 --',
    "$1",
    "1) OR (1=1",
    "*/pg_sleep(5)/*",
    "\\'",
    "x\u0000y",
    'a"b',
    "),(",
    "ctx.role",
]
SCALAR_OPS = ["eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike", "match", "fts", "wfts"]
TEXT_COLUMNS = ["title"]
TYPED_COLUMNS = ["id", "points", "done", "due", "created_at", "owner_id"]


@dataclass
class Generated:
    """A query string and what went into it."""

    pairs: list[tuple[str, str]] = field(default_factory=list)
    values: list[str] = field(default_factory=list)
    """Every value a client chose, each starting with MARK so it cannot occur in SQL."""
    aliases: list[str] = field(default_factory=list)


def quoted(value: str) -> str:
    """A value as the grammar's double-quoted form: any character survives."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


values = st.one_of(st.text(max_size=20), st.sampled_from(INJECTIONS)).map(lambda v: MARK + v)
json_keys = st.from_regex(r"[A-Za-z_$-][A-Za-z0-9_$-]{0,8}", fullmatch=True)


@st.composite
def conditions(draw: st.DrawFn, generated: Generated) -> str:
    """One `field.op.value` and the values it holds, recorded in ``generated``."""
    column = draw(st.sampled_from([*TEXT_COLUMNS, *TYPED_COLUMNS, "data"]))
    if column == "data":
        column += "".join(
            draw(
                st.lists(
                    st.tuples(st.sampled_from(["->", "->>"]), json_keys).map("".join),
                    min_size=1,
                    max_size=3,
                )
            )
        )
    negate = draw(st.booleans())
    op = draw(st.sampled_from([*SCALAR_OPS, "in", "is"]))
    if op == "is":
        operand = draw(st.sampled_from(["null", "not_null", "true", "false", "unknown"]))
    elif op == "in":
        items = draw(st.lists(values, min_size=1, max_size=4))
        generated.values += items
        operand = "(" + ",".join(quoted(item) for item in items) + ")"
    else:
        value = draw(values)
        generated.values.append(value)
        operand = quoted(value)
    return f"{column}.{'not.' if negate else ''}{op}.{operand}"


@st.composite
def queries(draw: st.DrawFn) -> Generated:
    generated = Generated()
    for _ in range(draw(st.integers(0, 3))):
        key, _, value = draw(conditions(generated)).partition(".")
        generated.pairs.append((key.split("->")[0] if "->" not in key else key, value))
    if draw(st.booleans()):
        group = [draw(conditions(generated)) for _ in range(draw(st.integers(1, 3)))]
        op = draw(st.sampled_from(["or", "and", "not.or", "not.and"]))
        generated.pairs.append((op, "(" + ",".join(group) + ")"))
    selected = []
    for name in draw(st.lists(st.sampled_from(sorted(TASKS.columns)), max_size=4)):
        alias = draw(st.one_of(st.none(), st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True)))
        if alias:
            generated.aliases.append(alias)
        selected.append(f"{alias}:{name}" if alias else name)
    if draw(st.booleans()):
        selected.append("owner(name)")
    if selected:
        generated.pairs.append(("select", ",".join(selected)))
    order = draw(st.lists(st.sampled_from(TYPED_COLUMNS), max_size=2, unique=True))
    if order:
        generated.pairs.append(("order", ",".join(f"{c}.desc.nullslast" for c in order)))
    if draw(st.booleans()):
        generated.pairs.append(("limit", str(draw(st.integers(0, 10**6)))))
    return generated


def build(generated: Generated, range_header: str | None = None) -> tuple[str, list[object]]:
    # Through the URL, as a request brings it: encoded, then decoded as the handler does.
    query_string = urlencode(generated.pairs)
    query = parse_query(parse_qsl(query_string, keep_blank_values=True))
    apply_range(query, range_header)
    return read_statement("tasks", query, "exact")


def flatten(params: list[object]) -> list[object]:
    return [v for p in params for v in (p if isinstance(p, list) else [p])]


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(queries())
def test_values_are_parameters_never_sql(generated: Generated) -> None:
    sql, params = build(generated)
    # Every value is bound, as given (a like pattern with * turned into %)...
    bound = {str(v) for v in flatten(params)}
    for value in generated.values:
        assert value in bound or value.replace("*", "%") in bound, value
    # ...and no part of any value is in the SQL text (each starts with a mark SQL lacks).
    assert MARK not in sql
    # The placeholders are exactly the parameters, after the context's own.
    used = {int(n) for n in PLACEHOLDER.findall(sql)}
    assert used == set(range(CONTEXT_PARAMS + 1, CONTEXT_PARAMS + 1 + len(params)))


@settings(max_examples=200)
@given(queries(), st.data())
def test_sql_depends_on_the_shape_only(generated: Generated, data: st.DataObject) -> None:
    """Other values in the same places give the very same SQL: no value reaches the text."""
    sql, params = build(generated)
    swap = {v: data.draw(values) for v in generated.values}
    other = Generated(
        pairs=[(k, _swapped(v, swap)) for k, v in generated.pairs],
        values=list(swap.values()),
        aliases=generated.aliases,
    )
    other_sql, other_params = build(other)
    assert other_sql == sql
    assert len(other_params) == len(params)


def _swapped(text: str, swap: dict[str, str]) -> str:
    for old, new in swap.items():
        text = text.replace(quoted(old), quoted(new))
    return text


@settings(max_examples=200)
@given(queries())
def test_names_are_quoted(generated: Generated) -> None:
    sql, _ = build(generated)
    # Every column reference of a table alias is a quoted identifier.
    assert not re.search(r'\b(?:t|_e\d+)\.(?!")', sql), sql
    for alias in generated.aliases:
        assert f'AS "{alias}"' in sql


@settings(max_examples=100)
@given(queries(), st.integers(0, 10**6), st.integers(0, 10**6))
def test_a_range_header_is_bound_like_limit_and_offset(
    generated: Generated, first: int, span: int
) -> None:
    sql, params = build(generated, f"items={first}-{first + span}")
    limit_and_offset = [int(n) for n in PLACEHOLDER.findall(sql.rsplit("LIMIT", 1)[1])]
    limit, offset = (params[n - CONTEXT_PARAMS - 1] for n in limit_and_offset)
    assert offset == first
    assert isinstance(limit, int)
    assert limit <= min(span + 1, 1000)


grammar_text = st.text(alphabet='abcdeiklnoqrstxy_.,()"\\:!*->0123456789 $', max_size=40)
keys = st.one_of(
    st.sampled_from(["select", "order", "limit", "offset", "or", "not.and", "on_conflict"]),
    st.sampled_from(sorted(TASKS.columns)),
    grammar_text,
)


@settings(max_examples=500)
@given(st.lists(st.tuples(keys, st.one_of(grammar_text, st.text(max_size=20))), max_size=4))
def test_any_input_parses_or_fails_as_a_request_error(pairs: list[tuple[str, str]]) -> None:
    """Whatever a client sends, the parser and the builder answer with SQL or with one of
    the API's own errors (a 4xx with a code), never with another exception (a 500)."""
    stage, refused = _refusal(pairs)
    if refused is not None:
        assert 400 <= http_status(refused) < 500
        assert refused.code
    if stage == "parse":
        assert refused is not None
        assert refused.code == "PGRST100"  # the parser's errors are all PGRST100


def _refusal(pairs: list[tuple[str, str]]) -> tuple[str, OrgbaseError | None]:
    """Where an API error came from (parse or build) and which; any other exception escapes."""
    try:
        query = parse_query(pairs)
    except Invalid as refused:
        return "parse", refused
    try:
        read_statement("tasks", query, None)
    except OrgbaseError as refused:
        return "build", refused
    return "", None


def test_a_newline_parses_in_a_group_as_at_the_top() -> None:
    top = parse_query([("title", 'eq."a\nb"')]).filters[0]
    group = parse_query([("or", '(title.eq."a\nb")')]).filters[0]
    assert isinstance(group, Logic)
    assert group.items == (top,)
