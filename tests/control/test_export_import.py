"""A world exported and imported again is the same world, mail and all; exporting it again gives the same bytes."""

from __future__ import annotations

import json

from m365_mock.app import create_app
from m365_mock.clock import Clock
from m365_mock.state.tenantfile import load_demo_world
from tests.conftest import shared_signing_key
from tests.helpers import ADMIN_KEY, BILLING, SUPPORT, Admin, GraphClient


def lived_in_emulator():
    """The demo tenant after a daemon has worked on it: read, moved, sent inside and out, a new folder."""
    app = create_app(load_demo_world(), signing_key=shared_signing_key(), clock=Clock(), admin_key=ADMIN_KEY)
    emulator = app.extensions["m365"]
    tenant = emulator.directory.tenants[0]
    demo = next(iter(tenant.applications.values()))
    graph = GraphClient(
        app.test_client(), emulator.issuer.issue(tenant, demo, "https://graph.microsoft.com", "1").access_token
    )
    inbox = graph.get(f"/users/{SUPPORT}/mailFolders/inbox/messages?$top=3").get_json()["value"]
    graph.patch(f"/users/{SUPPORT}/messages/{inbox[0]['id']}", json={"isRead": True, "categories": ["Done"]})
    folder = graph.post(f"/users/{SUPPORT}/mailFolders", json={"displayName": "Processed"}).get_json()
    graph.post(f"/users/{SUPPORT}/messages/{inbox[1]['id']}/move", json={"destinationId": folder["id"]})
    message = {
        "subject": "Re: your order",
        "body": {"contentType": "text", "content": "On its way."},
        "toRecipients": [{"emailAddress": {"address": "adele.vance@fabrikam.example"}}],
        "ccRecipients": [{"emailAddress": {"address": BILLING}}],
        "attachments": [
            {
                "@odata.type": "#microsoft.graph.fileAttachment",
                "name": "label.pdf",
                "contentType": "application/pdf",
                "contentBytes": "JVBERi0xLjQK",
            }
        ],
    }
    assert graph.post(f"/users/{SUPPORT}/sendMail", json={"message": message}).status_code == 202
    return app, graph


def test_export_import_export_gives_the_same_bytes_and_the_same_mail():
    app, graph = lived_in_emulator()
    admin = Admin(app.test_client())
    first = admin.call("GET", "/_m365/export", expect=200).get_data()
    exported = json.loads(first)
    support = next(m for m in exported["tenants"][0]["mailboxes"] if m["address"] == SUPPORT)
    assert {f["display_name"] for f in support["mail"]["folders"]} >= {"Inbox", "Processed", "Sent Items"}
    assert exported["outbound"][0]["recipients"] == ["adele.vance@fabrikam.example"]
    before = {
        box: graph.get(f"/users/{box}/messages?$top=100&$orderby=receivedDateTime desc").get_json()["value"]
        for box in (SUPPORT, BILLING)
    }

    fresh = create_app(load_demo_world(), signing_key=shared_signing_key(), clock=Clock(), admin_key=ADMIN_KEY)
    fresh_admin = Admin(fresh.test_client())
    fresh_admin.call("POST", "/_m365/import", exported, expect=200)
    second = fresh_admin.call("GET", "/_m365/export", expect=200).get_data()

    assert second == first
    fresh_graph = GraphClient(fresh.test_client(), graph.token)
    for box, messages in before.items():
        again = fresh_graph.get(f"/users/{box}/messages?$top=100&$orderby=receivedDateTime desc").get_json()["value"]
        assert again == messages
    assert (
        fresh_admin.call("GET", "/_m365/outbound", expect=200).get_json()
        == admin.call("GET", "/_m365/outbound", expect=200).get_json()
    )


def test_importing_broken_mail_names_the_place_and_changes_nothing():
    app, _ = lived_in_emulator()
    admin = Admin(app.test_client())
    before = admin.call("GET", "/_m365/export", expect=200).get_data()
    exported = json.loads(before)
    support = next(m for m in exported["tenants"][0]["mailboxes"] if m["address"] == SUPPORT)
    support["mail"]["messages"][2]["folder"] = support["mail"]["folders"][0]["id"][:-6] + "AAAAAA"
    refused = admin.call("POST", "/_m365/import", exported, expect=400).get_json()["error"]
    assert refused["code"] == "InvalidTenantFile"
    assert refused["message"].startswith("tenants[0].mailboxes[0].mail.messages[2].folder: no folder")
    assert admin.call("GET", "/_m365/export", expect=200).get_data() == before


def test_an_imported_world_is_never_served_from_renderings_of_the_world_before():
    """Import keeps ids and change keys as the file has them; what was rendered before must not come back."""
    app, graph = lived_in_emulator()
    admin = Admin(app.test_client())
    listed = graph.get(f"/users/{SUPPORT}/mailFolders/inbox/messages?$top=50").get_json()["value"]
    exported = json.loads(admin.call("GET", "/_m365/export", expect=200).get_data())
    support = next(m for m in exported["tenants"][0]["mailboxes"] if m["address"] == SUPPORT)
    record = next(m for m in support["mail"]["messages"] if m["id"] == listed[0]["id"])
    record["subject"], record["read"] = "CHANGED BY IMPORT", not listed[0]["isRead"]
    admin.call("POST", "/_m365/import", exported, expect=200)
    again = graph.get(f"/users/{SUPPORT}/mailFolders/inbox/messages?$top=50").get_json()["value"]
    changed = next(m for m in again if m["id"] == listed[0]["id"])
    assert (changed["subject"], changed["isRead"]) == ("CHANGED BY IMPORT", not listed[0]["isRead"])
