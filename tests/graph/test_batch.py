"""JSON batching (`POST /v1.0/$batch`): inner requests run through the app as if sent alone (token, access
decision, errors, request log), dependsOn and 424, and Graph's 400 for a malformed batch (nothing of it runs).

msgraph-sdk's own batch helper (`msgraph_core.requests.BatchRequestContent`) cannot drive these tests: it imports
the `deprecated` package, which msgraph-core does not declare, and it writes `depends_on` where Graph reads
`dependsOn` (a property name OData's batch reader refuses). The batches here are raw JSON as Graph documents them.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from m365_mock.app import create_app
from m365_mock.graph.batch import InnerRequest, inner_answer
from m365_mock.state.tenantfile import load_demo_world
from tests.conftest import ADMIN_KEY, shared_signing_key
from tests.helpers import BASE, BILLING, DENIED, RAOP, SALES, SUPPORT, GraphClient, error_of

GRAPH_JSON = "application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; charset=utf-8"


def batch(graph: GraphClient, *requests: dict[str, Any], **kwargs: Any):
    return graph.post("/$batch", json={"requests": list(requests)}, **kwargs)


def answers(response) -> dict[str, dict[str, Any]]:
    """The inner answers by id (checking the outer 200 and that every id is answered once)."""
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type == GRAPH_JSON
    body = response.get_json()
    assert list(body) == ["responses"]
    by_id = {entry["id"]: entry for entry in body["responses"]}
    assert len(by_id) == len(body["responses"])
    return by_id


def get(request_id: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"id": request_id, "method": "GET", "url": url, **extra}


# ---------------------------------------------------------------- answers


def test_inner_answers_are_the_routes_answers(graph, deliver):
    message = deliver(SUPPORT, subject="Batched", is_read=False)
    response = batch(
        graph,
        get("1", f"/users/{SUPPORT}/messages?$select=subject,isRead"),
        get("2", f"users/{SUPPORT}/mailFolders/inbox"),  # Graph takes the url with or without its leading slash
        get("3", f"/users/{SUPPORT}/messages/$count?$filter=isRead eq false"),
        get("4", f"/users/{SUPPORT}/messages/{message.id}?$select=subject"),
        get("5", "/users/nobody@contoso.onmicrosoft.com/messages"),
    )
    by_id = answers(response)
    assert [e["id"] for e in response.get_json()["responses"]] == ["1", "2", "3", "4", "5"]

    listed = by_id["1"]
    assert listed["status"] == 200 and listed["headers"] == {"Content-Type": GRAPH_JSON}
    direct = graph.get(f"/users/{SUPPORT}/messages?$select=subject,isRead").get_json()
    assert listed["body"] == direct  # a JSON object, the same as the route answers alone
    assert listed["body"]["value"] == [{"@odata.etag": direct["value"][0]["@odata.etag"], "id": message.id,
                                        "subject": "Batched", "isRead": False}]  # fmt: skip

    assert by_id["2"]["status"] == 200 and by_id["2"]["body"]["displayName"] == "Inbox"
    assert by_id["2"]["body"]["@odata.context"] == (
        f"{BASE}/v1.0/$metadata#users('support%40contoso.onmicrosoft.com')/mailFolders/$entity"
    )
    # a text/plain answer is a JSON string
    assert (by_id["3"]["status"], by_id["3"]["headers"], by_id["3"]["body"]) == (
        200,
        {"Content-Type": "text/plain"},
        "1",
    )
    assert by_id["4"]["body"]["subject"] == "Batched"
    missing = by_id["5"]
    assert missing["status"] == 404
    assert (missing["body"]["error"]["code"], missing["body"]["error"]["message"]) == (
        "ErrorInvalidUser",
        "The requested user 'nobody@contoso.onmicrosoft.com' is invalid.",
    )


def test_writes_in_a_batch_change_the_mailbox(graph, deliver, emulator, tenant):
    message = deliver(SUPPORT, subject="Mark me", is_read=False)
    patch = {
        "id": "read",
        "method": "PATCH",
        "url": f"/users/{SUPPORT}/messages/{message.id}",
        "headers": {"Content-Type": "application/json"},
        "body": {"isRead": True, "categories": ["Batch"]},
    }
    send = {
        "id": "send",
        "method": "POST",
        "url": f"/users/{SUPPORT}/sendMail",
        "headers": {"Content-Type": "application/json"},
        "body": {"message": {"subject": "From a batch", "toRecipients": [{"emailAddress": {"address": BILLING}}]}},
    }
    by_id = answers(batch(graph, patch, send))
    assert by_id["read"]["status"] == 200 and by_id["read"]["body"]["isRead"] is True
    assert by_id["send"] == {"id": "send", "status": 202, "headers": {}}  # an empty answer has no body
    stored = emulator.mail.store(tenant.mailbox(SUPPORT)).message(message.id)
    assert stored.is_read is True and stored.categories == ["Batch"]
    inbox = graph.get(f"/users/{BILLING}/mailFolders/inbox/messages").get_json()["value"]
    assert [m["subject"] for m in inbox] == ["From a batch"]


def test_a_base64_body_is_decoded_as_odata_reads_it(graph, deliver, emulator, tenant):
    """A string body of a non-text type is base64 (what msgraph-sdk's BatchRequestItem sends for JSON)."""
    message = deliver(SUPPORT, subject="b64", is_read=False)
    encoded = base64.urlsafe_b64encode(json.dumps({"isRead": True}).encode()).decode().rstrip("=")
    patch = {
        "id": "1",
        "method": "PATCH",
        "url": f"/users/{SUPPORT}/messages/{message.id}",
        "headers": {"content-type": "application/json"},
        "body": encoded,
    }
    assert answers(batch(graph, patch))["1"]["status"] == 200
    assert emulator.mail.store(tenant.mailbox(SUPPORT)).message(message.id).is_read is True


def test_inner_headers_reach_the_route(graph, deliver):
    message = deliver(SUPPORT, subject="Text please")
    inner = get("1", f"/users/{SUPPORT}/messages/{message.id}", headers={"Prefer": 'outlook.body-content-type="text"'})
    answer = answers(batch(graph, inner))["1"]
    assert answer["headers"]["Preference-Applied"] == 'outlook.body-content-type="text"'
    assert answer["body"]["body"] == {"contentType": "text", "content": "Hi there"}


def test_twenty_requests_are_allowed(graph):
    by_id = answers(batch(graph, *(get(f"r{i}", f"/users/{SUPPORT}/mailFolders/inbox") for i in range(20))))
    assert sorted(by_id) == sorted(f"r{i}" for i in range(20))
    assert {e["status"] for e in by_id.values()} == {200}


# ---------------------------------------------------------------- one access gate per inner request


def test_allowed_and_policy_denied_mailboxes_side_by_side(clock):
    """The demo tenant's policy restricts its app to cctr_sec_group (support@, billing@): sales@ is refused."""
    app = create_app(load_demo_world(), signing_key=shared_signing_key(), clock=clock, admin_key=ADMIN_KEY)
    emulator = app.extensions["m365"]
    tenant = emulator.directory.tenants[0]
    demo = next(iter(tenant.applications.values()))
    graph = GraphClient(
        app.test_client(), emulator.issuer.issue(tenant, demo, "https://graph.microsoft.com", "1").access_token
    )
    response = batch(
        graph,
        get("support", f"/users/{SUPPORT}/messages?$top=1"),
        get("sales", f"/users/{SALES}/messages?$top=1"),
        get("billing", f"/users/{BILLING}/mailFolders/inbox"),
    )
    by_id = answers(response)
    assert by_id["support"]["status"] == 200 and len(by_id["support"]["body"]["value"]) == 1
    assert by_id["billing"]["status"] == 200
    assert by_id["sales"]["status"] == 403
    assert (by_id["sales"]["body"]["error"]["code"], by_id["sales"]["body"]["error"]["message"]) == (
        "ErrorAccessDenied",
        RAOP,
    )
    records = emulator.log.query()
    batch_id = response.headers["request-id"]
    inner = [r for r in records if r.batch_request_id == batch_id]
    assert [(r.mailbox, r.outcome, r.status) for r in inner] == [
        (SUPPORT, "granted", 200),
        (SALES, "denied", 403),
        (BILLING, "granted", 200),
    ]
    assert inner[1].access.reason.startswith("RestrictAccess policies limit the app to cctr_sec_group")


def test_each_inner_request_needs_its_own_permission(graph_as):
    sender = graph_as("Mail.Send")
    by_id = answers(batch(sender, get("read", f"/users/{SUPPORT}/messages"), get("users", "/users")))
    assert by_id["read"]["status"] == 403
    assert by_id["read"]["body"]["error"]["message"] == DENIED
    assert by_id["users"]["status"] == 403
    assert by_id["users"]["body"]["error"]["code"] == "Authorization_RequestDenied"


def test_an_inner_authorization_header_replaces_the_batchs(graph, graph_as):
    reader_token = graph_as("User.Read.All").token
    by_id = answers(
        batch(
            graph,
            get("mine", "/users", headers={"Authorization": f"Bearer {reader_token}"}),
            get("outer", "/users"),
            get("broken", f"/users/{SUPPORT}/messages", headers={"authorization": "Bearer nonsense"}),
        )
    )
    assert by_id["mine"]["status"] == 200 and len(by_id["mine"]["body"]["value"]) == 7
    assert by_id["outer"]["status"] == 403  # the demo app holds no User permission
    assert by_id["broken"]["status"] == 401
    assert by_id["broken"]["body"]["error"] == {
        "code": "InvalidAuthenticationToken",
        "message": "CompactToken parsing failed with error code: 80049217",
        "innerError": by_id["broken"]["body"]["error"]["innerError"],
    }
    assert by_id["broken"]["headers"]["WWW-Authenticate"].startswith("Bearer realm=")


def test_the_batch_itself_needs_a_valid_token(client):
    response = client.post("/v1.0/$batch", json={"requests": [get("1", "/users")]}, base_url=BASE)
    assert error_of(response) == (401, "InvalidAuthenticationToken", "Access token is empty.")


def test_every_inner_request_is_logged_with_the_batchs_request_id(graph, admin, deliver):
    deliver(SUPPORT, subject="One")
    response = batch(
        graph,
        get("a", f"/users/{SUPPORT}/messages"),
        get("b", "/users/nobody@contoso.onmicrosoft.com/messages"),
        get("c", f"/users/{SUPPORT}/mailFolders/inbox", dependsOn=["b"]),
    )
    by_id = answers(response)
    batch_id = response.headers["request-id"]
    log = admin.api.log()
    outer = next(r for r in log if r["request_id"] == batch_id)
    assert (outer["method"], outer["path"], outer["status"], outer["batch_request_id"]) == (
        "POST",
        "/v1.0/$batch",
        200,
        None,
    )
    inner = [r for r in log if r["batch_request_id"] == batch_id]
    assert [(r["path"], r["status"], r["outcome"]) for r in inner] == [
        (f"/v1.0/users/{SUPPORT}/messages", 200, "granted"),
        ("/v1.0/users/nobody@contoso.onmicrosoft.com/messages", 404, "error"),
    ]  # c was not run: a 424 is not a request the app answered
    assert inner[1]["error_code"] == "ErrorInvalidUser"
    assert by_id["b"]["body"]["error"]["innerError"]["request-id"] == inner[1]["request_id"] != batch_id
    assert len({r["request_id"] for r in inner} | {batch_id}) == 3


# ---------------------------------------------------------------- dependsOn


def test_a_failed_dependency_gives_424_and_the_request_is_not_run(graph, deliver, emulator, tenant):
    message = deliver(SUPPORT, subject="Untouched", is_read=False)
    patch = {
        "id": "3",
        "method": "PATCH",
        "url": f"/users/{SUPPORT}/messages/{message.id}",
        "headers": {"Content-Type": "application/json"},
        "body": {"isRead": True},
        "dependsOn": ["2"],
    }
    response = batch(
        graph,
        get("1", f"/users/{SUPPORT}/mailFolders/inbox"),
        get("2", f"/users/{SUPPORT}/mailFolders/nonesuch", dependsOn=["1"]),
        patch,
        get("4", f"/users/{SUPPORT}/mailFolders/inbox", dependsOn=["3"]),
        get("5", f"/users/{SUPPORT}/mailFolders/drafts", dependsOn=["1"]),
    )
    by_id = answers(response)
    assert [by_id[i]["status"] for i in "12345"] == [200, 400, 424, 424, 200]
    failed = by_id["3"]
    assert failed["headers"] == {"Content-Type": "application/json"}
    assert failed["body"]["error"]["code"] == "FailedDependency"
    assert failed["body"]["error"]["message"] == "The request was not run: the request '2' it depends on failed."
    assert failed["body"]["error"]["innerError"]["request-id"] == response.headers["request-id"]
    assert by_id["4"]["body"]["error"]["message"] == "The request was not run: the request '3' it depends on failed."
    assert emulator.mail.store(tenant.mailbox(SUPPORT)).message(message.id).is_read is False


def test_depends_on_ids_ignore_case(graph):
    by_id = answers(
        batch(graph, get("A", "/users/x@contoso.onmicrosoft.com/messages"), get("b", "/me", dependsOn=["a"]))
    )
    assert (by_id["A"]["status"], by_id["b"]["status"]) == (404, 424)


# ---------------------------------------------------------------- malformed batches: 400, nothing runs


def _write(request_id: str, message_id: str) -> dict[str, Any]:
    return {
        "id": request_id,
        "method": "PATCH",
        "url": f"/users/{SUPPORT}/messages/{message_id}",
        "headers": {"Content-Type": "application/json"},
        "body": {"isRead": True},
    }


MALFORMED = [
    (
        lambda w: {"requests": [w, *(get(str(i), "/users") for i in range(20))]},
        "The current batch message contains too many parts. A maximum number of '20' query operations and change "
        "sets are allowed in a batch message.",
    ),
    (
        lambda w: {"requests": [w, get("w", "/users")]},
        "The content ID 'w' was found more than once in the same change set or same batch request. Content IDs have "
        "to be unique across all operations of a change set for OData V4.0 and have to be unique across all "
        "operations in the whole batch request for OData V4.01.",
    ),
    (
        lambda w: {"requests": [w, get("W", "/users")]},
        "The content ID 'W' was found more than once in the same change set or same batch request. Content IDs have "
        "to be unique across all operations of a change set for OData V4.0 and have to be unique across all "
        "operations in the whole batch request for OData V4.01.",
    ),
    (
        lambda w: {"requests": [w, get("2", "https://graph.microsoft.com/v1.0/users")]},
        "The url 'https://graph.microsoft.com/v1.0/users' of request '2' is absolute; a batch takes URLs relative "
        "to the version.",
    ),
    (
        lambda w: {"requests": [w, get("2", "//evil.example/v1.0/users")]},
        "The url '//evil.example/v1.0/users' of request '2' is absolute; a batch takes URLs relative to the version.",
    ),
    (
        lambda w: {"requests": [w, {"id": "2", "method": "POST", "url": "/$batch"}]},
        "Request '2' is a $batch request; batches cannot be nested.",
    ),
    (
        lambda w: {"requests": [w, {"id": "2", "method": "POST", "url": "%24Batch/"}]},
        "Request '2' is a $batch request; batches cannot be nested.",
    ),
    (
        lambda w: {"requests": [w, {"method": "GET", "url": "/users"}]},
        "Request property [ID] is required but is missing.",
    ),
    (
        lambda w: {"requests": [w, {"id": "2", "url": "/users"}]},
        "Request property [METHOD] is required but is missing.",
    ),
    (lambda w: {"requests": [w, {"id": "2", "method": "GET"}]}, "Request property [URL] is required but is missing."),
    (lambda w: {"requests": [w, get("2", "")]}, "Request property [URL] is required but is missing."),
    (
        lambda w: {"requests": [w, {"id": 2, "method": "GET", "url": "/users"}]},
        "The 'id' of a request in a batch must be a string.",
    ),
    (
        lambda w: {"requests": [w, get("2", "/users", depends_on=["w"])]},
        "Unknown property name 'DEPENDS_ON' for message in batch.",
    ),
    (
        lambda w: {"requests": [w, get("2", "/users", atomicityGroup="g1")]},
        "Unknown property name 'ATOMICITYGROUP' for message in batch.",
    ),
    (
        lambda w: {"requests": [w, get("2", "/users", dependsOn=["nope"])]},
        "Invalid dependency for request Id '2': 'nope' is not the id of a request before it in the batch.",
    ),
    (
        lambda w: {"requests": [get("1", "/users", dependsOn=["2"]), get("2", "/users", dependsOn=["1"]), w]},
        "Invalid dependency for request Id '1': '2' is not the id of a request before it in the batch.",
    ),
    (
        lambda w: {"requests": [w, get("2", "/users", dependsOn=["2"])]},
        "Invalid dependency for request Id '2': '2' is not the id of a request before it in the batch.",
    ),
    (
        lambda w: {"requests": [w, get("2", "/users", dependsOn="w")]},
        "The 'dependsOn' of request '2' must be an array of request ids.",
    ),
    (
        lambda w: {"requests": [w, {"id": "2", "method": "POST", "url": "/users/x/sendMail", "body": {}}]},
        "Request '2' has a body but no Content-Type header.",
    ),
    (
        lambda w: {"requests": [w, {"id": "2", "method": "POST", "url": "/x", "body": {}, "headers": {"Prefer": "x"}}]},
        "Request '2' has a body but no Content-Type header.",
    ),
    (
        lambda w: {
            "requests": [
                w,
                {"id": "2", "method": "POST", "url": "/x", "body": "%%%", "headers": {"Content-Type": "image/png"}},
            ]
        },
        "The body of request '2' is not base64, as a body of type 'image/png' must be.",
    ),
    (
        lambda w: {"requests": [w, get("2", "/users", headers={"Prefer": {"a": 1}})]},
        "The header 'Prefer' of request '2' must be a string.",
    ),
    (
        lambda w: {"requests": [w, get("2", "/users", headers=["Prefer"])]},
        "The 'headers' of request '2' must be a JSON object.",
    ),
    (lambda w: {"requests": [w, "GET /users"]}, "Each entry of 'requests' must be a JSON object."),
    (lambda w: {"requests": {"1": w}}, "The 'requests' property of a JSON batch must be an array."),
    (
        lambda w: {"requets": [w]},
        "Json batch format requires top level property name 'requests' or 'response' but it is missing.",
    ),
    (
        lambda w: {"requests": [w], "atomic": True},
        "Unknown property name 'atomic' for a JSON batch; only 'requests' is allowed.",
    ),
]


@pytest.mark.parametrize(("build", "message"), MALFORMED)
def test_a_malformed_batch_is_400_and_runs_nothing(graph, deliver, emulator, tenant, build, message):
    target = deliver(SUPPORT, subject="Must stay unread", is_read=False)
    before = len(emulator.log.query())
    response = graph.post("/$batch", json=build(_write("w", target.id)))
    assert error_of(response) == (400, "BadRequest", message)
    assert emulator.mail.store(tenant.mailbox(SUPPORT)).message(target.id).is_read is False
    records = emulator.log.query()[before:]
    assert [(r.path, r.status, r.error_code) for r in records] == [("/v1.0/$batch", 400, "BadRequest")]


def test_repeated_property_and_header_names_are_refused(graph, deliver, emulator, tenant):
    target = deliver(SUPPORT, subject="Still unread", is_read=False)
    write = json.dumps(_write("w", target.id))
    twice = '{"requests": [' + write + ', {"id": "2", "ID": "3", "method": "GET", "url": "/users"}]}'
    response = graph.post("/$batch", data=twice, headers={"Content-Type": "application/json"})
    assert error_of(response) == (400, "BadRequest", "Duplicate property name 'ID' for request in batch.")
    header_twice = (
        '{"requests": [' + write + ', {"id": "2", "method": "GET", "url": "/users", '
        '"headers": {"Prefer": "a", "Prefer": "b"}}]}'
    )
    response = graph.post("/$batch", data=header_twice, headers={"Content-Type": "application/json"})
    assert error_of(response) == (400, "BadRequest", "Duplicate header name 'Prefer' for request in batch.")
    assert emulator.mail.store(tenant.mailbox(SUPPORT)).message(target.id).is_read is False


UNREADABLE = (
    "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format."
)
WRONG_TYPE = (
    "A supported MIME type could not be found that matches the content type of the response. None of the supported "
    "type(s) 'application/json' matches the content type 'text/plain'."
)


@pytest.mark.parametrize(
    ("data", "content_type", "expected"),
    [
        ("", "application/json", (400, "BadRequest", "Empty Payload. JSON content expected.")),
        ("{not json", "application/json", (400, "BadRequest", UNREADABLE)),
        ("[]", "application/json", (400, "BadRequest", UNREADABLE)),
        ('{"requests": []}', "text/plain", (415, "RequestBodyRead", WRONG_TYPE)),
    ],
)
def test_unreadable_batches(graph, data, content_type, expected):
    assert error_of(graph.post("/$batch", data=data, headers={"Content-Type": content_type})) == expected


def test_an_empty_batch_answers_nothing(graph):
    assert answers(graph.post("/$batch", json={"requests": []})) == {}


def test_batch_takes_post_only(graph):
    assert error_of(graph.get("/$batch")) == (
        405,
        "Request_BadRequest",
        "Specified HTTP method is not allowed for the request target.",
    )


def test_an_unknown_inner_method_or_path_is_the_routes_error(graph):
    by_id = answers(
        batch(graph, {"id": "1", "method": "FETCH", "url": f"/users/{SUPPORT}/messages"}, get("2", "/bogus"))
    )
    assert by_id["1"]["status"] == 405
    assert by_id["2"]["status"] == 400
    assert by_id["2"]["body"]["error"]["message"] == "Resource not found for the segment 'bogus'."


def test_inner_urls_stay_under_the_graph_version(graph, admin):
    by_id = answers(batch(graph, {"id": "1", "method": "POST", "url": "../_m365/reset"}, get("2", "/../_m365/log")))
    assert [by_id[i]["status"] for i in "12"] == [400, 400]
    assert by_id["1"]["body"]["error"]["message"] == "Resource not found for the segment '..'."
    assert admin.api.log()[-1]["path"] == "/v1.0/$batch"  # the control API saw nothing


def test_connection_headers_of_an_inner_request_give_way_to_the_batchs(graph):
    inner = get("1", f"/users/{SUPPORT}/mailFolders/inbox", headers={"Host": "evil.example", "Content-Length": "99"})
    answer = answers(batch(graph, inner))["1"]
    assert answer["status"] == 200
    assert answer["body"]["@odata.context"].startswith(f"{BASE}/v1.0/$metadata#")


@pytest.mark.parametrize(
    ("content_type", "content", "body"),
    [
        ("application/json; charset=utf-8", b'{"a": [1]}', {"a": [1]}),
        ("application/problem+json", b'{"a": 1}', {"a": 1}),
        ("text/plain", b"42", "42"),
        ("text/plain; charset=utf-8", "Grüße".encode(), "Grüße"),
        ("application/octet-stream", b"\x00\xff\xfe/", base64.b64encode(b"\x00\xff\xfe/").decode()),
        ("image/jpeg", b"\xff\xd8\xff\xe0", "/9j/4A=="),
    ],
)
def test_answer_bodies_are_json_text_or_standard_base64(content_type, content, body):
    inner = InnerRequest("x", "GET", "/v1.0/users", "", [], None)
    headers = [("Content-Type", content_type), ("Content-Length", str(len(content))), ("request-id", "r")]
    assert inner_answer(inner, 200, headers, content) == {
        "id": "x",
        "status": 200,
        "headers": {"Content-Type": content_type},
        "body": body,
    }
