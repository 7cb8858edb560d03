"""The error catalog against the source: every code raised anywhere in orgbase is listed
with its kind's status, every listed code is raised somewhere, nothing answers an error
by hand, and docs/errors.md is the catalog's (``make check`` runs this module).

Dead lines fail too: the catalog is what clients are told they may see (docs/errors.md),
so a code no longer raised must leave it with its last raise site. The generic codes by
status (``CODE_FOR_STATUS``) are raised through Litestar's own refusals, which the source
cannot show, and count as raised.
"""

from __future__ import annotations

import ast
from collections import Counter
from functools import cache

from orgbase.core.error_catalog import CATALOG, CODE_FOR_STATUS, SECTIONS
from orgbase.core.error_render import close_of, kind_status
from orgbase.core.errors import OrgbaseError
from orgbase.core.pg_errors import is_sqlstate, status_for_sqlstate
from orgbase.platform.error_docs import markdown
from tests.support.error_sites import ROOT, Scan, Site, modules, scan

STORAGE_SECTION = "Storage (Supabase Storage's codes where its clients read them)"

# Functions whose codes are made at run time on purpose, and why that is safe.
DYNAMIC = {
    # A failed statement's SQLSTATE: statuses from status_for_sqlstate, as PostgREST's
    # (tests/unit/test_postgres_errors.py pins them and the kinds translate picks).
    "orgbase.core.pg_errors.translate",
    # Litestar's own refusals: CODE_FOR_STATUS (checked below).
    "orgbase.platform.errors._framework_error",
}


@cache
def _scan() -> Scan:
    return scan(frozenset(DYNAMIC))


def _status(code: str) -> int:
    return CATALOG[code].status if code in CATALOG else status_for_sqlstate(code)


def _listing(sites: list[Site]) -> str:
    return "\n".join(f"  {site.where}: {site.code} ({site.kind.__name__})" for site in sites)


def test_every_code_is_read_from_the_source() -> None:
    """A code built at run time (an f-string, a method's parameter) cannot be checked."""
    assert _scan().unresolved == [], "codes the catalog test cannot read:\n" + "\n".join(
        _scan().unresolved
    )


def test_the_scan_finds_the_raise_sites() -> None:
    """The walker itself works: it sees the sites it must (else every check is empty)."""
    codes = Counter(site.code for site in _scan().sites)
    assert codes["session_revoked"] >= 5  # literals, pg_errors and a socket's revocation
    assert codes["token_expired"] >= 2  # through the token_error factory
    assert codes["oidc_id_token_invalid"] >= 5  # the refused() factory's default
    assert codes["invalid_webhook_url"] >= 1  # a module constant
    assert codes["payload_too_large"] >= 1  # a kind's default code
    assert len(_scan().sites) > 300


def test_every_raised_code_is_in_the_catalog() -> None:
    missing = [s for s in _scan().sites if s.code not in CATALOG and not is_sqlstate(s.code)]
    assert missing == [], (
        "add these codes to orgbase/core/error_catalog.py (one line each), then regenerate"
        " docs/errors.md:\n" + _listing(missing)
    )


def test_the_catalog_status_is_the_raising_kinds() -> None:
    """A code raised as Forbidden but listed as 404 would answer a status its kind
    contradicts (and the same code twice with two statuses is caught here too)."""
    wrong = [
        site
        for site in _scan().sites
        if (site.code in CATALOG or is_sqlstate(site.code))
        and kind_status(site.kind) != _status(site.code)
    ]
    shown = "\n".join(
        f"  {s.where}: {s.code} is {_status(s.code)} in the catalog, "
        f"{s.kind.__name__} is {kind_status(s.kind)}"
        for s in wrong
    )
    assert wrong == [], "statuses that disagree:\n" + shown


def test_every_catalog_entry_is_raised() -> None:
    raised = {site.code for site in _scan().sites} | set(CODE_FOR_STATUS.values())
    dead = sorted(set(CATALOG) - raised)
    assert dead == [], f"catalog entries nothing raises (remove them): {dead}"


def test_the_codes_without_a_code_of_their_own_have_their_status() -> None:
    for status, code in CODE_FOR_STATUS.items():
        assert CATALOG[code].status == status, code


def test_no_code_is_listed_twice() -> None:
    listed = Counter(code for _, table in SECTIONS for code in table)
    assert [code for code, times in listed.items() if times > 1] == []


def test_codes_are_stable_identifiers() -> None:
    """Lower-case words (PostgREST's own keep their PGRSTnnn, Supabase Storage's its
    CamelCase names, which its clients read), never SQLSTATE-shaped."""
    borrowed = {code for code in dict(SECTIONS)[STORAGE_SECTION] if code != code.lower()}
    for code in CATALOG:
        assert not is_sqlstate(code), code
        assert code.replace("_", "").isalnum(), code
        assert code.startswith("PGRST") or code in borrowed or code == code.lower(), code


def test_close_codes_are_websocket_close_codes() -> None:
    for code in CATALOG:
        close = close_of(OrgbaseError("x", code=code))
        assert close in (1011, 1013) or 4000 <= close <= 4999, (code, close)


def _literal_status(node: ast.Dict) -> bool:
    """An ASGI message with a literal 4xx/5xx status."""
    for key, value in zip(node.keys, node.values, strict=True):
        if isinstance(key, ast.Constant) and key.value == "status":
            literal = value.value if isinstance(value, ast.Constant) else None
            return type(literal) is int and literal >= 400
    return False


def _literal_close(node: ast.Call) -> bool:
    """A close called (``socket.close(4401, ...)``) or scheduled (``call_later(t,
    sub.close, 4401, ...)``) with a literal code other than a normal end (1000, 1001)."""
    given = [keyword.value for keyword in node.keywords if keyword.arg == "code"]
    if isinstance(node.func, ast.Attribute) and node.func.attr == "close":
        given += node.args[:1]
    for at, argument in enumerate(node.args):
        if isinstance(argument, ast.Attribute) and argument.attr == "close":
            given += node.args[at + 1 : at + 2]
    codes = [
        n.value
        for argument in given
        for n in ast.walk(argument)
        if isinstance(n, ast.Constant) and type(n.value) is int
    ]
    return any(code not in (1000, 1001) for code in codes)


def _close_pair(node: ast.Tuple) -> bool:
    """A ``(4401, "reason")`` pair: a close decided by hand."""
    if len(node.elts) != 2 or not all(isinstance(e, ast.Constant) for e in node.elts):
        return False
    code, reason = (e.value for e in node.elts if isinstance(e, ast.Constant))
    return type(code) is int and 4000 <= code <= 4999 and isinstance(reason, str)


def _hand_written(tree: ast.Module) -> list[int]:
    """Lines that answer an error without the catalog."""
    return [
        node.lineno
        for node in ast.walk(tree)
        if (isinstance(node, ast.Dict) and _literal_status(node))
        or (isinstance(node, ast.Call) and _literal_close(node))
        or (isinstance(node, ast.Tuple) and _close_pair(node))
    ]


def test_no_error_is_answered_by_hand() -> None:
    """Raw ASGI layers answer through platform.errors.send_error and sockets close through
    the catalog's close_of: a literal status or close code elsewhere is a second mapping."""
    found = []
    for module, tree in modules():
        lines = _hand_written(tree)
        found += [f"{module.__name__}:{line}" for line in lines]
    assert found == [], f"errors answered by hand: {found}"


def test_docs_errors_md_is_the_catalogs() -> None:
    committed = (ROOT / "docs" / "errors.md").read_text()
    assert committed == markdown(), (
        "docs/errors.md is stale: python -m orgbase.platform.error_docs > docs/errors.md"
    )
