"""The Access page: the app x mailbox matrix (THE access decision, as the request log states it), the rules behind
it, and policies added and removed from the page through the control API."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest
import requests

from m365_mock.ui import access as access_page
from tests.helpers import DENIED, GROUP, RAOP, SALES, SUPPORT

READER_SCOPE = "Contact centre"


class Page(HTMLParser):
    """The matrix cells (`td[data-app]`: attributes and text) and the text of every table row, by row id."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.cells: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.rows: dict[str, str] = {}
        self.text: list[str] = []
        self._cell: dict[str, Any] | None = None
        self._row: tuple[str, list[str]] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "td" and "data-app" in found:
            self._cell = {**found, "text": []}
            key = (found["data-app"] or "", found["data-mailbox"] or "", found["data-operation"] or "")
            self.cells[key] = self._cell
        elif tag == "tr" and ("data-policy" in found or "data-assignment" in found):
            self._row = (found.get("data-policy") or found.get("data-assignment") or "", [])

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self._cell["text"] = " ".join(" ".join(self._cell["text"]).split())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows[self._row[0]] = " ".join(" ".join(self._row[1]).split())
            self._row = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell["text"].append(data)
        if self._row is not None:
            self._row[1].append(data)

    def cell(self, app_id: str, mailbox: str, operation: str = "read") -> dict[str, Any]:
        return self.cells[(app_id, mailbox, operation)]

    @property
    def all_text(self) -> str:
        return " ".join(" ".join(self.text).split())


def open_page(client, query: str = "") -> Page:
    answer = client.get("/_m365/ui/access" + query)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return Page(answer.get_data(as_text=True))


def last_decision(admin) -> tuple[int, str]:
    [record] = admin.api.log(limit=1)
    return record["status"], record["decision"]


def test_the_matrix_shows_rbac_grants_and_a_policy_still_propagating(ui, admin, graph, demo_app):
    reader = admin.api.add_application("RBAC Reader", [])
    admin.api.add_service_principal(reader)
    admin.api.add_management_scope(READER_SCOPE, "MemberOfGroup -eq 'cctr_sec_group'")
    assignment = admin.api.add_role_assignment("Application Mail.Read", reader, scope=READER_SCOPE)
    admin.api.update_settings(propagationDelay=600)
    policy = admin.policy(demo_app.app_id, GROUP)
    when = policy["effective_from"]

    page = open_page(ui)
    rbac_read = page.cell(reader["app_id"], SUPPORT)
    assert rbac_read["class"] == "cell cell-granted"
    assert rbac_read["title"] == (
        f"granted: Mail.Read by RBAC role 'Application Mail.Read' ({assignment['name']}) over scope '{READER_SCOPE}'"
    )
    assert page.cell(reader["app_id"], SUPPORT, "send")["title"] == "denied: missing Mail.Send"
    outside = page.cell(reader["app_id"], SALES)
    assert outside["title"] == "denied: the token has no roles (no admin consent?)"
    assert outside["text"].endswith(f"Graph 403 ErrorAccessDenied: {DENIED}")

    pending = page.cell(demo_app.app_id, SALES)
    assert pending["class"] == "cell cell-pending"
    assert pending["text"].startswith(f"granted now; denied from {when} ")
    assert pending["title"] == (
        "granted: Mail.ReadWrite (Entra-consented); no application access policy applies to the app\n"
        f"from {when}: denied: RestrictAccess policies limit the app to cctr_sec_group; {SALES} is in none"
    )
    inside = page.cell(demo_app.app_id, SUPPORT)
    assert inside["class"] == "cell cell-granted", "the reason changes from then on, the answer does not"
    assert page.rows[policy["id"]].startswith(f"{policy['id']} Contact Center Connector RestrictAccess cctr_sec_group")
    assert f"pending: in force from {when} Remove" in page.rows[policy["id"]]
    assert page.rows[assignment["name"]] == (
        f"{assignment['name']} Application Mail.Read Mail.Read RBAC Reader {READER_SCOPE} in force"
    )
    assert f"RBAC Reader {reader['app_id']} {reader['service_principal_id']}" in page.all_text
    assert f"{READER_SCOPE} MemberOfGroup -eq 'cctr_sec_group'" in page.all_text

    # The cell says what the request log says of the daemon's request, now and once the policy is in force.
    assert graph.get(f"/users/{SALES}/messages").status_code == 200
    assert last_decision(admin) == (200, pending["title"].split("\n")[0])
    admin.advance(600)
    blocked = open_page(ui).cell(demo_app.app_id, SALES)
    assert blocked["class"] == "cell cell-denied"
    assert graph.get(f"/users/{SALES}/messages").status_code == 403
    assert last_decision(admin) == (403, blocked["title"])
    assert blocked["text"].endswith(f"Graph 403 ErrorAccessDenied: {RAOP}")


def test_a_removal_still_propagating_is_shown_after_its_scope_is_deleted(ui, admin, demo_app):
    admin.api.update_settings(propagationDelay=600)
    group = admin.api.add_group("night-shift@contoso.onmicrosoft.com", [SALES])
    policy = admin.policy(demo_app.app_id, group["address"], "DenyAccess")
    admin.advance(600)
    assert open_page(ui).cell(demo_app.app_id, SALES)["class"] == "cell cell-denied"
    admin.api.remove_access_policy(policy["id"])
    admin.api.remove_group(group["address"])

    page = open_page(ui)
    until = page.rows[policy["id"]].rpartition("in force until ")[2]
    assert page.rows[policy["id"]] == (
        f"{policy['id']} Contact Center Connector DenyAccess night-shift (deleted, 0 mailboxes) "
        f"{policy['description']} in force until {until}"
    ), "listed without a Remove button: it is removed already"
    sales = page.cell(demo_app.app_id, SALES)
    assert sales["class"] == "cell cell-granted"
    assert sales["title"] == "granted: Mail.ReadWrite (Entra-consented); no DenyAccess policy covers the mailbox"


def test_mailboxes_come_in_pages_and_wrong_queries_are_refused(ui, monkeypatch, tenant):
    monkeypatch.setattr(access_page, "MAILBOXES_PER_PAGE", 3)
    addresses = [m.address for m in tenant.mailboxes.values()]
    assert len(addresses) == 7
    first = open_page(ui)
    assert sorted({key[1] for key in first.cells}) == sorted(addresses[:3])
    assert "mailboxes page 1 of 3 Next" in first.all_text
    last = open_page(ui, f"?tenant={tenant.default_domain}&page=3")
    assert {key[1] for key in last.cells} == {addresses[6]}
    for query, status, text in [
        ("?page=4", 400, "There is no page &#39;4&#39; of mailboxes: pages run from 1 to 3."),
        ("?page=x", 400, "There is no page &#39;x&#39; of mailboxes"),
        ("?page=%C2%B2", 400, "There is no page &#39;²&#39; of mailboxes"),
        ("?tenant=fabrikam.example", 404, "This emulator has no tenant &#39;fabrikam.example&#39;."),
        ("?tennant=x", 400, "does not take the query parameter &#39;tennant&#39;; it takes tenant, page."),
    ]:
        answer = ui.get("/_m365/ui/access" + query)
        assert answer.status_code == status and text in answer.get_data(as_text=True), query


# ---------------------------------------------------------------- in the browser, against the served emulator


def daemon_read(served, token: str, mailbox: str) -> tuple[int, str | None]:
    answer = requests.get(
        f"{served.base_url}/v1.0/users/{mailbox}/messages?$top=1",
        headers={"Authorization": f"Bearer {token}"},
        verify=served.ca_file,
        timeout=30,
    )
    return answer.status_code, answer.json()["error"]["code"] if answer.status_code >= 400 else None


def app_token(served, app: dict[str, Any]) -> str:
    answer = requests.post(
        served.tenant["token_endpoint"],
        data={
            "client_id": app["app_id"],
            "client_secret": app["secrets"][0]["value"],
            "grant_type": "client_credentials",
            "scope": "https://graph.microsoft.com/.default",
        },
        verify=served.ca_file,
        timeout=30,
    )
    return answer.json()["access_token"]


@pytest.mark.slow
def test_a_policy_added_and_removed_on_the_page_changes_the_matrix_and_the_daemon(dashboard, api, served, ui_url):
    from playwright.sync_api import expect

    api.update_settings(propagationDelay=0)
    invoices = api.add_application("Invoice Reader", ["Mail.Read"])
    stale = api.add_group("stale@contoso.onmicrosoft.com", [SALES])
    token = app_token(served, invoices)
    demo_id = served.app["app_id"]
    assert daemon_read(served, token, SALES) == (200, None)

    def cell(app_id: str, mailbox: str) -> Any:
        return dashboard.locator(f'td[data-app="{app_id}"][data-mailbox="{mailbox}"][data-operation="read"]')

    dashboard.goto(ui_url + "/access")
    blocked = cell(demo_id, SALES)
    expect(blocked).to_have_class("cell cell-denied")
    assert blocked.get_attribute("title").startswith("denied: RestrictAccess policies limit the app to cctr_sec_group")
    blocked.locator("summary").click()
    expect(blocked.locator(".answer")).to_have_text(f"403 ErrorAccessDenied: {RAOP}")
    expect(cell(invoices["app_id"], SALES)).to_have_class("cell cell-granted")

    form = dashboard.locator("#add-policy")
    form.locator("select[name=app_id]").select_option(invoices["app_id"])
    form.locator("select[name=scope]").select_option(GROUP)
    form.locator("button[type=submit]").click()
    outside = cell(invoices["app_id"], SALES)
    expect(outside).to_have_class("cell cell-denied")
    [policy] = [p for p in api.access_policies() if p["app_id"] == [invoices["app_id"]]]
    assert outside.get_attribute("title") == (
        f"denied: RestrictAccess policies limit the app to cctr_sec_group; {SALES} is in none"
    )
    assert cell(invoices["app_id"], SUPPORT).get_attribute("title") == (
        f"granted: Mail.Read (Entra-consented); RestrictAccess policy {policy['id']} matches via cctr_sec_group"
    )
    assert daemon_read(served, token, SALES) == (403, "ErrorAccessDenied")
    assert daemon_read(served, token, SUPPORT) == (200, None)

    api.remove_group(stale["address"])  # the page still offers it: the control API refuses it
    form.locator("select[name=scope]").select_option(stale["address"])
    form.locator("button[type=submit]").click()
    expect(form.locator(".form-result.error")).to_have_text(
        re.compile(r"^NotFound: The operation couldn't be performed because object 'stale@contoso\.onmicrosoft\.com'")
    )

    dashboard.once("dialog", lambda dialog: dialog.accept())
    dashboard.locator(f'tr[data-policy="{policy["id"]}"] button').click()
    expect(cell(invoices["app_id"], SALES)).to_have_class("cell cell-granted")
    assert daemon_read(served, token, SALES) == (200, None)
