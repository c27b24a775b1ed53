"""Setting fault rules: the control API (and its refusals), tenant files (with line and column), reset, export and
import, and the world kept by `serve --persist`."""

from __future__ import annotations

import pytest

from m365_mock.app import create_app
from m365_mock.clock import Clock
from m365_mock.state.persistence import WorldKeeper, read_kept_world
from m365_mock.state.tenantfile import ConfigError, load_tenant_file, load_world
from tests.conftest import shared_signing_key
from tests.helpers import ADMIN_KEY, SUPPORT, Admin, GraphClient

MESSAGES = f"/users/{SUPPORT}/messages"

TENANT_FILE = """\
tenants:
  - domains: [fabrikam.onmicrosoft.com]
    mailboxes: [{address: helpdesk@fabrikam.onmicrosoft.com}]
    applications: [{display_name: Ticketing, permissions: [Mail.Read], secrets: [{value: s3cret}]}]
faults:
  - preset: throttle
    mailbox: helpdesk@fabrikam.onmicrosoft.com
    every: 2
  - id: slow-token
    operation: token
    latency: 0.5
"""


def add(admin: Admin, body: dict, expect: int = 201) -> dict:
    return admin.call("POST", "/_m365/faults", body, expect=expect).json()


# ---------------------------------------------------------------- the control API


def test_add_list_get_and_remove(admin, graph):
    added = add(admin, {"preset": "throttle", "nth": 2})
    assert added == {
        "id": "fault-1",
        "preset": "throttle",
        "nth": 2,
        "action": "throttle (429 TooManyRequests), Retry-After 2",
        "matched": 0,
        "fired": 0,
        "spent": False,
    }
    named = add(admin, {"id": "drop-sends", "close": "before", "operation": "send"})
    assert named["id"] == "drop-sends"
    assert [graph.get(MESSAGES).status_code for _ in range(3)] == [200, 429, 200]
    listed = admin.call("GET", "/_m365/faults", expect=200).json()["value"]
    assert [(r["id"], r["matched"], r["fired"], r["spent"]) for r in listed] == [
        ("fault-1", 3, 1, True),
        ("drop-sends", 0, 0, False),
    ]
    assert admin.call("GET", "/_m365/faults/drop-sends", expect=200).json()["action"] == (
        "connection closed before the request ran"
    )
    admin.call("DELETE", "/_m365/faults/fault-1", expect=204)
    assert [r["id"] for r in admin.call("GET", "/_m365/faults", expect=200).json()["value"]] == ["drop-sends"]
    admin.call("DELETE", "/_m365/faults", expect=204)
    assert admin.call("GET", "/_m365/faults", expect=200).json() == {"value": []}


@pytest.mark.parametrize(
    ("body", "target", "message"),
    [
        (
            {"preset": "throttl"},
            "preset",
            "expected 'throttle', 'mailbox-concurrency', 'service-unavailable', "
            "'gateway-timeout', 'bad-gateway', 'token-endpoint-down', 'mailbox-not-enabled' or 'invalid-user', "
            "got 'throttl'",
        ),
        ({"preset": "throttle", "mailbx": SUPPORT}, "mailbx", "unknown field; did you mean 'mailbox'?"),
        ({"status": 200}, "status", "expected a whole number from 400 to 599, got 200"),
        ({"latency": 0}, "latency", "expected a number from 0.001 to 300, got 0"),
        ({"close": "sometimes"}, "close", "expected 'before' or 'after', got 'sometimes'"),
        (
            {"operation": "delete", "status": 503},
            "operation",
            "expected 'read', 'read content', 'write', 'send', 'read directory' or 'token', got 'delete'",
        ),
        ({"trickle": {"chunk": 3}}, "trickle.chunk", "unknown field; did you mean 'chunk_bytes'?"),
        ({"status": 503, "truncate": 3}, "truncate", "a rule does one thing: give only one of status, truncate"),
        ({"preset": "throttle", "code": "X"}, "code", "a preset fixes status, code and message; give status instead"),
        ({"latency": 1, "retry_after": 2}, "retry_after", "'retry_after' belongs to a status or a preset"),
        (
            {"status": 503, "probability": 0.5, "path_regex": "["},
            "path_regex",
            "not a regular expression: unterminated character set at position 0",
        ),
        (
            {},
            "",
            "a rule must say what it does: give one of preset, status, close, truncate, invalid_json, "
            "trickle, or latency",
        ),
    ],
)
def test_what_the_control_api_refuses(admin, body, target, message):
    error = add(admin, body, expect=400)["error"]
    assert error["code"] == "InvalidField"
    assert error["details"] == [{"code": "InvalidField", "target": target, "message": message}]
    assert admin.call("GET", "/_m365/faults", expect=200).json() == {"value": []}


def test_an_id_in_force_and_an_unknown_id(admin):
    add(admin, {"id": "x", "latency": 1})
    taken = add(admin, {"id": "x", "latency": 2}, expect=409)["error"]
    assert taken == {"code": "FaultExists", "message": "A fault rule with the id 'x' is in force already."}
    for method in ("GET", "DELETE"):
        missing = admin.call(method, "/_m365/faults/y", expect=404).json()["error"]
        assert missing == {"code": "FaultNotFound", "message": "No fault rule has the id 'y'."}


def test_a_misspelt_query_is_refused(admin):
    assert admin.call("GET", "/_m365/faults?id=x", expect=400).json()["error"]["code"] == "UnknownQueryParameter"


# ---------------------------------------------------------------- tenant files, reset, export, import


def test_a_tenant_files_faults_are_in_force_from_the_start(tmp_path):
    path = tmp_path / "tenant.yaml"
    path.write_text(TENANT_FILE)
    world = load_tenant_file(path)
    assert [(r.id, r.preset, r.every, r.latency) for r in world.faults] == [
        ("fault-1", "throttle", 2, None),
        ("slow-token", None, 1, 0.5),
    ]
    app = create_app(world, signing_key=shared_signing_key(), clock=Clock(), admin_key=ADMIN_KEY)
    emulator = app.extensions["m365"]
    assert [r.id for r in emulator.faults.rules] == ["fault-1", "slow-token"]
    tenant = emulator.directory.tenants[0]
    token = emulator.issuer.issue(tenant, next(iter(tenant.applications.values())), "https://graph.microsoft.com", "1")
    graph = GraphClient(app.test_client(), token.access_token)
    statuses = [graph.get("/users/helpdesk@fabrikam.onmicrosoft.com/messages").status_code for _ in range(4)]
    assert statuses == [200, 429, 200, 429]


@pytest.mark.parametrize(
    ("entry", "line", "message"),
    [
        ("  - preset: throttle\n    mailbx: a@b.c\n", 7, "faults[0].mailbx: unknown key; did you mean 'mailbox'?"),
        (
            "  - latency: 1\n  - status: 503\n    close: after\n",
            8,
            "faults[1].close: a rule does one thing: give only one of status, close",
        ),
        (
            "  - preset: token-endpoint-down\n    operation: send\n",
            7,
            "faults[0].operation: the preset token-endpoint-down answers the token endpoint: operation is token",
        ),
        ("  - {id: a, latency: 1}\n  - {id: a, latency: 2}\n", 7, "faults[1].id: 'a' is already the id of faults[0]"),
    ],
)
def test_a_wrong_fault_in_a_tenant_file_is_named_with_its_line(tmp_path, entry, line, message):
    path = tmp_path / "tenant.yaml"
    path.write_text(TENANT_FILE.split("faults:")[0] + "faults:\n" + entry)
    with pytest.raises(ConfigError) as refused:
        load_tenant_file(path)
    assert str(refused.value).startswith(f"{path}:{line}:")
    assert str(refused.value).endswith(message)


def test_reset_puts_back_the_rules_loaded_at_start_up(tmp_path):
    path = tmp_path / "tenant.yaml"
    path.write_text(TENANT_FILE)
    app = create_app(load_tenant_file(path), signing_key=shared_signing_key(), clock=Clock(), admin_key=ADMIN_KEY)
    admin = Admin(app.test_client())
    admin.call("DELETE", "/_m365/faults/slow-token", expect=204)
    add(admin, {"id": "extra", "status": 503})
    admin.call("POST", "/_m365/reset", expect=200)
    assert [r["id"] for r in admin.call("GET", "/_m365/faults", expect=200).json()["value"]] == [
        "fault-1",
        "slow-token",
    ]


def test_export_and_import_carry_the_rules_as_given(admin, graph):
    add(admin, {"preset": "throttle", "times": 1, "mailbox": SUPPORT})
    add(admin, {"id": "cut", "truncate": 10, "path": "/v1.0/users/*/messages"})
    assert graph.get(f"/users/{SUPPORT}/mailFolders").status_code == 429
    exported = admin.call("GET", "/_m365/export", expect=200).json()
    assert exported["faults"] == [
        {"id": "fault-1", "preset": "throttle", "times": 1, "mailbox": SUPPORT},
        {"id": "cut", "truncate": 10, "path": "/v1.0/users/*/messages"},
    ]
    admin.call("DELETE", "/_m365/faults", expect=204)
    admin.call("POST", "/_m365/import", exported, expect=200)
    listed = admin.call("GET", "/_m365/faults", expect=200).json()["value"]
    assert [(r["id"], r["fired"]) for r in listed] == [("fault-1", 0), ("cut", 0)]  # counted from zero
    assert admin.call("GET", "/_m365/export", expect=200).json() == exported


def test_an_import_with_a_wrong_fault_changes_nothing(admin):
    add(admin, {"id": "kept", "latency": 1})
    exported = admin.call("GET", "/_m365/export", expect=200).json()
    exported["faults"].append({"preset": "throttle", "close": "after"})
    refused = admin.call("POST", "/_m365/import", exported, expect=400).json()["error"]
    assert refused["code"] == "InvalidTenantFile"
    assert refused["details"][0]["target"] == "faults[1].close"
    assert [r["id"] for r in admin.call("GET", "/_m365/faults", expect=200).json()["value"]] == ["kept"]


def test_the_world_kept_by_serve_persist_keeps_the_rules(tmp_path, emulator):
    path = tmp_path / "world.sqlite"
    keeper = WorldKeeper(
        emulator.directory, emulator.settings, emulator.mail, path, restored=False, faults=emulator.faults
    )
    keeper.write_now()
    assert read_kept_world(path).faults == []
    keeper.start()
    try:
        emulator.faults.replace(load_world({**keeper.describe_world(), "faults": [{"id": "a", "latency": 1}]}).faults)
    finally:
        keeper.stop()
    assert [r.spec for r in read_kept_world(path).faults] == [{"id": "a", "latency": 1}]
