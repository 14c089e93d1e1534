"""The API keeps its contract: /api/v1/openapi.json describes every operation honestly, the
reference page at /api/v1/docs is drawn from it, and schemathesis, driving the live app on
both backends with an admin's token, finds no operation that answers a 5xx, an undocumented
status or content type, or a body its schema does not describe."""
from __future__ import annotations

import contextvars
import re
from collections import Counter
from collections.abc import Callable, Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from portal.api.auth import PUBLIC_PATHS
from portal.extensions import db
from portal.models import DeliverableState, Role

# The 49 operations of issue 16 when this was written: fewer means some went missing.
MIN_OPERATIONS = 49
METHODS = ("get", "post", "put", "patch", "delete")
WRITES = ("post", "put", "patch", "delete")
PROBLEM = "application/problem+json"
EXAMPLES = 12  # per operation and mode: the whole file in a few minutes on two cores
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@pytest.fixture(autouse=True)
def _settings(app_config: dict[str, Any], sealed: tuple[Path, Path]) -> None:
    """Hundreds of calls from one token in a minute are the point of this file; an
    approved request gets its sealed certificate, so the certificate operations find one."""
    app_config.update(API_RATE_LIMIT="100000 per minute", SIGNING_TSA_URL="")


@pytest.fixture
def spec(app: Flask) -> dict[str, Any]:
    return app.extensions["signoff_api"].spec.to_dict()


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, item[method]) for path, item in spec["paths"].items()
            for method in METHODS if method in item]


def resolve(spec: dict[str, Any], ref: str) -> Any:
    node: Any = spec
    for part in ref.removeprefix("#/").split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"{ref} does not resolve"
        node = node[part]
    return node


def refs_in(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from refs_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs_in(value)


# --- the document ------------------------------------------------------------------------

def test_the_contract_is_openapi_3_1_and_covers_the_api(spec: dict[str, Any]) -> None:
    assert spec["openapi"] == "3.1.0"
    bearer = spec["components"]["securitySchemes"]["bearerAuth"]
    assert (bearer["type"], bearer["scheme"]) == ("http", "bearer")
    found = operations(spec)
    assert len(found) >= MIN_OPERATIONS, [f"{m.upper()} {p}" for m, p, _ in found]
    tagged = {op["tags"][0] for _m, _p, op in found}
    assert tagged == {t["name"] for t in spec["tags"]}, "an area without operations"


def test_every_operation_has_a_summary_and_a_unique_id(spec: dict[str, Any]) -> None:
    found = operations(spec)
    assert [f"{m} {p}" for m, p, op in found if not op.get("summary", "").strip()] == []
    ids = [op.get("operationId") or f"{m} {p}" for m, p, op in found]
    assert len(ids) == len(set(ids))


def test_every_operation_but_the_public_ones_asks_for_a_bearer_token(
        spec: dict[str, Any]) -> None:
    for method, path, op in operations(spec):
        security = op.get("security", spec.get("security"))
        if path in PUBLIC_PATHS:
            assert security == [], f"{method.upper()} {path} is public"
        else:
            assert security == [{"bearerAuth": []}], f"{method.upper()} {path}"


def test_every_operation_declares_its_error_answers_as_problems(spec: dict[str, Any]) -> None:
    """401 without a usable token, 403 for a read-only token's write, 404 for an id that is
    not there, 422 for input that is wrong, a change the domain may refuse (409 or 422);
    each one problem+json described by a schema."""
    missing = []
    for method, path, op in operations(spec):
        responses = op["responses"]
        expected = set()
        if path not in PUBLIC_PATHS:
            expected.add("401")
        if method in WRITES:
            expected.add("403")
        if "{" in path:
            expected.add("404")
        if op.get("parameters") or op.get("requestBody"):
            expected.add("422")
        missing += [f"{method.upper()} {path}: {status}" for status in
                    sorted(expected - set(responses))]
        if method in WRITES and not {"409", "422"} & set(responses):
            missing.append(f"{method.upper()} {path}: 409 or 422 (the domain's refusal)")
        for status, response in responses.items():
            if status.startswith(("4", "5")) or status == "default":
                response = resolve(spec, response["$ref"]) if "$ref" in response else response
                content = response.get("content", {})
                assert list(content) == [PROBLEM], f"{method.upper()} {path} {status}: {content}"
                schema = content[PROBLEM]["schema"]
                body = resolve(spec, schema["$ref"]) if "$ref" in schema else schema
                assert {"type", "title", "status"} <= set(body["required"])
    assert missing == []


def test_every_schema_reference_resolves(spec: dict[str, Any]) -> None:
    refs = set(refs_in(spec))
    assert refs, "no $ref at all: the schemas are not shared through components"
    for ref in refs:
        assert ref.startswith("#/"), ref
        resolve(spec, ref)


# --- the reference page --------------------------------------------------------------------

def test_the_reference_page_is_public_and_drawn_from_the_contract(
        app: Flask, spec: dict[str, Any]) -> None:
    db.session.commit()
    response = contextvars.Context().run(app.test_client().get, "/api/v1/docs")
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    page = response.get_data(as_text=True).replace("<wbr>", "")  # where a path may break
    assert "<style" not in page and " style=" not in page
    assert re.findall(r"<script(?![^>]*\bsrc=)", page) == []  # no inline script
    for _method, path, op in operations(spec):
        assert f'<code class="api-path">{path}</code>' in page, path
        assert op["summary"].replace("'", "&#39;") in page
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids)), "anchors must be unique"
    for anchor in re.findall(r'href="#([^"]+)"', page):
        assert anchor in ids, f"#{anchor} leads nowhere"
    levels = [int(n) for n in re.findall(r"<h([1-6])[ >]", page)]
    assert levels[0] == 1 and all(b - a <= 1 for a, b in pairwise(levels))
    assert "curl " in page and "Bearer $SIGNOFF_TOKEN" in page


# --- schemathesis against the live app -----------------------------------------------------

@pytest.fixture
def seeded(make_deliverable: Callable[..., Any]) -> dict[str, int]:
    """Real rows with small ids, so generated ids 1 and 2 find something: a client with
    contacts, a project, deliverables in several states with versions, a request."""
    states = [DeliverableState.DRAFT, DeliverableState.IN_REVIEW, DeliverableState.READY,
              DeliverableState.DELIVERED, DeliverableState.APPROVED]
    made = [make_deliverable(state, approvers=2) for state in states]
    return {state.value: d.id for state, d in zip(states, made, strict=True)}


def contract_of(app: Flask) -> Any:
    schema = contextvars.Context().run(schemathesis.openapi.from_wsgi,
                                       "/api/v1/openapi.json", app)

    @schema.hook("flatmap_path_parameters")
    def real_ids_too(_context: Any, path_parameters: dict[str, Any] | None) -> Any:
        """A generated integer id, or one of the seeded rows' (ids start at 1)."""
        if not path_parameters:
            return st.just(path_parameters)
        return st.fixed_dictionaries({
            name: st.sampled_from([value, 1, 2]) if type(value) is int else st.just(value)
            for name, value in path_parameters.items()})
    return schema


def test_every_operation_keeps_its_contract(app: Flask, seeded: dict[str, int],
                                            make_api: Callable[..., Any],
                                            make_user: Callable[..., Any]) -> None:
    """Valid and invalid input, as an admin: never a 5xx, and every answer documented.
    Every operation runs, and every one's failures are listed, not just the first."""
    admin = make_api(make_user(Role.ADMIN, email="ada@agency.example", name="Ada Admin"))
    headers = {"Authorization": f"Bearer {admin.secret}"}
    schema = contract_of(app)
    spec = app.extensions["signoff_api"].spec.to_dict()
    calls: Counter[str] = Counter()
    failures: list[str] = []

    def exercise(operation: Any, mode: GenerationMode) -> None:
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck), phases=[Phase.generate])
        @given(case=operation.as_strategy(generation_mode=mode, hooks=schema.hooks))
        def call(case: Any) -> None:
            db.session.commit()
            response = contextvars.Context().run(case.call, headers=headers)
            db.session.expire_all()
            calls[operation.label] += 1
            case.validate_response(response, checks=CHECKS, headers=headers)
            # `default` would let any status through: each must be declared by its number.
            declared = spec["paths"][operation.path][operation.method.lower()]["responses"]
            if str(response.status_code) not in declared:
                raise AssertionError(f"undeclared {response.status_code}: {response.text[:300]}"
                                     f"\n{case.as_curl_command(headers=headers)}")
        try:
            call()
        except (Exception, FailureGroup) as exc:  # every operation's, then one verdict
            failures.append(f"{operation.label} ({mode.value}): {type(exc).__name__}\n{exc}")

    loaded = list(schema.get_all_operations())
    broken = [str(result.err()) for result in loaded if not isinstance(result, Ok)]
    assert broken == [], broken
    for result in loaded:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            exercise(result.ok(), mode)
    every = {f"{m.upper()} {p}" for m, p, _op in operations(spec)}
    assert len(every) >= MIN_OPERATIONS
    never = sorted(every - set(calls))
    assert failures == [] and never == [], "\n\n".join(
        failures + [f"schemathesis never called: {never}"] * bool(never))
