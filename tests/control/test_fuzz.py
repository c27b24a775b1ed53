"""The control API fuzzed from its own OpenAPI document (schemathesis, in-process over WSGI).

For every operation, a bounded number of requests: schema-valid ones with random and with the demo tenant's names
in the path, and schema-violating ones. No answer may be a 5xx, and every answer must be documented: its status
listed for the operation, its content type JSON, its body valid against the documented schema (error codes
included). The world is reset before each operation; the examples are derandomized, so a run is repeatable.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from m365_mock.app import create_app  # noqa: E402
from m365_mock.clock import Clock  # noqa: E402
from m365_mock.control.api import OPERATIONS  # noqa: E402
from m365_mock.control.routes import ADMIN_HEADER  # noqa: E402
from m365_mock.state.tenantfile import dump_world, load_demo_world, load_world  # noqa: E402
from tests.conftest import shared_signing_key  # noqa: E402
from tests.helpers import ADMIN_KEY, GROUP, SUPPORT, TENANT  # noqa: E402

pytestmark = pytest.mark.slow

# More examples, or fresh ones each run, when looking for trouble: M365_FUZZ_EXAMPLES=500 M365_FUZZ_RANDOM=1.
EXAMPLES = int(os.environ.get("M365_FUZZ_EXAMPLES", "20"))
DERANDOMIZE = not os.environ.get("M365_FUZZ_RANDOM")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
KEY = {ADMIN_HEADER: ADMIN_KEY}
# Generated mail is the one thing whose cost grows with what a request asks; the fuzzer asks for little.
MAX_GENERATED_HERE = 25


def fuzzed_world() -> dict[str, Any]:
    """The demo tenant plus one of every RBAC object, a certificate and a fault rule, so that every route has something
    to find."""
    data = dump_world(load_demo_world().directory, load_demo_world().settings)
    tenant = data["tenants"][0]
    tenant["service_principals"] = [{"app_id": "Contact Center Connector"}]
    tenant["management_scopes"] = [{"name": "EMEA mailboxes", "filter": "CustomAttribute1 -eq 'emea'"}]
    tenant["role_assignments"] = [
        {
            "name": "reader",
            "role": "Application Mail.Read",
            "app_id": "Contact Center Connector",
            "scope": "EMEA mailboxes",
        }
    ]
    data["faults"] = [{"id": "slow-nowhere", "path": "/nowhere", "latency": 0.01}]
    return data


@pytest.fixture(scope="module")
def fuzzed():
    """(the app, its schemathesis schema, the names that exist in its world, by path parameter)."""
    app = create_app(load_world(fuzzed_world()), signing_key=shared_signing_key(), clock=Clock(), admin_key=ADMIN_KEY)
    emulator = app.extensions["m365"]
    tenant = emulator.directory.tenants[0]
    demo_app = next(iter(tenant.applications.values()))
    names = {
        "tenant": TENANT,
        "app": demo_app.display_name,
        "secret": demo_app.secrets[0].key_id,
        "certificate": "0" * 40,
        "mailbox": SUPPORT,
        "address": SUPPORT,
        "group": GROUP,
        "member": SUPPORT,
        "policy": tenant.rules.policies[0].identity,
        "principal": demo_app.app_id,
        "scope": "EMEA mailboxes",
        "assignment": "reader",
        "fault": "slow-nowhere",
    }
    schema = schemathesis.openapi.from_wsgi("/_m365/openapi.json", app)
    schema.hook(map_body)
    return app, schema, names


def map_body(context: Any, body: Any) -> Any:
    """Generated mail stays small: a `count` of 200,000 is valid, and slow to make."""
    if isinstance(body, dict) and isinstance(body.get("count"), int) and not isinstance(body["count"], bool):
        body["count"] = min(body["count"], MAX_GENERATED_HERE)
    return body


@pytest.mark.parametrize("operation", [f"{o.method} {o.path}" for o in OPERATIONS])
def test_every_answer_is_documented_and_none_is_a_server_error(fuzzed, operation):
    app, schema, names = fuzzed
    method, path = operation.split(" ", 1)
    endpoint = schema[path][method]
    known = {p.name: names[p.name] for p in endpoint.path_parameters}
    strategy = st.one_of(
        endpoint.as_strategy(headers=KEY),
        endpoint.as_strategy(headers=KEY, path_parameters=known),
        endpoint.as_strategy(GenerationMode.NEGATIVE, headers=KEY, path_parameters=known),
    )
    app.test_client().post("/_m365/reset", headers=KEY)

    @settings(
        max_examples=EXAMPLES if path != "/import" else EXAMPLES // 3,
        deadline=None,
        database=None,
        derandomize=DERANDOMIZE,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @given(case=strategy)
    def answers_as_documented(case: Any) -> None:
        case.call_and_validate(headers=KEY, checks=CHECKS)

    answers_as_documented()
