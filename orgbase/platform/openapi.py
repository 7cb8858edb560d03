"""The OpenAPI document at /schema, finished so that it says what the gateway really answers
(the API fuzz tests check every answer against it).

Litestar builds the document from the handlers; this adds what it cannot know:

- errors: every 4xx/5xx and the ``default`` response are the one ``Error`` shape of
  docs/api/index.md (Litestar would describe its own ``{status_code, detail, extra}``, which the
  error handler never sends);
- credentials: operations whose handler needs a principal (directly or through the
  dependencies it asks for), or says so with ``opt={"credentials": True}``, require the
  ``bearer`` or the ``apikey`` scheme and document their 401;
- request bodies of handlers that read the raw body (PostgREST rows, Extended JSON):
  a JSON Schema in the handler's ``opt["request_body"]`` (``opt["request_body_optional"]``
  when no body at all is fine);
- request models that refuse unknown fields (msgspec ``forbid_unknown_fields``) say
  ``additionalProperties: false``;
- the data API table by table and function by function (from the schema cache, rebuilt
  when it reloads), and the media types the handlers answer with that Litestar cannot see
  (PostgREST's singular object, CSV, the event stream; no body for HEAD).
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Iterator, Mapping
from typing import Any

import msgspec
from litestar import Litestar, Request
from litestar.di import Provide
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.routes import HTTPRoute

from orgbase.platform.dependencies import PRINCIPAL
from orgbase.services.postgres.openapi_tables import CSV, REPRESENTATION, SINGULAR, data_paths
from orgbase.services.postgres.service import DATA_SERVICE

ERROR_REF = {"$ref": "#/components/schemas/Error"}
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Every error: a stable machine-readable code and a readable message",
    "properties": {
        "code": {"type": "string", "description": "stable, machine-readable"},
        "message": {"type": "string"},
        "details": {"description": "more about the error, when there is more"},
        "hint": {"type": ["string", "null"]},
        "request_id": {"type": ["string", "null"]},
    },
    "required": ["code", "message", "details", "hint", "request_id"],
}
SECURITY_SCHEMES: dict[str, Any] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT access token, or an API key (obk_...)",
    },
    "apikey": {"type": "apiKey", "in": "header", "name": "apikey"},
}
CREDENTIALS: list[dict[str, list[str]]] = [{"bearer": []}, {"apikey": []}]


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ERROR_REF}}}


def needs_credentials(handler: HTTPRouteHandler, dependencies: Mapping[str, Provide]) -> bool:
    """Does the handler, or a dependency it asks for (at any depth), need the principal?"""
    if handler.opt.get("credentials"):
        return True
    wanted = list(handler.parsed_fn_signature.parameters)
    seen: set[str] = set()
    while wanted:
        name = wanted.pop()
        if name == PRINCIPAL:
            return True
        if name in seen or name not in dependencies:
            continue
        seen.add(name)
        wanted.extend(inspect.signature(dependencies[name].dependency).parameters)
    return False


def _operations(app: Litestar) -> Iterator[tuple[str, str, HTTPRouteHandler]]:
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if not handler.resolve_include_in_schema():
                continue
            for method in handler.http_methods:
                yield route.path_format or "/", method.lower(), handler


def _closed_models(app: Litestar) -> set[str]:
    """Names of the request body models (and the models inside them) that refuse unknown
    fields: msgspec knows, Litestar's schemas do not say."""
    found: set[str] = set()
    seen: set[type] = set()

    def walk(info: msgspec.inspect.Type) -> None:
        if isinstance(info, msgspec.inspect.StructType):
            if info.cls in seen:  # a model may contain itself
                return
            seen.add(info.cls)
            if info.forbid_unknown_fields:
                found.add(info.cls.__name__)
            for struct_field in info.fields:
                walk(struct_field.type)
            return
        for attribute in ("item_type", "key_type", "value_type"):
            if isinstance(inner := getattr(info, attribute, None), msgspec.inspect.Type):
                walk(inner)
        for inner in getattr(info, "types", ()) or getattr(info, "item_types", ()):
            walk(inner)

    for _, _, handler in _operations(app):
        body = handler.parsed_fn_signature.parameters.get("data")
        if body is not None:
            walk(msgspec.inspect.type_info(body.annotation))
    return found


def finish_document(document: dict[str, Any], app: Litestar) -> dict[str, Any]:
    """A finished copy of Litestar's document (see the module's docstring)."""
    finished = copy.deepcopy(document)
    components = finished.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    for name in _closed_models(app):
        if name in schemas:
            schemas[name]["additionalProperties"] = False
    components["securitySchemes"] = SECURITY_SCHEMES
    for path, method, handler in _operations(app):
        operation = finished.get("paths", {}).get(path, {}).get(method)
        if operation is None:
            continue
        responses: dict[str, Any] = operation.setdefault("responses", {})
        for status, response in responses.items():
            if status[0] in "45":
                response["content"] = {"application/json": {"schema": ERROR_REF}}
        if needs_credentials(handler, handler.resolve_dependencies()):
            operation["security"] = CREDENTIALS
            responses.setdefault("401", _error_response("No valid credentials"))
        responses["default"] = _error_response("Any other error, in the same shape")
        if body := handler.opt.get("request_body"):
            operation["requestBody"] = {
                "required": not handler.opt.get("request_body_optional", False),
                "content": {"application/json": {"schema": body}},
            }
    return finished


def _media_types(document: dict[str, Any]) -> None:
    """What the data API and the event stream answer with, beyond Litestar's view."""
    paths = document.get("paths", {})
    rows = {"type": "array", "items": {"type": "object"}}
    table = paths.get("/v1/db/{table}", {})
    for method in ("get", "patch", "delete"):
        for status, response in table.get(method, {}).get("responses", {}).items():
            if status in ("200", "206"):
                response["content"] = {
                    "application/json": {"schema": rows},
                    SINGULAR: {"schema": {"type": "object"}},
                    **({CSV: {"schema": {"type": "string"}}} if method == "get" else {}),
                }
    created = table.get("post", {}).get("responses", {}).get("201")
    if created is not None:
        # As the per-table operations: no content by default (return=minimal), the rows
        # of return=representation named beside it.
        created.pop("content", None)
        created[REPRESENTATION] = {
            "application/json": {"schema": rows},
            SINGULAR: {"schema": {"type": "object"}},
        }
    for response in table.get("head", {}).get("responses", {}).values():
        if response is not None and "content" in response and response is not None:
            response.pop("content", None)
    head = table.get("head", {}).get("responses", {})
    for status in list(head):
        if status[0] == "2":
            head[status] = {"description": "No body (the headers of the GET)"}
    stream = paths.get("/v1/realtime/sse", {}).get("get", {}).get("responses", {}).get("200")
    if stream is not None:
        stream["content"] = {"text/event-stream": {"schema": {"type": "string"}}}


class FinishedJsonDocument(JsonRenderPlugin):
    """Serves the finished document as JSON: the routes' part built once, the data API's
    tables and functions again whenever the schema cache has reloaded."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._base: dict[str, Any] | None = None
        self._rendered: tuple[int, bytes] | None = None

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        schema = DATA_SERVICE.of(request).schema
        if self._rendered is not None and self._rendered[0] == schema.version:
            return self._rendered[1]
        if self._base is None:
            self._base = finish_document(openapi_schema, request.app)
            _media_types(self._base)
        document = copy.deepcopy(self._base)
        paths, components = data_paths(schema)
        document.setdefault("paths", {}).update(paths)
        document.setdefault("components", {}).setdefault("schemas", {}).update(components)
        rendered = super().render(request, document)
        self._rendered = (schema.version, rendered)
        return rendered
