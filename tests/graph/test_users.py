"""Directory users: `GET /users`, `/users/$count` and `/users/{id | userPrincipalName}` for app-only tokens with
User.ReadBasic.All or User.Read.All, with Entra ID's query rules and errors."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from tests.helpers import BASE, GROUP, SALES, SUPPORT, error_of

DEFAULT_KEYS = [
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
]
DENIED = (403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
EVENTUAL = {"ConsistencyLevel": "eventual"}


@pytest.fixture
def reader(graph_as):
    return graph_as("User.Read.All")


@pytest.fixture
def users(tenant) -> list:
    """The demo tenant's mailboxes (three shared, four users), in the order Graph lists them: by object id."""
    return sorted(tenant.mailboxes.values(), key=lambda m: m.id)


def addresses(response) -> list[str]:
    assert response.status_code == 200, response.get_json()
    return [u["userPrincipalName"] for u in response.get_json()["value"]]


def test_list_gives_every_mailbox_as_a_user_in_the_default_shape(reader, users):
    body = reader.get("/users").get_json()
    assert body["@odata.context"] == f"{BASE}/v1.0/$metadata#users"
    assert "@odata.nextLink" not in body and "@odata.count" not in body
    assert [u["id"] for u in body["value"]] == [m.id for m in users]
    for user, mailbox in zip(body["value"], users, strict=True):
        assert list(user) == DEFAULT_KEYS
        assert user == {
            "businessPhones": [],
            "displayName": mailbox.display_name,
            "givenName": None,
            "jobTitle": None,
            "mail": mailbox.address,
            "mobilePhone": None,
            "officeLocation": None,
            "preferredLanguage": None,
            "surname": None,
            "userPrincipalName": mailbox.address,
            "id": mailbox.id,
        }


def test_get_by_id_or_user_principal_name_in_any_case(reader, tenant):
    support = tenant.mailbox(SUPPORT)
    for key in (support.id, support.id.upper(), SUPPORT, SUPPORT.upper(), "support%40contoso.onmicrosoft.com"):
        response = reader.get(f"/users/{key}")
        assert response.status_code == 200, key
        body = response.get_json()
        assert body["@odata.context"] == f"{BASE}/v1.0/$metadata#users/$entity"
        assert list(body) == ["@odata.context", *DEFAULT_KEYS]
        assert (body["id"], body["displayName"], body["mail"]) == (support.id, "Customer Support", SUPPORT)


@pytest.mark.parametrize(
    "key",
    ["nobody@contoso.onmicrosoft.com", "support@contoso.com", "00000000-0000-0000-0000-000000000000", "support"],
)
def test_unknown_user_is_request_resource_not_found(reader, key):
    """An alias (support@contoso.com) is a proxy address, not a user principal name: Graph does not find it."""
    assert error_of(reader.get(f"/users/{key}")) == (
        404,
        "Request_ResourceNotFound",
        f"Resource '{key}' does not exist or one of its queried reference-property objects are not present.",
    )


def test_select_on_the_list_and_on_one_user(reader, tenant):
    body = reader.get("/users?$select=DisplayName,mail,mailNickname,proxyAddresses,userType").get_json()
    assert (
        body["@odata.context"] == f"{BASE}/v1.0/$metadata#users(displayName,mail,mailNickname,proxyAddresses,userType)"
    )
    sales = next(u for u in body["value"] if u["mail"] == SALES)
    assert sales == {
        "displayName": "Sales",
        "mail": SALES,
        "mailNickname": "sales",
        "proxyAddresses": [f"SMTP:{SALES}", "smtp:sales@contoso.com"],
        "userType": "Member",
    }
    one = reader.get(f"/users/{SALES}?$select=id,userPrincipalName").get_json()
    assert one == {
        "@odata.context": f"{BASE}/v1.0/$metadata#users(id,userPrincipalName)/$entity",
        "id": tenant.mailbox(SALES).id,
        "userPrincipalName": SALES,
    }


@pytest.mark.parametrize("path", ["/users?$select=displayName,department", f"/users/{SUPPORT}?$select=department"])
def test_select_of_an_unknown_property_is_refused(reader, path):
    assert error_of(reader.get(path)) == (
        400,
        "BadRequest",
        "Parsing OData Select and Expand failed: Could not find a property named 'department' on type "
        "'microsoft.graph.user'.",
    )


def test_top_pages_with_skiptoken_next_links_keeping_the_query(reader, users):
    seen, pages = [], 0
    url = "/users?$top=3&$select=id,mail"
    while url:
        response = reader.get(url)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        assert len(body["value"]) <= 3 and all(list(u) == ["id", "mail"] for u in body["value"])
        seen += [u["id"] for u in body["value"]]
        pages += 1
        url = body.get("@odata.nextLink")
        if url:
            parts = urlsplit(url)
            assert url.startswith(f"{BASE}/v1.0/users?$top=3&$select=id%2Cmail&$skiptoken=")
            assert parse_qs(parts.query)["$select"] == ["id,mail"]
    assert pages == 3
    assert seen == [m.id for m in users]


def test_a_skiptoken_the_emulator_did_not_make_is_refused(reader):
    assert error_of(reader.get("/users?$skiptoken=RFNwdAIAAQAAAA")) == (
        400,
        "Directory_ExpiredPageToken",
        "The specified page token value has expired and can no longer be included in your request.",
    )


@pytest.mark.parametrize(
    ("query", "code", "message"),
    [
        (
            "$top=0",
            "Request_UnsupportedQuery",
            "Invalid page size specified: '0'. Must be between 1 and 999 inclusive.",
        ),
        (
            "$top=1000",
            "Request_UnsupportedQuery",
            "Invalid page size specified: '1000'. Must be between 1 and 999 inclusive.",
        ),
        (
            "$top=ten",
            "Request_BadRequest",
            "Invalid value 'ten' for $top query option found. The $top query option requires a non-negative integer "
            "value.",
        ),
        ("$skip=2", "Request_BadRequest", "'$skip' is not supported by the service."),
        ("$orderby=displayName", "Request_BadRequest", "'$orderby' is not supported by the service."),
        ("$expand=manager", "Request_BadRequest", "'$expand' is not supported by the service."),
        ("filter=mail eq 'x'", "Request_BadRequest", "'filter' is not supported by the service."),
        ("$count=yes", "Request_BadRequest", "'yes' is not a valid count option."),
        (
            '$search="displayName:Sales"',
            "Request_UnsupportedQuery",
            "Request with $search query parameter only works through MSGraph with a special request header: "
            "'ConsistencyLevel: eventual'",
        ),
    ],
)
def test_query_options_the_list_does_not_take_are_refused(reader, query, code, message):
    assert error_of(reader.get(f"/users?{query}")) == (400, code, message)


def test_one_user_takes_select_only(reader):
    assert error_of(reader.get(f"/users/{SUPPORT}?$top=1")) == (
        400,
        "Request_BadRequest",
        "'$top' is not supported by the service.",
    )


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (f"mail eq '{SALES}'", [SALES]),
        (f"userPrincipalName eq '{SALES.upper()}'", [SALES]),
        ("startswith(mail,'S')", [SALES, SUPPORT]),
        ("startswith(userPrincipalName, 'paul.')", ["paul.tran@contoso.onmicrosoft.com"]),
        ("displayName eq 'Billing'", ["billing@contoso.onmicrosoft.com"]),
        (f"mail in ('{SALES}', '{SUPPORT}', 'x@y.z')", [SALES, SUPPORT]),
        (f"mail eq '{SALES}' or (startswith(displayName,'Cust') and mail eq '{SUPPORT}')", [SALES, SUPPORT]),
        ("mail eq 'alias@contoso.com'", []),
        ("givenName eq null", None),  # every user: the emulator keeps no first names
    ],
)
def test_filter(reader, users, flt, expected):
    found = addresses(reader.get(f"/users?$filter={flt}"))
    if expected is None:
        expected = [m.address for m in users]
    assert sorted(found) == sorted(expected)


@pytest.mark.parametrize(
    ("flt", "operator", "expected"),
    [
        ("endswith(mail,'t@contoso.onmicrosoft.com')", "endsWith", [SUPPORT]),
        (f"mail ne '{SALES}'", "ne", None),
        ("not startswith(mail,'s')", "not", None),
    ],
)
def test_advanced_operators_need_consistency_level_and_count(reader, users, flt, operator, expected):
    message = (
        f"Operator '{operator}' is not supported because the required parameters might be missing. Try adding "
        "$count=true query parameter and ConsistencyLevel:eventual header. Refer to "
        "https://aka.ms/graph-docs/advanced-queries for more information"
    )
    assert error_of(reader.get(f"/users?$filter={flt}")) == (400, "Request_UnsupportedQuery", message)
    assert error_of(reader.get(f"/users?$filter={flt}", headers=EVENTUAL)) == (400, "Request_UnsupportedQuery", message)
    assert error_of(reader.get(f"/users?$filter={flt}&$count=true")) == (400, "Request_UnsupportedQuery", message)
    response = reader.get(f"/users?$filter={flt}&$count=true", headers=EVENTUAL)
    found = addresses(response)
    if expected is None:
        expected = [m.address for m in users if m.address not in (SALES, SUPPORT)]
        if operator == "ne":
            expected.append(SUPPORT)
    assert sorted(found) == sorted(expected)
    assert response.get_json()["@odata.count"] == len(expected)


@pytest.mark.parametrize(
    ("flt", "code", "message"),
    [
        (
            "accountEnabled eq true",
            "Request_UnsupportedQuery",
            "Unsupported or invalid query filter clause specified for property 'accountEnabled' of resource 'User'.",
        ),
        (
            "proxyAddresses/any(p:p eq 'smtp:x@y.z')",
            "Request_UnsupportedQuery",
            "Unsupported or invalid query filter clause specified for property 'proxyAddresses' of resource 'User'.",
        ),
        (
            "startswith(id,'3')",
            "Request_UnsupportedQuery",
            "Unsupported or invalid query filter clause specified for property 'id' of resource 'User'.",
        ),
        (
            "contains(mail,'a')",
            "Request_BadRequest",
            "Invalid filter clause: An unknown function with name 'contains' was found. This may also be a function "
            "import or a key lookup on a navigation property, which is not allowed.",
        ),
        ("mail eq", "Request_BadRequest", "Invalid filter clause: Expression expected at position 7 in 'mail eq'."),
        (
            "mail eq 'x",
            "Request_BadRequest",
            "Invalid filter clause: There is an unterminated string literal at position 10 in 'mail eq 'x'.",
        ),
        (
            "mail eq 5",
            "Request_BadRequest",
            "Invalid filter clause: A binary operator with incompatible types was detected. Found operand types "
            "'Edm.String' and 'Edm.Int32' for operator kind 'Equal'.",
        ),
        ("mail gt 'a'", "Request_BadRequest", "Invalid filter clause: Syntax error at position 5 in 'mail gt 'a''."),
        (
            "(mail eq 'a'",
            "Request_BadRequest",
            "Invalid filter clause: ')' or operator expected at position 12 in '(mail eq 'a''.",
        ),
    ],
)
def test_bad_filters(reader, flt, code, message):
    assert error_of(reader.get(f"/users?$filter={flt}")) == (400, code, message)


def test_count_needs_consistency_level(reader, users):
    """Entra ignores `$count=true` without the header (no @odata.count) and refuses the `$count` segment."""
    body = reader.get("/users?$count=true").get_json()
    assert "@odata.count" not in body and len(body["value"]) == len(users)
    counted = reader.get("/users?$count=true&$top=2", headers=EVENTUAL).get_json()
    assert counted["@odata.count"] == len(users) and len(counted["value"]) == 2
    assert list(counted)[:3] == ["@odata.context", "@odata.count", "@odata.nextLink"]
    assert error_of(reader.get("/users/$count")) == (400, "Request_BadRequest", "$count is not currently supported.")
    response = reader.get("/users/$count", headers=EVENTUAL)
    assert (response.status_code, response.content_type, response.get_data(as_text=True)) == (
        200,
        "text/plain",
        str(len(users)),
    )
    filtered = reader.get("/users/$count?$filter=startswith(mail,'s')", headers=EVENTUAL)
    assert filtered.get_data(as_text=True) == "2"
    ends = reader.get("/users/$count?$filter=endswith(mail,'les@contoso.onmicrosoft.com')", headers=EVENTUAL)
    assert ends.get_data(as_text=True) == "1"  # sales@; the $count segment stands for $count=true
    assert error_of(reader.get("/users/$count?$top=1", headers=EVENTUAL)) == (
        400,
        "Request_BadRequest",
        "'$top' is not supported by the service.",
    )


def test_search_with_consistency_level_is_refused_not_ignored(reader):
    response = reader.get('/users?$search="displayName:Sales"', headers=EVENTUAL)
    assert error_of(response) == (400, "Request_BadRequest", "'$search' is not supported by the service.")


@pytest.mark.parametrize("permissions", [["Mail.ReadWrite", "Mail.Send"], ["Mail.Read"], []])
def test_without_a_user_permission_the_directory_refuses(graph_as, permissions):
    app = graph_as(*permissions)
    assert error_of(app.get("/users")) == DENIED
    assert error_of(app.get(f"/users/{SUPPORT}")) == DENIED
    assert error_of(app.get("/users/nobody@contoso.onmicrosoft.com")) == DENIED  # permission before lookup
    assert error_of(app.get("/users/$count", headers=EVENTUAL)) == DENIED


def test_no_admin_consent_is_refused(graph_as):
    assert error_of(graph_as("User.Read.All", consent=False).get("/users")) == DENIED


def test_read_basic_gives_the_basic_profile_only(graph_as, tenant):
    basic = graph_as("User.ReadBasic.All")
    body = basic.get(f"/users/{SALES}?$select=displayName,mail,mailNickname,proxyAddresses,givenName").get_json()
    assert body["displayName"] == "Sales" and body["mail"] == SALES and body["givenName"] is None
    assert body["mailNickname"] is None and body["proxyAddresses"] == []
    listed = basic.get("/users").get_json()["value"]
    assert [list(u) for u in listed] == [DEFAULT_KEYS] * len(listed)
    both = graph_as("User.ReadBasic.All", "User.Read.All").get(f"/users/{SALES}?$select=mailNickname").get_json()
    assert both["mailNickname"] == "sales"


def test_exchange_access_policies_do_not_scope_the_directory(graph_as, admin, tenant):
    reader = graph_as("User.Read.All", "Mail.Read")
    app_id = next(a.app_id for a in tenant.applications.values() if a.display_name == "app User.Read.All+Mail.Read")
    admin.policy(app_id, GROUP)
    assert error_of(reader.get(f"/users/{SALES}/messages"))[:2] == (403, "ErrorAccessDenied")
    assert reader.get(f"/users/{SALES}").get_json()["mail"] == SALES
    assert SALES in addresses(reader.get("/users"))


def test_the_request_log_keeps_the_directory_decision(graph_as, admin):
    graph_as("User.Read.All").get("/users")
    graph_as("Mail.Read").get(f"/users/{SUPPORT}")
    granted, denied = admin.api.log()[-2:]
    assert (granted["path"], granted["status"], granted["operation"], granted["outcome"]) == (
        "/v1.0/users",
        200,
        "read directory",
        "granted",
    )
    assert granted["mailbox"] is None
    assert granted["decision"].startswith("granted: User.Read.All (Entra-consented)")
    assert (denied["status"], denied["outcome"], denied["error_code"]) == (403, "denied", "Authorization_RequestDenied")
    assert denied["decision"] == "denied: missing User.ReadBasic.All or User.Read.All"


def test_token_is_checked_first(client):
    response = client.get("/v1.0/users", base_url=BASE)
    assert error_of(response) == (401, "InvalidAuthenticationToken", "Access token is empty.")


@pytest.mark.parametrize("method", ["POST", "PATCH", "DELETE"])
def test_users_are_read_only_here(reader, method):
    path = "/users" if method == "POST" else f"/users/{SUPPORT}"
    assert error_of(reader.request(method, path, json={}))[:2] == (405, "Request_BadRequest")


def test_mailbox_routes_under_a_user_are_unchanged(graph, reader):
    assert graph.get(f"/users/{SUPPORT}/messages").status_code == 200
    assert error_of(reader.get(f"/users/{SUPPORT}/messages")) == (
        403,
        "ErrorAccessDenied",
        "Access is denied. Check credentials and try again.",
    )
