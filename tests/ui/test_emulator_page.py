"""The dashboard's Emulator page: the clock, settings and fault rules changed through the control API from the
page, the throttling windows, the connection facts and the CA certificate to download."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
import requests
from markupsafe import escape

from tests.helpers import ADMIN_KEY, SUPPORT

UI = "/_m365/ui"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"


# ---------------------------------------------------------------- in process


def test_an_emulator_without_tls_has_no_ca_to_download(ui):
    answer = ui.get(f"{UI}/emulator/ca.pem")
    assert answer.status_code == 404
    assert "This emulator serves plain HTTP: it has no CA certificate." in answer.get_data(as_text=True)
    page = ui.get(f"{UI}/emulator").get_data(as_text=True)
    assert 'id="no-ca"' in page and "ca-download" not in page


def test_the_ca_download_is_the_emulators_ca_file(ui, emulator, tmp_path):
    emulator.ca_file = tmp_path / "ca.pem"
    emulator.ca_file.write_bytes(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    answer = ui.get(f"{UI}/emulator/ca.pem")
    assert answer.status_code == 200 and answer.data == emulator.ca_file.read_bytes()
    assert answer.headers["Content-Disposition"] == "attachment; filename=m365-mock-ca.pem"
    emulator.ca_file.unlink()
    assert ui.get(f"{UI}/emulator/ca.pem").status_code == 404


def test_the_page_shows_fault_rules_with_their_counters_and_throttling_windows(ui, admin, graph):
    admin.api.add_fault("throttle", id="slow-support", mailbox=SUPPORT, times=2)
    assert graph.get(f"/users/{SUPPORT}/messages").status_code == 429
    assert graph.get(f"/users/{SUPPORT}/mailFolders").status_code == 429
    assert graph.get(f"/users/{SUPPORT}/messages").status_code == 200
    page = ui.get(f"{UI}/emulator").get_data(as_text=True)
    row = page.split('<tr data-fault="slow-support">', 1)[1].split("</tr>", 1)[0]
    cells = [cell.split(">", 1)[1].split("</td>", 1)[0] for cell in row.split("<td")[1:]]
    assert cells[1:7] == [
        f"mailbox {SUPPORT}",
        "at most 2 times",
        "throttle (429 TooManyRequests), Retry-After 2",
        "3",
        "2",
        "0",
    ]
    assert '<span class="badge">spent</span>' in cells[0]
    assert 'data-control="DELETE /_m365/faults/slow-support"' in row
    windows = page.split('id="window-rows"', 1)[1].split("</table>", 1)[0]
    assert f"<td>{SUPPORT}</td>" in windows and "Contact Center Connector" in windows


def test_the_settings_form_offers_every_throttling_limit_the_control_api_takes():
    from m365_mock.control.routes import THROTTLING_FIELDS
    from m365_mock.ui.emulator_page import THROTTLING_LABELS

    assert {*THROTTLING_LABELS, "enabled", "concurrencyScope"} == set(THROTTLING_FIELDS)


def test_the_connection_facts_name_this_origin_and_the_apps_valid_secrets(client, tenant, demo_app):
    origin = {"base_url": "https://emulator.test:9443"}
    assert client.post(f"{UI}/login", data={"key": ADMIN_KEY}, **origin).status_code == 303
    page = client.get(f"{UI}/emulator", **origin).get_data(as_text=True)
    for value in (
        "https://emulator.test:9443",
        "https://emulator.test:9443/v1.0",
        "https://emulator.test:9443/_m365",
        "X-M365-Admin-Key",
        tenant.id,
        f"https://emulator.test:9443/{tenant.id}",
        f"https://emulator.test:9443/{tenant.id}/oauth2/v2.0/token",
        demo_app.app_id,
    ):
        assert f'data-copy="{escape(value)}"' in page, value
    [secret] = demo_app.secrets
    assert f"<code>{escape(secret.hint)}…</code>" in page
    assert f'data-copy="{escape(secret.value)}"' in page
    assert ADMIN_KEY not in page


# ---------------------------------------------------------------- in the browser


def graph_token(served) -> str:
    app = served.app
    return requests.post(
        served.tenant["token_endpoint"],
        data={
            "client_id": app["app_id"],
            "client_secret": app["client_secret"],
            "grant_type": "client_credentials",
            "scope": GRAPH_SCOPE,
        },
        verify=served.ca_file,
        timeout=30,
    ).json()


def page_time(dashboard) -> datetime:
    return datetime.fromisoformat(dashboard.locator("#clock-now").inner_text().replace("Z", "+00:00"))


@pytest.mark.slow
def test_the_clock_freezes_and_advances_from_the_page(dashboard, api, ui_url):
    dashboard.goto(ui_url + "/emulator")
    assert dashboard.locator("#clock-state").inner_text() == "running"
    dashboard.click("#freeze button")
    dashboard.locator("#clock-state", has_text="frozen").wait_for()
    frozen = page_time(dashboard)
    assert api.time() == {"now": dashboard.locator("#clock-now").inner_text(), "frozen": True}
    dashboard.fill("#advance input[name=advance]", "86400")
    dashboard.click("#advance button")
    dashboard.locator("#clock-now", has_text=(frozen + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")).wait_for()
    assert page_time(dashboard) - frozen == timedelta(days=1)
    assert api.time()["now"] == dashboard.locator("#clock-now").inner_text()

    dashboard.fill("#advance input[name=advance]", "1e12")
    dashboard.click("#advance button")
    refused = api.response("POST", "/time", {"advance": 1e12}).json()["error"]
    result = dashboard.locator("#advance .form-result.error")
    assert result.inner_text() == f"{refused['code']}: {refused['message']}"
    assert api.time()["now"] == dashboard.locator("#clock-now").inner_text()

    dashboard.click("#resume button")
    dashboard.locator("#clock-state", has_text="running").wait_for()
    assert api.time()["frozen"] is False


@pytest.mark.slow
def test_a_setting_changed_on_the_page_takes_effect(dashboard, api, served, ui_url):
    dashboard.goto(ui_url + "/emulator")
    dashboard.fill("input[name=tokenLifetime]", "900")
    dashboard.uncheck("input[name='throttling.enabled']")
    dashboard.click("#settings-form button[type=submit]")
    dashboard.wait_for_load_state()
    dashboard.locator("input[name=tokenLifetime][value='900']").wait_for()
    settings = api.settings()
    assert settings["tokenLifetime"] == 900 and settings["throttling"]["enabled"] is False
    assert graph_token(served)["expires_in"] == 900


@pytest.mark.slow
def test_a_fault_rule_added_on_the_page_answers_graph_until_removed(dashboard, api, served, ui_url):
    messages = f"{served.base_url}/v1.0/users/{SUPPORT}/messages"
    dashboard.goto(ui_url + "/emulator")
    form = dashboard.locator("#add-fault")
    form.locator("select[name=preset]").select_option("service-unavailable")
    form.locator("input[name=status]").fill("500")
    form.locator("button[type=submit]").click()
    assert form.locator(".form-result.error").inner_text().startswith("InvalidField: ")
    assert api.faults() == []

    form.locator("input[name=status]").fill("")
    form.locator("input[name=path]").fill("/v1.0/users/*/messages")
    form.locator("button[type=submit]").click()
    dashboard.locator("#fault-rows").wait_for()
    [rule] = api.faults()
    assert rule["preset"] == "service-unavailable" and rule["path"] == "/v1.0/users/*/messages"
    answer = requests.get(messages, verify=served.ca_file, timeout=10)
    assert answer.status_code == 503 and answer.json()["error"]["code"] == "serviceNotAvailable"

    dashboard.reload()
    row = dashboard.locator(f"tr[data-fault='{rule['id']}']")
    assert row.locator("td").nth(4).inner_text() == "1"
    row.locator("button").click()
    dashboard.locator("#no-faults").wait_for()
    assert api.faults() == []
    assert requests.get(messages, verify=served.ca_file, timeout=10).status_code == 401


@pytest.mark.slow
def test_the_ca_download_is_the_served_ca_file(dashboard, served, ui_url):
    dashboard.goto(ui_url + "/emulator")
    with dashboard.expect_download() as download:
        dashboard.click("#ca-download")
    assert download.value.suggested_filename == "m365-mock-ca.pem"
    assert Path(download.value.path()).read_bytes() == Path(served.ca_file).read_bytes()
