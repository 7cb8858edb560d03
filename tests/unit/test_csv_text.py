"""The one CSV writer: what any CSV reader reads back is what was written (a bare CR, quotes,
commas and line feeds inside a cell included), and formula escaping touches only text that
a spreadsheet would run."""

from __future__ import annotations

import csv
import io

from hypothesis import given
from hypothesis import strategies as st

from orgbase.core.csv_text import FORMULA_STARTS, neutralise, write_csv

cells = st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))


@given(st.lists(st.lists(cells, min_size=2, max_size=4), min_size=1, max_size=5))
def test_every_cell_reads_back_as_written(rows: list[list[str]]) -> None:
    width = len(rows[0])
    rows = [(row + [""] * width)[:width] for row in rows]
    text = write_csv([f"c{n}" for n in range(width)], rows).decode()
    read = list(csv.reader(io.StringIO(text, newline="")))
    assert read[1:] == rows


@given(cells)
def test_escaped_text_never_starts_a_formula(text: str) -> None:
    escaped = neutralise(text)
    assert not escaped.startswith(FORMULA_STARTS)
    assert escaped in (text, "'" + text)


def test_numbers_and_a_lone_empty_cell() -> None:
    assert write_csv(["n"], [[-5], [""]], escape_formulas=True) == b'n\n-5\n""\n'
    assert write_csv(["=h"], [["=1", "-x"]], escape_formulas=True) == b"'=h\n'=1,'-x\n"
