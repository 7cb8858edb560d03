"""CSV as orgbase answers it: one writer, one media type, and formula escaping.

Litestar adds ``; charset=utf-8`` to every ``text/*`` media type it sends, so the type is
named without one (naming it too gave ``text/csv; charset=utf-8; charset=utf-8``).

A spreadsheet opening a CSV runs a cell that begins with ``=``, ``+``, ``-`` or ``@`` (or
a tab or carriage return before one) as a formula: text an org's users wrote becomes a
formula in an admin's spreadsheet (OWASP, "CSV Injection"). With ``escape_formulas`` such
text cells get a leading ``'``, which spreadsheets show as text. Only strings are escaped:
a number (``-5``) stays a number.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

MEDIA_TYPE = "text/csv"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NEEDS_QUOTES = re.compile(r'[",\r\n]')


def neutralise(text: str) -> str:
    """``text`` as a spreadsheet shows it, never runs it."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _cell(value: Any) -> str:
    text = str(value)
    # Python's csv module leaves a bare CR unquoted (with "\n" line ends), and a reader
    # then ends the row there: every field with a quote, comma, CR or LF is quoted.
    if _NEEDS_QUOTES.search(text):
        return '"' + text.replace('"', '""') + '"'
    return text


def _line(fields: Sequence[Any], escape_formulas: bool) -> str:
    if escape_formulas:
        fields = [neutralise(v) if isinstance(v, str) else v for v in fields]
    if len(fields) == 1 and fields[0] == "":
        return '""\n'  # an empty line would read as no row at all
    return ",".join(_cell(v) for v in fields) + "\n"


def write_csv(
    header: Sequence[str], rows: Iterable[Sequence[Any]], *, escape_formulas: bool = False
) -> bytes:
    """A header line, then one line per row (RFC 4180 quoting, "\n" line ends)."""
    lines = [_line(header, escape_formulas)]
    lines += [_line(row, escape_formulas) for row in rows]
    return "".join(lines).encode()
