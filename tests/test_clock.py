"""The clock tests use to expire secrets and tokens without sleeping."""

from __future__ import annotations

import time

import pytest

from m365_mock.clock import Clock, microseconds


def test_runs_with_real_time_by_default():
    assert abs(Clock().now() - time.time()) < 1


def test_freeze_and_advance():
    clock = Clock()
    clock.freeze(1_000)
    assert clock.now() == 1_000 and clock.frozen
    clock.advance(60)
    assert clock.now() == 1_060


def test_advance_while_running_shifts_time():
    clock = Clock()
    clock.advance(3600)
    assert 3599 < clock.now() - time.time() < 3601


def test_resume_continues_from_the_frozen_instant():
    clock = Clock()
    clock.freeze(time.time() + 86_400)
    clock.resume()
    assert not clock.frozen
    assert 86_399 < clock.now() - time.time() < 86_401


def test_reset_returns_to_real_time():
    clock = Clock()
    clock.freeze(1_000)
    clock.advance(50)
    clock.reset()
    assert not clock.frozen and abs(clock.now() - time.time()) < 1


def test_ids_differ_in_a_forked_child():
    """Identifiers come from a fast seeded generator; a fork reseeds it, so a worker never repeats its parent."""
    import os

    from m365_mock.ids import new_uuid

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(write, new_uuid().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    assert child != new_uuid() and len(child) == 36 and child[14] == "4"


def test_instants_are_written_with_four_digit_years_and_read_back():
    from datetime import UTC, datetime

    from m365_mock.clock import iso_exact, iso_z
    from m365_mock.state.mailstate import MailStateError, parse_time

    early = datetime(159, 7, 29, 23, 24, 50, tzinfo=UTC)
    assert iso_z(early) == "0159-07-29T23:24:50Z"
    assert parse_time(iso_z(early), "x") == early
    assert iso_exact(datetime(2026, 5, 1, 8, 0, 0, 250_000, tzinfo=UTC)) == "2026-05-01T08:00:00.25Z"
    with pytest.raises(MailStateError, match="outside the times the emulator can keep"):
        parse_time("0001-01-01T00:00:00+01:00", "sent")


def test_the_clock_names_one_instant_in_every_form():
    clock = Clock()
    for fraction in (0.1234567, 0.0000005, 0.9999996, 0.5):
        clock.freeze(1_750_000_000 + fraction)
        assert clock.now_datetime().timestamp() == clock.now()
        assert microseconds(clock.now_datetime()) == microseconds(clock.now()) == clock.now_microseconds()


def test_secrets_policies_and_tokens_made_at_a_frozen_fractional_instant_work_there(app, admin, emulator):
    """A secret made at the frozen instant starts at that instant: never a microsecond after it."""
    from tests.identity.helpers import GRAPH_SCOPE, post_token

    client = app.test_client()
    tenant = emulator.directory.tenants[0]
    demo = next(iter(tenant.applications.values()))
    refused = []
    for n in range(40):
        admin.api.freeze(f"2026-03-0{1 + n % 9}T10:00:{n % 60:02d}.{(n * 7919) % 1_000_000:06d}Z")
        emulator.clock.freeze(emulator.clock.now() + (n % 10) * 1e-7)  # also between microseconds
        secret = admin.api.add_secret(demo.app_id)
        admin.policy(demo.app_id, "cctr_sec_group@contoso.onmicrosoft.com")
        response = post_token(
            client,
            tenant.id,
            client_id=demo.app_id,
            client_secret=secret["value"],
            grant_type="client_credentials",
            scope=GRAPH_SCOPE,
        )
        if response.status_code != 200:
            refused.append((n, response.get_json()["error_codes"]))
    assert refused == []
