"""``docs/errors.md``, written from the error catalog:

    python -m orgbase.platform.error_docs > docs/errors.md

A unit test fails when the committed page is not what this prints.
"""

from __future__ import annotations

import sys

from orgbase.core.error_catalog import SECTIONS, Code, close_for_status
from orgbase.core.pg_errors import STATUS_BY_SQLSTATE, STATUS_BY_SQLSTATE_CLASS

_HEADER = """\
<!-- Generated from orgbase/core/error_catalog.py by
     `python -m orgbase.platform.error_docs > docs/errors.md`: edit the catalog, not this. -->

# Error codes

Every error the API answers is JSON of one shape, with a stable, machine-readable `code`:

```json
{"code": "token_expired", "message": "the access token has expired", "details": null,
 "hint": null, "request_id": "7f0c..."}
```

Clients branch on `code` (and the HTTP status), never on `message`. A WebSocket refused
when it connects is sent `{"type": "error", "code", "message"}`, then closed with the close
code below and the `code` as the close reason; a socket ended later (a session revoked, an
org deleted, a reader too slow) is closed the same way, and an event stream ends with
`{"type": "closed", "reason": <message>}`. A refused socket command is answered
`{"type": "error", "code", "message"}` and the socket stays open.

Close codes are 4000 + the HTTP status (4400, 4401, 4429...), except that every "your
rights here ended" (403, 404, 410) closes with 4403; an outage (503) closes with 1013 (try
again later) and any other server fault with 1011.
"""

_SQLSTATES = """\
## SQLSTATEs (the data API)

A statement of the data API (`/v1/db`, `/rest/v1`) that PostgreSQL refuses answers with
its SQLSTATE as the `code` and PostgreSQL's message, detail and hint, as PostgREST does.
The status is the SQLSTATE's own when listed, else its class's, else 400. A statement
stopped by the statement timeout (57014) is a 504; classes 08, 53 and 57 (the database is
unreachable, out of resources or shutting down) are 503 and close sockets with 1013.
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _close(entry: Code) -> int:
    return entry.close if entry.close is not None else close_for_status(entry.status)


def _section(title: str, table: dict[str, Code]) -> list[str]:
    lines = [f"## {title}", "", "| code | HTTP | close | meaning |", "|---|---|---|---|"]
    for code, entry in table.items():
        lines.append(f"| `{code}` | {entry.status} | {_close(entry)} | {_cell(entry.meaning)} |")
    return [*lines, ""]


def _sqlstates() -> list[str]:
    lines = [_SQLSTATES, "| SQLSTATE | HTTP |", "|---|---|"]
    lines += [f"| `{state}` | {status} |" for state, status in STATUS_BY_SQLSTATE.items()]
    lines += [f"| `{klass}*` | {status} |" for klass, status in STATUS_BY_SQLSTATE_CLASS.items()]
    return [*lines, "| any other | 400 |", ""]


def markdown() -> str:
    lines = [_HEADER]
    for title, table in SECTIONS:
        lines += _section(title, table)
    lines += _sqlstates()
    return "\n".join(lines)


def main() -> None:
    sys.stdout.write(markdown())


if __name__ == "__main__":
    main()
