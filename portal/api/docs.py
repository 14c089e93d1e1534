"""/api/v1/docs: the API's human reference, drawn by the portal from its own contract.

Drawn on the server from the live OpenAPI document, so it can never disagree with what
the API does: no script, no CDN, the page's strict CSP as everywhere else.
"""
from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, current_app, render_template
from flask_babel import get_locale
from markupsafe import Markup, escape

bp = Blueprint("api_docs", __name__)

METHODS = ("get", "post", "put", "patch", "delete")
MAX_DEPTH = 4  # nested fields shown inline; deeper ones are named by their schema
SAMPLE_STRINGS = {"date": "2026-12-31", "date-time": "2026-12-31T12:00:00Z",
                  "email": "jane@client.example", "uri": "https://tools.example/hook"}


@dataclass
class FieldDoc:
    name: str
    type: str
    required: bool
    description: str = ""
    location: str = ""  # a parameter's "in": path, query, header


@dataclass
class BodyDoc:
    content_type: str
    fields: list[FieldDoc]
    schema_name: str = ""


@dataclass
class ResponseDoc:
    status: str
    description: str
    bodies: list[BodyDoc]
    headers: list[FieldDoc] = field(default_factory=list)


@dataclass
class OperationDoc:
    anchor: str
    method: str
    path: str
    summary: str
    description: str
    public: bool
    parameters: list[FieldDoc]
    request: list[BodyDoc]
    responses: list[ResponseDoc]
    curl: str


@dataclass
class SectionDoc:
    anchor: str
    name: str
    description: str
    operations: list[OperationDoc] = field(default_factory=list)


class Reference:
    """The OpenAPI document read for people: $refs resolved, fields flattened."""

    def __init__(self, spec: dict[str, Any], base_url: str) -> None:
        self.spec, self.base_url = spec, base_url.rstrip("/")
        self.secured_by_default = bool(spec.get("security"))

    def resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        seen: set[str] = set()
        while "$ref" in node and node["$ref"] not in seen:
            seen.add(node["$ref"])
            target: Any = self.spec
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target.get(part, {}) if isinstance(target, dict) else {}
            node = target
        return node

    def type_of(self, schema: dict[str, Any]) -> str:
        name = ref_name(schema)
        schema = self.resolve(schema)
        choices = schema.get("anyOf") or schema.get("oneOf")
        if choices:
            return " or ".join(self.type_of(choice) for choice in choices)
        kinds = schema.get("type", "object" if "properties" in schema else "any")
        kinds = kinds if isinstance(kinds, list) else [kinds]
        words = []
        for kind in kinds:
            if kind == "array":
                words.append(f"array of {self.type_of(schema.get('items', {}))}")
            elif kind == "object" and name:
                words.append(name)
            else:
                words.append(kind)
        text = " or ".join(words)
        if "format" in schema:
            text += f" ({schema['format']})"
        if "enum" in schema:
            text += ": " + ", ".join(str(v) for v in schema["enum"] if v is not None)
        return text

    def object_in(self, schema: dict[str, Any]) -> dict[str, Any] | None:
        """The object schema a property holds, directly, as `X or null`, or as array items."""
        resolved = self.resolve(schema)
        for choice in resolved.get("anyOf") or resolved.get("oneOf") or []:
            if "properties" in self.resolve(choice) or "items" in self.resolve(choice):
                return self.object_in(choice)
        if "array" in str(resolved.get("type")):
            return self.object_in(resolved.get("items", {}))
        return schema if "properties" in resolved else None

    def fields(self, schema: dict[str, Any], hidden: str, prefix: str = "", depth: int = 0,
               trail: frozenset[str] = frozenset()) -> list[FieldDoc]:
        """Each property, a nested object's as `outer.inner`, an array's as `list[].inner`;
        `hidden` is "readOnly" for what is sent, "writeOnly" for what comes back."""
        name = ref_name(schema)
        if name in trail or depth > MAX_DEPTH:
            return []
        trail = trail | {name} if name else trail
        schema = self.resolve(schema)
        required = set(schema.get("required", []))
        found: list[FieldDoc] = []
        for key, prop in schema.get("properties", {}).items():
            resolved = self.resolve(prop)
            if resolved.get(hidden) or prop.get(hidden):
                continue
            found.append(FieldDoc(prefix + key, self.type_of(prop), key in required,
                                  prop.get("description") or resolved.get("description", "")))
            inner = self.object_in(prop)
            if inner is not None:
                many = "array" in str(resolved.get("type"))
                found += self.fields(inner, hidden, f"{prefix}{key}{'[]' if many else ''}.",
                                     depth + 1, trail)
        return found

    def bodies(self, content: dict[str, Any], hidden: str) -> list[BodyDoc]:
        return [BodyDoc(kind, self.fields(media.get("schema", {}), hidden),
                        ref_name(media.get("schema", {})))
                for kind, media in content.items()]

    def sections(self) -> list[SectionDoc]:
        tags = {t["name"]: SectionDoc(anchor_of(t["name"]), label_of(t["name"]),
                                      t.get("description", ""))
                for t in self.spec.get("tags", [])}
        for path, item in self.spec.get("paths", {}).items():
            for method in METHODS:
                if method in item:
                    operation = self.operation(path, method, item)
                    tag = (item[method].get("tags") or ["other"])[0]
                    tags.setdefault(tag, SectionDoc(anchor_of(tag), label_of(tag), ""))
                    tags[tag].operations.append(operation)
        return [section for section in tags.values() if section.operations]

    def operation(self, path: str, method: str, item: dict[str, Any]) -> OperationDoc:
        op = item[method]
        security = op.get("security", self.spec.get("security", []))
        parameters = [self.resolve(p) for p in item.get("parameters", []) + op.get(
            "parameters", [])]
        params = [FieldDoc(p["name"], self.type_of(p.get("schema", {})),
                           bool(p.get("required")), p.get("description", ""), p["in"])
                  for p in parameters]
        body = self.resolve(op.get("requestBody", {}))
        request_bodies = self.bodies(body.get("content", {}), "readOnly")
        responses = []
        for status, response in sorted(op.get("responses", {}).items()):
            response = self.resolve(response)
            headers = [FieldDoc(name, self.type_of(h.get("schema", {})), bool(h.get("required")),
                                h.get("description", ""), "header")
                       for name, h in response.get("headers", {}).items()]
            responses.append(ResponseDoc(status, response.get("description", ""),
                                         self.bodies(response.get("content", {}), "writeOnly"),
                                         headers))
        return OperationDoc(
            anchor=anchor_of(op.get("operationId") or f"{method}-{path}"),
            method=method.upper(), path=path, summary=op.get("summary", ""),
            description=op.get("description", ""), public=not security,
            parameters=params, request=request_bodies, responses=responses,
            curl=self.curl(method, path, params, body, bool(security), op))

    def sample(self, schema: dict[str, Any], depth: int = 0) -> Any:
        schema = self.resolve(schema)
        if "example" in schema:
            return schema["example"]
        if schema.get("enum"):
            return next(v for v in schema["enum"] if v is not None)
        choices = schema.get("anyOf") or schema.get("oneOf")
        if choices:
            return self.sample(next((c for c in choices if c.get("type") != "null"),
                                    choices[0]), depth)
        kinds = schema.get("type", "object")
        kind = next((k for k in (kinds if isinstance(kinds, list) else [kinds])
                     if k != "null"), "string")
        if kind == "object" and depth < MAX_DEPTH:
            props, required = schema.get("properties", {}), set(schema.get("required", []))
            wanted = [k for k in props if k in required] or list(props)[:2]
            return {k: self.sample(props[k], depth + 1) for k in wanted
                    if not self.resolve(props[k]).get("readOnly")}
        if kind == "array":
            return [self.sample(schema.get("items", {}), depth + 1)]
        return {"integer": 1, "number": 1.0, "boolean": True, "object": {}}.get(
            kind, SAMPLE_STRINGS.get(schema.get("format", ""), "…"))

    def curl(self, method: str, path: str, params: list[FieldDoc], body: dict[str, Any],
             secured: bool, op: dict[str, Any]) -> str:
        url = self.base_url + re.sub(r"\{[^}]+\}", "1", path)
        lines = [f"curl -X {method.upper()} {shlex.quote(url)}" if method != "get"
                 else f"curl {shlex.quote(url)}"]
        if secured:
            lines.append('-H "Authorization: Bearer $SIGNOFF_TOKEN"')
        if any(p.location == "header" and p.name == "Idempotency-Key" for p in params):
            lines.append('-H "Idempotency-Key: $(uuidgen)"')
        content = body.get("content", {})
        if "application/json" in content:
            sample = json.dumps(self.sample(content["application/json"].get("schema", {})),
                                ensure_ascii=False)
            lines += ['-H "Content-Type: application/json"', f"-d {shlex.quote(sample)}"]
        elif "multipart/form-data" in content:
            schema = self.resolve(content["multipart/form-data"].get("schema", {}))
            for key, prop in schema.get("properties", {}).items():
                value = ("@file.pdf" if self.resolve(prop).get("format") == "binary"
                         else str(self.sample(prop)))
                lines.append(f"-F {shlex.quote(f'{key}={value}')}")
        answers = {kind for r in op.get("responses", {}).values()
                   for kind in self.resolve(r).get("content", {})}
        if "application/pdf" in answers:
            lines.append("-o download.pdf")
        elif answers - {"application/json", "application/problem+json"}:
            lines.append("-o download")
        return " \\\n  ".join(lines)


def breakable(path: str) -> Markup:
    """A path a narrow screen may break after each slash, never inside a word."""
    return Markup("/<wbr>").join(escape(part) for part in path.split("/"))


def ref_name(schema: dict[str, Any]) -> str:
    return schema.get("$ref", "").rsplit("/", 1)[-1]


def anchor_of(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def label_of(tag: str) -> str:
    """`api_clients` reads as "Clients"."""
    return tag.removeprefix("api_").replace("_", " ").capitalize()


INLINE = re.compile(r"\*\*(.+?)\*\*|`([^`]+)`")


def prose(text: str) -> Markup:
    """The spec's Markdown-ish prose: paragraphs, **bold** and `code`, everything escaped."""
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    html = []
    for paragraph in paragraphs:
        parts, last = [], 0
        for match in INLINE.finditer(paragraph):
            parts.append(escape(paragraph[last:match.start()]))
            bold, code = match.groups()
            parts.append(Markup("<strong>%s</strong>") % bold if bold
                         else Markup("<code>%s</code>") % code)
            last = match.end()
        parts.append(escape(paragraph[last:]))
        html.append(Markup("<p>%s</p>") % Markup("").join(parts))
    return Markup("\n").join(html)


@bp.get("/docs")
def reference() -> str:
    """The API reference page: public, like the contract it is drawn from. Its body (the
    costly part, 600 kB) is drawn once per address and language; the page around it carries
    the visitor's own bits (the form token). Addresses are the portal's public one, never
    the request's Host header (which would also let anyone grow the cache)."""
    drawn: dict[tuple[str, str], Markup] = current_app.extensions.setdefault(
        "signoff_api_reference", {})
    root = current_app.config["PUBLIC_BASE_URL"].rstrip("/") + "/"
    key = (root, str(get_locale()))
    if key not in drawn:
        spec = current_app.extensions["signoff_api"].spec.to_dict()
        drawn[key] = Markup(render_template(
            "api/_reference_body.html", info=spec.get("info", {}),
            sections=Reference(spec, root).sections(), prose=prose, breakable=breakable,
            spec_url=root + "api/v1/openapi.json"))
    return render_template("api/reference.html", body=drawn[key])
