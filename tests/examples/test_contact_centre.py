"""examples/contact_centre: the connector (MSAL + requests) does its work and behaves on the wire; the flawed
variant does the same work and shows each of its flaws in the request log."""

from __future__ import annotations

import hashlib
import random
import signal
import subprocess
from datetime import datetime

import pytest

from tests.examples.conftest import CONNECTOR, QUEUE, SALES, ContactCentre, python_daemon, run, until

pytestmark = pytest.mark.slow

PHOTO = random.Random("jam-photo").randbytes(48_213)
LOG_TEXT = b"2026-05-01 08:00 paper jam in tray 2\n" * 40


def graph_records(contact_centre: ContactCentre) -> list[dict]:
    return contact_centre.log(kind="graph")


def test_the_connector_answers_saves_and_files_a_customers_mail(contact_centre, tmp_path):
    contact_centre.deliver(QUEUE, "Printer jammed on floor 2", **{"jam-photo__jpg": PHOTO, "printer__log": LOG_TEXT})
    contact_centre.deliver(QUEUE, "Toner is empty", sender="carl@example.org")
    env = contact_centre.env(QUEUE_MAILBOX=QUEUE, ONCE="1", ATTACHMENTS_DIR=str(tmp_path / "saved"))

    result = run(python_daemon(), env, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert contact_centre.mail(QUEUE) == [
        ("Processed", "Printer jammed on floor 2", True),
        ("Processed", "Toner is empty", True),
    ]
    replies = [(m["recipients"], m["subject"]) for m in contact_centre.admin.outbound()]
    assert sorted(replies) == [
        (["ann.lee@example.org"], "RE: Printer jammed on floor 2"),
        (["carl@example.org"], "RE: Toner is empty"),
    ]
    assert ("Sent Items", "RE: Toner is empty", True) in contact_centre.mail(QUEUE, sent=True)
    saved = {path.name: path.read_bytes() for path in (tmp_path / "saved").rglob("*") if path.is_file()}
    assert saved == {"jam-photo.jpg": PHOTO, "printer.log": LOG_TEXT}
    assert f"saved jam-photo.jpg (48213 bytes, sha256 {hashlib.sha256(PHOTO).hexdigest()})" in result.stderr


def test_the_connector_takes_one_token_and_names_every_request(contact_centre, tmp_path):
    contact_centre.deliver(QUEUE, "Printer jammed", **{"photo__jpg": PHOTO})
    env = contact_centre.env(QUEUE_MAILBOX=QUEUE, ONCE="1", ATTACHMENTS_DIR=str(tmp_path))

    assert run(python_daemon(), env, cwd=tmp_path).returncode == 0

    [token] = contact_centre.log(kind="token")
    assert token["outcome"] == "issued"
    graph = graph_records(contact_centre)
    assert {r["mailbox"] for r in graph} == {QUEUE}
    assert all(r["client_request_id"] for r in graph)
    assert len({r["client_request_id"] for r in graph}) == len(graph), "one id per request"
    [listing] = [r for r in graph if "/messages/delta" in r["path"]]
    assert "%24select=" in listing["path"] and "%24top=25" in listing["path"]


def test_a_refused_mailbox_is_left_alone_after_its_first_403(contact_centre, tmp_path):
    contact_centre.deliver(QUEUE, "Printer jammed")
    contact_centre.deliver(SALES, "Quote for 40 chairs", sender="bob@fabrikam.example")
    env = contact_centre.env(QUEUE_MAILBOX=QUEUE, MAILBOXES=SALES, POLL_SECONDS="0.2", ATTACHMENTS_DIR=str(tmp_path))
    daemon = subprocess.Popen(
        python_daemon(), env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        until(lambda: ("Processed", "Printer jammed", True) in contact_centre.mail(QUEUE), what="the first answer")
        contact_centre.deliver(QUEUE, "Toner is empty", sender="carl@example.org")
        until(lambda: ("Processed", "Toner is empty", True) in contact_centre.mail(QUEUE), what="a later poll")
        polls = [r for r in graph_records(contact_centre) if r["mailbox"] == QUEUE and "/delta" in r["path"]]
        assert len(polls) >= 2
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=15)

    assert daemon.returncode == 0, err
    [refused] = [r for r in graph_records(contact_centre) if r["mailbox"] == SALES]
    assert (refused["status"], refused["error_code"], refused["outcome"]) == (403, "ErrorAccessDenied", "denied")
    assert f"access to {SALES} denied" in err and "leaving it alone" in err
    assert contact_centre.mail(SALES) == [("Inbox", "Quote for 40 chairs", False)]


def test_a_token_that_expires_while_it_runs_is_renewed_once(contact_centre, tmp_path):
    contact_centre.deliver(QUEUE, "Printer jammed")
    env = contact_centre.env(QUEUE_MAILBOX=QUEUE, POLL_SECONDS="0.2", ATTACHMENTS_DIR=str(tmp_path))
    daemon = subprocess.Popen(python_daemon(), env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        until(lambda: ("Processed", "Printer jammed", True) in contact_centre.mail(QUEUE), what="the first answer")
        contact_centre.admin.advance(2 * 3600)
        contact_centre.deliver(QUEUE, "Toner is empty", sender="carl@example.org")
        until(lambda: ("Processed", "Toner is empty", True) in contact_centre.mail(QUEUE), what="the answer after")
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=15)

    assert daemon.returncode == 0, err
    assert [r["outcome"] for r in contact_centre.log(kind="token")] == ["issued", "issued"]
    expired = [r for r in graph_records(contact_centre) if r["status"] == 401]
    assert [r["error_code"] for r in expired] == ["InvalidAuthenticationToken"]


def test_throttled_it_waits_as_long_as_retry_after_says(contact_centre, tmp_path):
    contact_centre.admin.update_settings(throttling={"mailboxRequests": 4, "mailboxWindow": 1})
    for subject in ("Printer jammed", "Toner is empty"):
        contact_centre.deliver(QUEUE, subject)
    env = contact_centre.env(QUEUE_MAILBOX=QUEUE, ONCE="1", ATTACHMENTS_DIR=str(tmp_path))

    assert run(python_daemon(), env, cwd=tmp_path).returncode == 0

    assert [folder for folder, _, _ in contact_centre.mail(QUEUE)] == ["Processed", "Processed"]
    assert len(contact_centre.admin.outbound()) == 2
    graph = graph_records(contact_centre)
    throttled = [i for i, r in enumerate(graph) if r["status"] == 429]
    assert throttled, "the limit was never reached"
    for i in throttled:
        wait = graph[i + 1]["time"], graph[i]["time"]
        waited = (datetime.fromisoformat(wait[0]) - datetime.fromisoformat(wait[1])).total_seconds()
        assert waited >= graph[i]["retry_after"], (graph[i], graph[i + 1])
        assert graph[i + 1]["path"] == graph[i]["path"]


def test_an_expired_secret_stops_it_with_the_error_and_status_1(contact_centre, tmp_path):
    contact_centre.admin.add_application("Night Shift Connector", ["Mail.ReadWrite"], secrets=0)
    contact_centre.admin.add_secret("Night Shift Connector", expires_in_days=1)
    contact_centre.admin.advance(2 * 86400)
    contact_centre.deliver(QUEUE, "Printer jammed")
    env = contact_centre.env("Night Shift Connector", QUEUE_MAILBOX=QUEUE, ONCE="1", ATTACHMENTS_DIR=str(tmp_path))

    result = run(python_daemon(), env, cwd=tmp_path)

    assert result.returncode == 1
    assert "cannot get a token from" in result.stderr and "AADSTS7000222" in result.stderr
    assert graph_records(contact_centre) == []
    assert contact_centre.mail(QUEUE) == [("Inbox", "Printer jammed", False)]


def test_without_its_configuration_it_says_what_is_missing(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "M365_MOCK_CLIENT_ID": "x"}
    result = run(python_daemon(), env, cwd=tmp_path)
    assert result.returncode == 2
    assert "missing configuration: M365_MOCK_AUTHORITY, M365_MOCK_CLIENT_SECRET, QUEUE_MAILBOX" in result.stderr


def test_the_flawed_connector_does_the_work_and_shows_each_flaw_in_the_log(contact_centre, tmp_path):
    contact_centre.deliver(QUEUE, "Printer jammed", **{"photo__jpg": PHOTO})
    contact_centre.deliver(SALES, "Quote for 40 chairs", sender="bob@fabrikam.example")
    env = contact_centre.env(QUEUE_MAILBOX=QUEUE, MAILBOXES=SALES, ONCE="1", ATTACHMENTS_DIR=str(tmp_path / "saved"))

    result = run(python_daemon("flawed_daemon.py"), env, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert contact_centre.mail(QUEUE) == [("Processed", "Printer jammed", True)]
    assert (tmp_path / "saved" / "photo.jpg").read_bytes() == PHOTO
    graph, tokens = graph_records(contact_centre), contact_centre.log(kind="token")
    assert len(tokens) == len(graph), "a token for every request"
    refused = [r for r in graph if r["mailbox"] == SALES]
    assert [r["status"] for r in refused] == [403] * 11, "the 403 tried again ten times"
    assert not any(r["client_request_id"] for r in graph)
    [listing] = [r for r in graph if r["path"].endswith(f"/users/{QUEUE}/mailFolders/inbox/messages")]
    assert listing["status"] == 200, "no $select, no $top"
    assert CONNECTOR in contact_centre.app()["display_name"]
