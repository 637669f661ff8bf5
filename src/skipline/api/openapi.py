"""The OpenAPI 3.1 document: schemas generated from the msgspec Structs, paths written by hand
(they are few), an example answer per operation (api/examples.py). `GET /docs` renders it as
plain server-side HTML: no CDN, no script. Mounted under a prefix (`add_subapp`), both name
the prefix: the document in `servers`, the page in its curl examples."""

from __future__ import annotations

import functools
import html
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
from aiohttp import web

import skipline
from skipline.api.examples import EXAMPLES, add_response_examples
from skipline.api.problems import PROBLEM_CONTENT_TYPE, PROBLEM_TYPES, TYPE_PREFIX, title_of
from skipline.api.query import CURSOR_PATTERN
from skipline.api.schemas import MAX_PAYLOAD_DEPTH, SCHEMA_TYPES
from skipline.domain.ids import CUSTOMER_PATTERN, MAX_ORDER_ID
from skipline.domain.models import KIND_PATTERN, Status, Tier

REF = "#/components/schemas/"
DOCS_PAGE_SECURITY = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"


def build_document(
    tiers: Mapping[str, Tier], kinds: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The OpenAPI document of a server with these tiers, serving these kinds (None: any
    valid kind, an API-only process)."""
    _, schemas = msgspec.json.schema_components(SCHEMA_TYPES, ref_template=REF + "{name}")
    _name_tiers(schemas["OrderRequest"]["properties"]["user_type"], sorted(tiers))
    if kinds is not None:
        schemas["OrderRequest"]["properties"]["kind"]["enum"] = list(kinds)
    _state_payload_rules(schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "skipline",
            "version": skipline.__version__,
            "description": "A durable priority order queue. Errors are RFC 9457 problems.",
        },
        "paths": _with_examples(_paths(sorted(tiers))),
        "components": {
            "schemas": schemas,
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
        },
    }


def _with_examples(paths: dict[str, Any]) -> dict[str, Any]:
    add_response_examples(paths)
    return paths


def with_servers(document: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The document as served under `prefix` ('' at the root): a `servers` entry names the
    prefix, so that clients generated from it call /prefix/orders rather than /orders."""
    if not prefix:
        return document
    return {**document, "servers": [{"url": prefix, "description": "where this API is mounted"}]}


def _name_tiers(property_schema: dict[str, Any], tiers: list[str]) -> None:
    """List the configured tiers as the allowed values of the string alternative."""
    for alternative in property_schema.get("anyOf", [property_schema]):
        if alternative.get("type") == "string":
            alternative["enum"] = tiers


NUL_FREE = {"type": "string", "pattern": "^[^\\u0000]*$"}
"""A string without NUL characters (PostgreSQL's JSON cannot hold them)."""


def _state_payload_rules(schemas: dict[str, Any]) -> None:
    """A payload is any JSON object without NUL characters in its strings and keys (and
    nested at most MAX_PAYLOAD_DEPTH deep, which JSON Schema cannot say): a recursive
    `JsonValue` schema says the first rule."""
    schemas["JsonValue"] = {
        "description": "Any JSON value whose strings and keys contain no NUL (\\u0000).",
        "anyOf": [
            NUL_FREE, {"type": ["number", "boolean", "null"]},
            {"type": "array", "items": {"$ref": REF + "JsonValue"}},
            {"type": "object", "propertyNames": NUL_FREE,
             "additionalProperties": {"$ref": REF + "JsonValue"}},
        ],
    }
    payload = schemas["OrderRequest"]["properties"]["payload"]
    for alternative in payload.get("anyOf", [payload]):
        if alternative.get("type") == "object":
            alternative["propertyNames"] = NUL_FREE
            alternative["additionalProperties"] = {"$ref": REF + "JsonValue"}
    payload["description"] = (
        f"Any JSON object, kept as given: no NUL (\\u0000) in its strings or keys, nested "
        f"at most {MAX_PAYLOAD_DEPTH} levels deep."
    )


def _body(schema: str, media: str = "application/json") -> dict[str, Any]:
    return {media: {"schema": {"$ref": REF + schema}}}


def _ok(description: str, schema: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": _body(schema)}
    if headers:
        response["headers"] = headers
    return response


def _problems(*statuses: int) -> dict[str, Any]:
    titles: dict[int, list[str]] = {}
    for error_class, kind in PROBLEM_TYPES.items():
        titles.setdefault(kind.status, []).append(title_of(error_class))
    return {
        str(status): {
            "description": " / ".join(titles.get(status, ["See the problem detail."])),
            "content": _body("Problem", PROBLEM_CONTENT_TYPE),
        }
        for status in statuses
    }


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema}


LOCATION = {"Location": {"description": "The order's URL.", "schema": {"type": "string"}}}
ID_PARAMETER = {
    "name": "id", "in": "path", "required": True,
    "description": "An order id: lowercase hex digits and dashes.",
    "schema": {"type": "string", "pattern": f"^[0-9a-f-]{{1,{MAX_ORDER_ID}}}$"},
}
IDEMPOTENCY_KEY_PARAMETER = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "description": "Retrying with the same key and the same body returns the first order "
                   "(200); the same key with another body is 422 (idempotency-key-reused). "
                   "Printable ASCII, no leading or trailing space.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255,
               "pattern": "^[!-~]([ -~]*[!-~])?$"},
}
SECURED: list[dict[str, list[str]]] = [{"apiKey": []}, {}]


def _paths(tiers: list[str]) -> dict[str, Any]:
    return {"/orders": _orders_path(tiers), "/orders/{id}": _order_path(),
            "/orders/{id}/retry": _retry_path(), **_service_paths()}


def _orders_path(tiers: list[str]) -> dict[str, Any]:
    return {
        "post": {
            "summary": "Accept an order (acknowledged once durably stored)",
            "description": "Inside its tier the order takes its turn in its fair-share group "
            "(the API key, or the key's `customer`): groups share the workers by the key's "
            "weight, FIFO inside a group. 429 also when the group has its tier's "
            "`max_queued_per_customer` orders queued. `kind` picks the handler (422 naming "
            "the known kinds when the server's registry has no such kind); `delay` or "
            "`not_before` (not both, at most 30 days ahead) schedule the order: it is not "
            "claimed before then, and its `max_wait` runs from then.",
            "security": SECURED,
            "parameters": [IDEMPOTENCY_KEY_PARAMETER],
            "requestBody": {"required": True, "content": _body("OrderRequest")},
            "responses": {
                "202": _ok("Accepted.", "OrderOut", LOCATION),
                "200": _ok("A retry with a known Idempotency-Key: the first order.", "OrderOut",
                           LOCATION),
                **_problems(400, 401, 403, 408, 413, 415, 422, 429, 503),
            },
        },
        "get": {
            "summary": "The caller's orders, newest first (an admin key sees all)",
            "security": [{"apiKey": []}],
            "parameters": [
                _query("status", "Only this status.",
                       {"type": "string", "enum": [s.value for s in Status]}),
                _query("tier", "Only this tier.", {"type": "string", "enum": tiers}),
                _query("limit", "Page size.", {"type": "integer", "minimum": 1, "maximum": 500,
                                               "default": 50}),
                _query("cursor", "`next_cursor` of the previous page.",
                       {"type": "string", "pattern": CURSOR_PATTERN}),
                _query("customer", "Only orders submitted for this customer.",
                       {"type": "string", "pattern": CUSTOMER_PATTERN}),
                _query("kind", "Only orders of this kind.",
                       {"type": "string", "pattern": KIND_PATTERN}),
            ],
            "responses": {"200": _ok("A page of orders.", "OrderPage"), **_problems(401, 422)},
        },
    }


def _order_path() -> dict[str, Any]:
    return {
        "parameters": [ID_PARAMETER],
        "get": {
            "summary": "One order", "security": SECURED,
            "parameters": [_query(
                "wait", "Hold the request until the order is final, at most this many seconds "
                "(then answer with its current state).",
                {"type": "number", "exclusiveMinimum": 0, "maximum": 60})],
            "responses": {"200": _ok("The order.", "OrderOut"), **_problems(401, 404, 422)},
        },
        "delete": {
            "summary": "Cancel a queued order", "security": SECURED,
            "responses": {"200": _ok("The cancelled order.", "OrderOut"),
                          **_problems(401, 404, 409)},
        },
    }


def _retry_path() -> dict[str, Any]:
    return {
        "parameters": [ID_PARAMETER],
        "post": {
            "summary": "Queue a failed or cancelled order again (a fresh attempts budget; the "
                       "previous outcome stays in its history)",
            "security": SECURED,
            "responses": {"202": _ok("The queued order.", "OrderOut", LOCATION),
                          **_problems(401, 404, 409)},
        },
    }


def _service_paths() -> dict[str, Any]:
    text = {"text/plain": {"schema": {"type": "string"}}}
    page = {"text/html": {"schema": {"type": "string"}}}
    return {
        "/stats": {"get": {"summary": "Per-tier counts, waits and throughput",
                           "responses": {"200": _ok("Statistics.", "StatsOut")}}},
        "/healthz": {"get": {"summary": "The process is alive",
                             "responses": {"200": _ok("Alive.", "Health")}}},
        "/readyz": {"get": {"summary": "The store answers and orders are accepted",
                            "responses": {"200": _ok("Ready.", "Health"), **_problems(503)}}},
        "/metrics": {"get": {"summary": "Prometheus metrics",
                             "responses": {"200": {"description": "Text format.",
                                                   "content": text}}}},
        "/openapi.json": {"get": {"summary": "This document",
                                  "responses": {"200": {"description": "OpenAPI 3.1."}}}},
        "/docs": {"get": {"summary": "This document as HTML",
                          "responses": {"200": {"description": "HTML.", "content": page}}}},
        "/": {"get": {"summary": "Live dashboard",
                      "responses": {"200": {"description": "HTML.", "content": page}}}},
    }


# --- rendering ------------------------------------------------------------------------------
def render_docs(document: dict[str, Any], base: str = "http://127.0.0.1:8080") -> str:
    """A readable page of the document: operations (each with a curl example and its answer),
    problem types, then schemas. `base` is the server's URL the examples use."""
    info = document["info"]
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>{_e(info['title'])} API</title><style>{DOCS_STYLE}</style></head><body>",
        f"<h1>{_e(info['title'])} {_e(info['version'])}</h1><p>{_e(info['description'])}</p>",
        "<p>Machine-readable: <a href=openapi.json>openapi.json</a>. Authenticate with "
        "<code>Authorization: Bearer KEY</code>.</p><h2>Operations</h2>",
    ]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method != "parameters":
                parts.append(_render_operation(method, path, operation, item, base))
    parts.append(_render_problem_types())
    parts.append("<h2>Schemas</h2>")
    for name, schema in document["components"]["schemas"].items():
        parts.append(f"<h3 id=schema-{_e(name)}>{_e(name)}</h3>")
        parts.append(f"<pre>{_e(json.dumps(schema, indent=2))}</pre>")
    parts.append("</body></html>")
    return "".join(parts)


def _render_operation(method: str, path: str, operation: dict[str, Any],
                      item: dict[str, Any], base: str) -> str:
    parameters = item.get("parameters", []) + operation.get("parameters", [])
    rows = "".join(
        f"<li><code>{_e(p['name'])}</code> ({_e(p['in'])}) {_text(p.get('description', ''))}"
        "</li>"
        for p in parameters
    )
    body = operation.get("requestBody", {}).get("content", {}).get("application/json")
    body_line = ""
    if body is not None:
        name = body["schema"]["$ref"].removeprefix(REF)
        body_line = f"<p>Body: <a href=#schema-{_e(name)}>{_e(name)}</a></p>"
    responses = "".join(
        f"<li><b>{_e(code)}</b> {_text(response['description'])}</li>"
        for code, response in operation["responses"].items()
    )
    return (
        f"<section><h3><span class=method>{_e(method.upper())}</span> <code>{_e(path)}</code>"
        f"</h3><p>{_text(operation['summary'])}</p>{body_line}"
        f"{'<ul>' + rows + '</ul>' if rows else ''}<ul>{responses}</ul>"
        f"{_render_example(method, path, base)}</section>"
    )


def _render_problem_types() -> str:
    rows = "".join(
        f"<tr><td>{kind.status}</td><td><code>{_e(TYPE_PREFIX + kind.slug)}</code></td>"
        f"<td>{_text(title_of(error_class))}</td></tr>"
        for error_class, kind in sorted(PROBLEM_TYPES.items(), key=lambda e: e[1].status)
    )
    return (
        "<h2>Problem types</h2><p>Every error is <code>application/problem+json</code> with "
        "<code>type</code>, <code>title</code>, <code>status</code> and <code>detail</code>; "
        "429 and 503 carry <code>Retry-After</code>.</p>"
        f"<table><tr><th>status</th><th>type</th><th>title</th></tr>{rows}</table>"
    )


def _render_example(method: str, path: str, base: str) -> str:
    example = EXAMPLES.get((method, path))
    if example is None:
        return ""
    answer = example.answer
    shown = answer if isinstance(answer, str) else json.dumps(answer, indent=2)
    return (
        f"<p class=example>Example</p><pre>{_e(example.curl(base))}</pre>"
        f"<p class=example>Answer ({example.status})</p><pre>{_e(shown)}</pre>"
    )


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


INLINE_CODE = re.compile(r"`([^`]+)`")


def _text(text: object) -> str:
    """Escaped prose, with `backticked` words shown as code (not as literal backticks)."""
    return INLINE_CODE.sub(r"<code>\1</code>", _e(text))


DOCS_STYLE = (
    "body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
    "pre{background:#f4f4f4;padding:.75rem;overflow:auto}section{border-top:1px solid #ddd}"
    ".method{font-family:monospace;background:#234;color:#fff;padding:0 .4rem;border-radius:3px}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2rem .5rem}"
    ".example{margin:.5rem 0 0;font-size:.85rem;color:#555}"
)


def add_docs_routes(
    app: web.Application, tiers: Mapping[str, Tier], kinds: Sequence[str] | None = None,
) -> None:
    """Build the document once, at app creation, and serve it and its HTML rendering. The
    mount prefix is read from each request's path (it is unknown until the app is mounted);
    the few variants are kept once made."""
    document = build_document(tiers, kinds)

    @functools.lru_cache(maxsize=4)
    def document_bytes(prefix: str) -> bytes:
        return json.dumps(with_servers(document, prefix), indent=2).encode()

    @functools.lru_cache(maxsize=16)
    def page(base: str) -> str:
        return render_docs(document, base)

    async def openapi_json(request: web.Request) -> web.Response:
        prefix = _mount_prefix(request, "/openapi.json")
        return web.Response(body=document_bytes(prefix), content_type="application/json")

    async def docs(request: web.Request) -> web.Response:
        try:
            origin = str(request.url.origin())
        except ValueError:  # a Host header yarl cannot make a URL of
            origin = ""
        base = origin + _mount_prefix(request, "/docs")
        return web.Response(text=page(base), content_type="text/html",
                            headers={"Content-Security-Policy": DOCS_PAGE_SECURITY})

    app.router.add_get("/openapi.json", openapi_json, name="openapi")
    app.router.add_get("/docs", docs, name="docs")


def _mount_prefix(request: web.Request, own_path: str) -> str:
    """'/queue' for /queue/docs when mounted with add_subapp('/queue/', …); '' at the root."""
    return request.path.removesuffix(own_path).rstrip("/")
