"""The control API's error catalogue: one class per code, refusals of the tenant world mapped by their type."""

from __future__ import annotations

import inspect

import pytest

from m365_mock.control import errors
from m365_mock.state.errors import AlreadyExists, DirectoryError, InUse, NotFound, RuleError, not_found
from tests.helpers import GROUP, SALES, SUPPORT


def catalogue() -> list[type[errors.ControlError]]:
    return [
        c
        for _, c in inspect.getmembers(errors, inspect.isclass)
        if issubclass(c, errors.ControlError) and c is not errors.ControlError
    ]


def test_each_code_has_one_status():
    statuses: dict[str, set[int]] = {}
    for refusal in catalogue():
        statuses.setdefault(refusal.code, set()).add(refusal.status)
    assert {code: s for code, s in statuses.items() if len(s) > 1} == {}
    assert all(400 <= r.status < 500 for r in catalogue() if r is not errors.InternalError)
    assert errors.InternalError.status == 500


def test_refusals_of_the_tenant_world_are_told_apart_by_type_not_by_their_words():
    assert isinstance(not_found("x"), NotFound) and isinstance(not_found("x"), RuleError)
    missing = errors.from_state(not_found("ghost"))
    assert (missing.status, missing.code) == (404, "NotFound")
    assert missing.message == "The operation couldn't be performed because object 'ghost' couldn't be found."
    worded_alike = errors.from_state(RuleError("The scope couldn't be found in the recipient's filter."))
    assert (worded_alike.status, worded_alike.code) == (400, "InvalidOperation")
    found_elsewhere = errors.from_state(NotFound("the scope is gone"))
    assert (found_elsewhere.status, found_elsewhere.code) == (404, "NotFound")
    assert errors.from_state(DirectoryError("no")).status == 400
    taken = errors.from_state(AlreadyExists("group g@contoso.com already exists"))
    assert (taken.status, taken.code, taken.message) == (409, "AlreadyExists", "group g@contoso.com already exists")
    assert (errors.from_state(InUse("used by role assignments")).status, errors.from_state(InUse("x")).code) == (
        409,
        "InUse",
    )


def test_the_error_shape(admin):
    body = admin.call("GET", "accessPolicies/00000000-0000-0000-0000-00000000000f", expect=404).get_json()
    assert body == {
        "error": {
            "code": "NotFound",
            "message": "The operation couldn't be performed because object '00000000-0000-0000-0000-00000000000f' "
            "couldn't be found.",
        }
    }
    refused = admin.call("POST", "mailboxes", {"adress": "x@contoso.com"}, expect=400).get_json()["error"]
    assert refused["code"] == "InvalidField"
    assert {d["target"] for d in refused["details"]} == {"adress", "address"}
    assert all(d["code"] == "InvalidField" for d in refused["details"])


def test_a_rule_naming_nothing_is_a_404_wherever_it_is_read(admin, demo_app):
    """A scope that names nothing, met while the tenant-file reader builds the policy, is still a 404."""
    response = admin.call(
        "POST", "accessPolicies", {"app_id": demo_app.app_id, "scope": "ghost", "access_right": "DenyAccess"}
    )
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "NotFound"
    assert "object 'ghost' couldn't be found" in response.get_json()["error"]["message"]


def test_a_permission_graph_does_not_define_is_a_400(admin, demo_app):
    response = admin.call("PATCH", f"applications/{demo_app.app_id}", {"permissions": ["Mail.Everything"]})
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "InvalidOperation"


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("mailboxes", {"address": SUPPORT.upper()}, 409, "MailboxExists"),
        ("mailboxes", {"address": "new@contoso.com", "aliases": [SALES]}, 409, "MailboxExists"),
        ("mailboxes", {"address": "new@fabrikam.com"}, 400, "InvalidMailbox"),
        ("groups", {"address": GROUP}, 409, "GroupExists"),
        # A group may not take a mailbox's address: a clash, not a malformed group (this used to be a 400).
        ("groups", {"address": SUPPORT}, 409, "GroupExists"),
        ("groups", {"address": "g@fabrikam.com"}, 400, "InvalidGroup"),
        ("groups", {"address": "g@contoso.com", "members": ["ghost@contoso.com"]}, 400, "InvalidGroup"),
    ],
)
def test_a_clash_is_told_from_a_wrong_object_by_the_directory_not_by_the_words(admin, path, body, status, code):
    response = admin.call("POST", path, body)
    assert (response.status_code, response.get_json()["error"]["code"]) == (status, code)


def test_routing_refusals_keep_the_error_shape(admin):
    assert admin.call("GET", "/_m365/nothing", expect=404).get_json()["error"]["code"] == "NotFound"
    assert admin.call("PUT", "/_m365/tenants", expect=405).get_json()["error"]["code"] == "MethodNotAllowed"


def test_bodies_that_are_not_json_objects(admin):
    client = admin.client
    headers = {"X-M365-Admin-Key": "test-admin-key"}
    for data, content_type, status, code in [
        ("[1]", "application/json", 400, "BadRequest"),
        ("{", "application/json", 400, "BadRequest"),
        ('{"advance": 1}', "text/plain", 415, "RequestBodyRead"),
    ]:
        response = client.post("/_m365/time", data=data, content_type=content_type, headers=headers)
        assert (response.status_code, response.get_json()["error"]["code"]) == (status, code)
    empty = client.post(f"/_m365/mailboxes/{SUPPORT}/messages", headers=headers)
    assert empty.status_code == 400 and empty.get_json()["error"]["message"] == "Empty Payload. JSON content expected."
