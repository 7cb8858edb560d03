"""JSON as a client sends it, checked below the JSON level before any parser sees it.

Two things every parser here (msgspec, Python's json behind Extended JSON) turns into an
exception that is not a parse error: bytes that are not UTF-8 (UnicodeDecodeError) and
nesting deeper than the interpreter's recursion limit (RecursionError). Both are refused
up front with a 400 and a precise code, whatever route or socket the JSON arrives on.
"""

from __future__ import annotations

from orgbase.core.errors import Invalid

MAX_JSON_DEPTH = 100
"""Arrays and objects nested deeper are refused (MongoDB's own limit for documents)."""

# Keeps only quotes and brackets, all brackets made square: nesting is all that is left.
_SQUARE = bytes.maketrans(b"{}", b"[]")
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}')


def nests_deeper(raw: bytes, limit: int) -> bool:
    """Do arrays and objects nest deeper than ``limit`` in ``raw`` (brackets inside strings
    do not count)? Every step runs at C speed: escapes that could hide a quote go first,
    then everything but quotes and brackets, then the strings; each pass of the loop
    removes the innermost pairs. The JSON parser refuses unbalanced input anyway, so
    unbalanced leftovers count as no nesting."""
    unescaped = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    skeleton = unescaped.translate(_SQUARE, _NOT_STRUCTURE)
    brackets = b"".join(skeleton.split(b'"')[0::2])  # what lies between strings
    for _ in range(limit):
        shorter = brackets.replace(b"[]", b"")
        if len(shorter) == len(brackets):
            return False
        brackets = shorter
    return b"[]" in brackets


def check_json_input(raw: bytes, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Refuse bytes no JSON parser here should be handed (400 with a precise code)."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Invalid(
            f"the body is not valid UTF-8 (byte {exc.start})", code="invalid_utf8"
        ) from None
    # Cheap first: a body with fewer brackets than the limit cannot nest deeper.
    if raw.count(b"[") + raw.count(b"{") > max_depth and nests_deeper(raw, max_depth):
        raise Invalid(f"JSON nests deeper than {max_depth} levels", code="json_too_deep")
