"""The API reference page, generated from the OpenAPI document (``/schema``).

The document comes from a running gateway (``ORGBASE_DOCS_SCHEMA_URL``, e.g.
``http://127.0.0.1:8000/schema``) or, by default, from ``create_app(settings)`` run in
process on the local stack's settings (``.orgbase/services.env``): the per-table
operations are those of the checkout's app migrations (the demo's ``api.items``).

    .venv/bin/python -m scripts.docs.api_reference > reference.md
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import httpx
import msgspec

from scripts.docs.markdown import cell

METHODS = ("get", "head", "post", "put", "patch", "delete")
TABLE_MARK = "x-orgbase-table"


async def _in_process() -> dict[str, Any]:
    from litestar.testing import AsyncTestClient

    from orgbase.core.settings import LogSettings
    from orgbase.platform.app import create_app
    from orgbase.platform.config import LOCAL_ENV_FILE, load_settings

    if not LOCAL_ENV_FILE.is_file():
        raise SystemExit(
            f"the API reference needs the local stack's settings ({LOCAL_ENV_FILE}): run"
            " `make services` and `orgbase migrate`, or set ORGBASE_DOCS_SCHEMA_URL"
        )
    # Quiet: the build's output is the site, not the gateway's request log.
    settings = msgspec.structs.replace(
        load_settings(LOCAL_ENV_FILE), log=LogSettings(level="error")
    )
    async with AsyncTestClient(create_app(settings)) as client:
        answer = await client.get("/schema")
    answer.raise_for_status()
    document: dict[str, Any] = answer.json()
    return document


def document() -> dict[str, Any]:
    url = os.environ.get("ORGBASE_DOCS_SCHEMA_URL")
    if url:
        answer = httpx.get(url, timeout=30)
        answer.raise_for_status()
        fetched: dict[str, Any] = answer.json()
        return fetched
    return asyncio.run(_in_process())


def _schema_text(schema: dict[str, Any] | None) -> str:
    if not schema:
        return ""
    if "$ref" in schema:
        return f"`{schema['$ref'].rsplit('/', 1)[-1]}`"
    if "oneOf" in schema or "anyOf" in schema:
        options = schema.get("oneOf") or schema.get("anyOf") or []
        return " or ".join(_schema_text(option) or "any" for option in options)
    kind = schema.get("type", "")
    if isinstance(kind, list):
        kind = " or ".join(kind)
    if kind == "array":
        return f"array of {_schema_text(schema.get('items')) or 'any'}"
    return f"`{kind}`" if kind else "any"


def _parameters(operation: dict[str, Any]) -> list[str]:
    params = operation.get("parameters", [])
    if not params:
        return []
    lines = ["| parameter | in | required | schema | description |", "|---|---|---|---|---|"]
    for p in params:
        required = "yes" if p.get("required") else ""
        lines.append(
            f"| `{p['name']}` | {p['in']} | {required} | {_schema_text(p.get('schema'))}"
            f" | {cell(p.get('description'))} |"
        )
    return [*lines, ""]


def _body(operation: dict[str, Any]) -> list[str]:
    body = operation.get("requestBody")
    if not body:
        return []
    parts = [
        f"`{media}`: {_schema_text(content.get('schema'))}"
        for media, content in body.get("content", {}).items()
    ]
    required = " (required)" if body.get("required") else ""
    return [f"Body{required}: {'; '.join(parts)}", ""]


def _responses(operation: dict[str, Any]) -> list[str]:
    lines = ["| status | answer | media types |", "|---|---|---|"]
    for status, response in operation.get("responses", {}).items():
        media = ", ".join(
            f"`{m}` {_schema_text(c.get('schema'))}" for m, c in response.get("content", {}).items()
        )
        lines.append(f"| {status} | {cell(response.get('description'))} | {cell(media)} |")
    return [*lines, ""]


def _operations(doc: dict[str, Any]) -> dict[str, list[tuple[str, str, dict[str, Any]]]]:
    """Operations by their first tag, in the document's order."""
    grouped: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, item in doc.get("paths", {}).items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            tag = (operation.get("tags") or ["other"])[0]
            if operation.get(TABLE_MARK):
                tag = "data: tables and functions of the demo schema"
            grouped.setdefault(tag, []).append((method.upper(), path, operation))
    return grouped


def render(doc: dict[str, Any]) -> str:
    info = doc.get("info", {})
    count = sum(len(ops) for ops in _operations(doc).values())
    lines = [
        "# API reference",
        "",
        f"Generated from the OpenAPI {doc.get('openapi', '')} document of orgbase"
        f" {info.get('version', '')} (`GET /schema` of a gateway) by",
        "`scripts/docs/api_reference.py` when the site is built: "
        f"{count} operations. The whole document is [openapi.json](openapi.json); a running",
        "gateway serves its own at `/schema`, with an operation per table and function of",
        "its schema (here those of the demo's app migrations).",
        "",
        "Errors of every operation are the `Error` shape (see [error codes](../errors.md));",
        "operations that need credentials take `Authorization: Bearer <access token or API",
        "key>` or an `apikey` header.",
        "",
    ]
    for tag, operations in _operations(doc).items():
        lines += [f"## {tag}", ""]
        for method, path, operation in operations:
            lines += [f"### `{method} {path}`", ""]
            if operation.get("summary"):
                lines += [cell(operation["summary"]), ""]
            if operation.get("description"):
                lines += [operation["description"].strip(), ""]
            lines += _parameters(operation) + _body(operation) + _responses(operation)
    return "\n".join(lines)


if __name__ == "__main__":
    loaded = document()
    out = os.environ.get("ORGBASE_DOCS_SCHEMA_OUT")
    if out:
        Path(out).write_text(json.dumps(loaded, indent=1))
    print(render(loaded))
