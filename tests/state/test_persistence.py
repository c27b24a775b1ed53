"""Mail as records and back, exactly; the world file written in the background and read back."""

from __future__ import annotations

import base64
import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from m365_mock.state.directory import Mailbox
from m365_mock.state.mailstate import MailStateError, dump_mail, exact_time, parse_time, restore_mail
from m365_mock.state.mailstore import MailStore, OutboundMail, recipient
from m365_mock.state.mailstore.attachments import file_attachment
from m365_mock.state.persistence import Persistence, PersistenceError, WorldFile
from m365_mock.state.tenantfile import load_demo_world

NOW = datetime(2026, 5, 1, 8, 0, 0, tzinfo=UTC)
TENANT = "1da1fa86-3650-5d52-a52e-e15fae9dd210"


def mailbox(address: str = "support@contoso.onmicrosoft.com", box_id: str = "0f8fad5b-d9cb-469f-a165-70867728950e"):
    return Mailbox(id=box_id, address=address, display_name="Support", kind="shared", tenant_id=TENANT)


def busy_mailbox(mail: MailStore, box: Mailbox):
    """A mailbox that has seen some life: a child folder, moved, read, flagged mail, an attachment, microseconds."""
    store = mail.store(box)
    cases = store.create_folder(store.root, "Cases", is_hidden=False)
    store.create_folder(cases, "Closed", is_hidden=True)
    for i in range(5):
        store.add_message(
            store.well_known["inbox"],
            subject=f"Case {i}",
            body_type="text",
            body_content=f"Body {i} — ünïcode",
            from_=recipient("ann@example.org", "Ann"),
            sender=recipient("ann@example.org", "Ann"),
            to=[recipient(box.address)],
            received=NOW + timedelta(minutes=i, microseconds=250_000 * i),
            sent=NOW,
            categories=["Red"] if i % 2 else [],
            attachments=[
                file_attachment("a.bin", bytes(range(256)), "application/pdf", modified=NOW)
            ]
            if i == 3
            else [],
            has_attachments=i == 3,
        )
    first = store.all.slice(0, 1)[0]
    store.update_message(first.id, lambda m: setattr(m, "is_read", True))
    store.move_message(store.all.slice(1, 2)[0].id, cases)
    store.delete_message(store.all.slice(2, 3)[0].id)
    return store


def test_exact_time_keeps_microseconds_and_writes_whole_seconds_briefly():
    assert exact_time(NOW) == "2026-05-01T08:00:00Z"
    moment = NOW + timedelta(microseconds=250_000)
    assert exact_time(moment) == "2026-05-01T08:00:00.25Z"
    assert parse_time(exact_time(moment), "x") == moment


def test_mail_written_out_and_read_back_is_the_same_mail():
    mail = MailStore(lambda: NOW)
    box = mailbox()
    store = busy_mailbox(mail, box)
    state = dump_mail(store)
    restored = restore_mail(box, lambda: NOW, json.loads(json.dumps(state)), "mail")
    assert dump_mail(restored) == state
    assert restored.counts() == store.counts()
    assert [m.id for m in restored.all.slice(0, 10)] == [m.id for m in store.all.slice(0, 10)]
    closed = restored.folder_by_name(restored.folder_by_name(restored.root, "Cases"), "Closed")
    assert closed is not None and closed.is_hidden
    attached = next(m for m in restored.immutable.values() if m.attachments)
    assert attached.attachments[0].content == bytes(range(256))
    new = restored.add_message(restored.well_known["inbox"], subject="after")
    assert new.seq == state["next_seq"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s["folders"].pop(0), "mail.folders[0].parent: no folder"),
        (lambda s: s["messages"][0].update(folder=s["folders"][1]["id"][:-4] + "AAAA"), "mail.messages[0].folder"),
        (lambda s: s["messages"][1].update(id=s["messages"][0]["id"]), "mail.messages[1]: its id or immutable id"),
        (lambda s: s["messages"][0].update(id="not-an-id"), "mail.messages[0].id: 'not-an-id' is not a message id"),
        (lambda s: s["messages"][0].update(received="yesterday"), "mail.messages[0].received: 'yesterday'"),
        (lambda s: s.update(next_seq=2), "mail.messages[1].seq: 2 is not below next_seq 2"),
    ],
)
def test_broken_mail_state_names_the_place(change, message):
    state = dump_mail(busy_mailbox(MailStore(lambda: NOW), mailbox()))
    change(state)
    with pytest.raises(MailStateError) as refused:
        restore_mail(mailbox(), lambda: NOW, state, "mail")
    assert str(refused.value).startswith(message)


def demo_persistence(path: Path, mail: MailStore) -> tuple[Persistence, dict]:
    world = load_demo_world()
    described = {"tenants": [{"id": TENANT, "mailboxes": [{"id": mailbox().id, "address": mailbox().address}]}]}
    persistence = Persistence(
        WorldFile(path),
        mail,
        describe_world=lambda: described,
        world_version=lambda: (len(world.directory.tenants),),
        interval=3600,
    )
    return persistence, described


def test_changes_are_written_and_read_back(tmp_path):
    mail = MailStore(lambda: NOW)
    persistence, _ = demo_persistence(tmp_path / "world.sqlite", mail)
    persistence.start()
    store = busy_mailbox(mail, mailbox())
    persistence.flush()
    mail.store(mailbox()).add_message(store.well_known["inbox"], subject="late arrival")
    persistence.close()

    kept = WorldFile(tmp_path / "world.sqlite").read()
    state = kept["tenants"][0]["mailboxes"][0]["mail"]
    assert state == json.loads(json.dumps(dump_mail(store)))
    assert [m["subject"] for m in state["messages"]][-1] == "late arrival"


def test_a_reset_rewrites_everything_and_dropped_mailboxes_go(tmp_path):
    mail = MailStore(lambda: NOW)
    persistence, described = demo_persistence(tmp_path / "world.sqlite", mail)
    persistence.start()
    busy_mailbox(mail, mailbox())
    other = mailbox("sales@contoso.onmicrosoft.com", "1f8fad5b-d9cb-469f-a165-70867728950e")
    mail.store(other)
    persistence.flush()
    mail.forget(other)
    persistence.flush()
    file = WorldFile(tmp_path / "world.sqlite")
    assert file._db.execute("SELECT COUNT(*) FROM folders WHERE mailbox = ?", (other.id,)).fetchone() == (0,)
    mail.reset()
    persistence.close()
    assert file._db.execute("SELECT COUNT(*) FROM messages").fetchone() == (0,)
    assert "mail" not in WorldFile(tmp_path / "world.sqlite").read()["tenants"][0]["mailboxes"][0]
    assert described["tenants"][0]["id"] == TENANT


def test_nothing_is_lost_when_a_write_fails(tmp_path, monkeypatch):
    mail = MailStore(lambda: NOW)
    persistence, _ = demo_persistence(tmp_path / "world.sqlite", mail)
    persistence.start()
    store = busy_mailbox(mail, mailbox())
    real_write = persistence.file.write

    def failing(batch):
        raise PersistenceError("disk full")

    monkeypatch.setattr(persistence.file, "write", failing)
    with pytest.raises(PersistenceError):
        persistence.flush()
    monkeypatch.setattr(persistence.file, "write", real_write)
    persistence.close()
    kept = WorldFile(tmp_path / "world.sqlite").read()["tenants"][0]["mailboxes"][0]["mail"]
    assert kept == json.loads(json.dumps(dump_mail(store)))


def test_concurrent_deliveries_are_all_kept(tmp_path):
    mail = MailStore(lambda: NOW)
    persistence, _ = demo_persistence(tmp_path / "world.sqlite", mail)
    persistence.interval = 0.01
    persistence.start()
    box = mailbox()
    store = mail.store(box)

    def deliver(n: int) -> None:
        for i in range(200):
            store.add_message(store.well_known["inbox"], subject=f"{n}-{i}")

    threads = [threading.Thread(target=deliver, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    persistence.close()
    kept = WorldFile(tmp_path / "world.sqlite").read()["tenants"][0]["mailboxes"][0]["mail"]
    subjects = sorted(m["subject"] for m in kept["messages"])
    assert subjects == sorted(f"{n}-{i}" for n in range(4) for i in range(200))
    assert kept["next_seq"] == 801


def test_a_world_file_of_another_format_is_refused(tmp_path):
    file = WorldFile(tmp_path / "world.sqlite")
    file._db.execute("INSERT INTO meta VALUES ('format', '99')")
    file.close()
    with pytest.raises(PersistenceError, match="written in format 99"):
        WorldFile(tmp_path / "world.sqlite")


def test_a_file_that_is_not_a_database_is_refused(tmp_path):
    (tmp_path / "world.sqlite").write_bytes(base64.b64encode(b"garbage" * 200))
    with pytest.raises(PersistenceError, match="cannot open the world file"):
        WorldFile(tmp_path / "world.sqlite")


def outbound_mail(subject: str) -> OutboundMail:
    return OutboundMail(
        NOW, "support@contoso.onmicrosoft.com", ["a@example.org"], subject, "text", "", "<x@y>", [], [], []
    )


def test_an_adopted_store_is_written_whole_even_after_a_rewrite_ran_before_it(tmp_path):
    """Import and reset put restored stores in place after the journal's rewrite may already have run."""
    mail = MailStore(lambda: NOW)
    persistence, _ = demo_persistence(tmp_path / "world.sqlite", mail)
    persistence.start()
    state = dump_mail(busy_mailbox(MailStore(lambda: NOW), mailbox()))
    mail.reset()
    persistence.flush()  # the rewrite, with the store not there yet
    mail.adopt(restore_mail(mailbox(), lambda: NOW, state, "mail"))
    store = mail.store(mailbox())
    store.add_message(store.well_known["inbox"], subject="after the adoption")
    persistence.close()
    kept = WorldFile(tmp_path / "world.sqlite").read()["tenants"][0]["mailboxes"][0]["mail"]
    assert kept == json.loads(json.dumps(dump_mail(store)))
    assert restore_mail(mailbox(), lambda: NOW, kept, "mail").counts() == store.counts()


def test_text_a_client_sent_with_a_lone_surrogate_does_not_stop_the_writer(tmp_path):
    mail = MailStore(lambda: NOW)
    persistence, _ = demo_persistence(tmp_path / "world.sqlite", mail)
    persistence.start()
    store = mail.store(mailbox())
    store.add_message(store.well_known["inbox"], subject="bad \ud800 subject")
    persistence.flush()
    store.add_message(store.well_known["inbox"], subject="good later")
    persistence.close()
    kept = WorldFile(tmp_path / "world.sqlite").read()["tenants"][0]["mailboxes"][0]["mail"]
    assert [m["subject"] for m in kept["messages"]] == ["bad \ud800 subject", "good later"]


def test_outbound_mail_caught_during_a_rewrite_is_kept_once(tmp_path):
    mail = MailStore(lambda: NOW)
    persistence, described = demo_persistence(tmp_path / "world.sqlite", mail)
    sent_during = [False]

    def describe() -> dict:
        if not sent_during[0]:
            sent_during[0] = True
            mail.restore_outbound([outbound_mail("sent during the rewrite")])
        return described

    persistence.describe_world = describe
    persistence.start()
    persistence.flush()
    persistence.close()
    kept = WorldFile(tmp_path / "world.sqlite").read()
    assert [m["subject"] for m in kept["outbound"]] == ["sent during the rewrite"]
