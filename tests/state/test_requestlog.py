"""The request log's bounds: by records and by estimated bytes, oldest first, with long paths cut short."""

from __future__ import annotations

import threading

import pytest

from m365_mock.state.access import Decision, Operation
from m365_mock.state.requestlog import (
    DEFAULT_MAX_BYTES,
    MAX_PATH_CHARS,
    LogRecord,
    RequestLog,
)

MAILBOX = "support@contoso.onmicrosoft.com"
APP = "11111111-2222-3333-4444-555555555555"


def record(n: int, path: str = "/v1.0/users/x/messages", *, allowed: bool | None = None) -> LogRecord:
    decision = None
    if allowed is not None:
        decision = Decision(allowed, Operation.READ, APP, MAILBOX, f"reason {n}")
    return LogRecord(
        at=float(n),
        request_id=f"00000000-0000-0000-0000-{n:012d}",
        method="GET",
        path=path,
        status=401 if allowed is None else (200 if allowed else 403),
        token=None,
        access=decision,
        error_code="InvalidAuthenticationToken" if allowed is None else None,
    )


def huge_path(n: int) -> str:
    return f"/v1.0/users/{n}/messages?$filter=" + "x" * (64 * 1024)


def test_a_long_path_is_cut_with_a_marker():
    kept = record(1, huge_path(1)).path
    assert kept.startswith("/v1.0/users/1/messages?$filter=xxx")
    omitted = len(huge_path(1)) - MAX_PATH_CHARS
    assert kept == huge_path(1)[:MAX_PATH_CHARS] + f"...[{omitted} more characters]"
    assert record(2, "/v1.0/users/x/messages?$top=5").path == "/v1.0/users/x/messages?$top=5"


def test_64_kb_paths_keep_the_log_under_its_byte_bound_and_the_newest_intact():
    bound = 256 * 1024
    log = RequestLog(capacity=100_000, max_bytes=bound)
    for n in range(2_000):
        log.append(record(n, huge_path(n), allowed=None if n % 3 else bool(n % 2)))
        assert log.estimated_bytes <= bound
    kept = log.query()
    assert 50 <= len(kept) < 2_000
    assert [r.at for r in kept] == [float(n) for n in range(2_000 - len(kept), 2_000)]  # the newest, in order
    newest = kept[-1]
    assert (newest.request_id, newest.status, newest.error_code) == (
        f"00000000-0000-0000-0000-{1999:012d}",
        401,
        "InvalidAuthenticationToken",
    )
    assert newest.path.startswith("/v1.0/users/1999/messages?$filter=") and newest.path.endswith("more characters]")
    assert sum(r.size for r in kept) == log.estimated_bytes


def test_the_default_bound_holds_a_full_log_of_64_kb_requests():
    log = RequestLog()
    assert log.max_bytes == DEFAULT_MAX_BYTES == 32 * 1024 * 1024
    for n in range(log.capacity + 10):
        log.append(record(n, huge_path(n)))
    assert log.estimated_bytes <= DEFAULT_MAX_BYTES
    assert log.query()[-1].at == float(log.capacity + 9)


def test_query_filters_are_unchanged_by_eviction():
    log = RequestLog(capacity=10, max_bytes=DEFAULT_MAX_BYTES)
    for n in range(25):
        log.append(record(n, allowed=None if n % 3 == 0 else n % 2 == 0))
    assert [r.at for r in log.query()] == [float(n) for n in range(15, 25)]
    assert [r.at for r in log.query(outcome="denied")] == [17.0, 19.0, 23.0]
    assert [r.at for r in log.query(outcome="error", limit=2)] == [21.0, 24.0]
    assert [r.at for r in log.query(mailbox=MAILBOX.upper(), limit=3)] == [20.0, 22.0, 23.0]
    assert log.query(mailbox="nobody@contoso.onmicrosoft.com") == [] and log.query(app=APP) == []


def test_a_record_larger_than_the_bound_is_still_kept_alone():
    log = RequestLog(max_bytes=1)
    log.append(record(1))
    log.append(record(2))
    assert [r.at for r in log.query()] == [2.0]
    log.clear()
    assert log.query() == [] and log.estimated_bytes == 0


def test_bounds_must_leave_room_for_a_record():
    with pytest.raises(ValueError):
        RequestLog(capacity=0)
    with pytest.raises(ValueError):
        RequestLog(max_bytes=0)


def test_concurrent_appends_keep_the_byte_count_exact():
    log = RequestLog(capacity=100_000, max_bytes=512 * 1024)

    def append(start: int) -> None:
        for n in range(start, start + 300):
            log.append(record(n, huge_path(n) if n % 2 else "/v1.0/users/x/messages"))

    threads = [threading.Thread(target=append, args=(i * 1000,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    kept = log.query()
    assert sum(r.size for r in kept) == log.estimated_bytes <= 512 * 1024


def test_records_are_numbered_and_read_after_a_number_even_across_eviction():
    log = RequestLog(capacity=5)
    for n in range(1, 9):
        log.append(record(n))
    assert log.last_seq == 8
    assert [r.seq for r in log.since(0)] == [4, 5, 6, 7, 8]  # what is still kept
    assert [r.seq for r in log.since(6)] == [7, 8]
    assert [r.seq for r in log.since(2, limit=2)] == [7, 8]
    assert log.since(8) == [] and log.since(99) == []
    log.clear()
    log.append(record(9))
    assert [r.seq for r in log.since(8)] == [9]  # numbers go on after a clear: a reader's place stays good


def test_a_watcher_is_told_of_each_append_until_stopped():
    log = RequestLog()
    told: list[int] = []
    stop = log.watch(lambda: told.append(log.last_seq))
    log.append(record(1))
    log.append(record(2))
    stop()
    log.append(record(3))
    assert told == [1, 2]


def test_numbers_stay_unique_and_gapless_under_concurrent_appends():
    log = RequestLog(capacity=100_000)

    def append_many() -> None:
        for n in range(500):
            log.append(record(n))

    threads = [threading.Thread(target=append_many) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.seq for r in log.since(0)] == list(range(1, 4001))


def test_a_token_request_is_issued_or_refused_and_names_its_app():
    issued = LogRecord(
        at=1.0,
        request_id="r",
        method="POST",
        path="/t/oauth2/v2.0/token",
        status=200,
        token=None,
        access=None,
        error_code=None,
        kind="token",
        client_id=APP,
        token_tenant="tid",
    )
    refused = LogRecord(
        at=2.0,
        request_id="s",
        method="POST",
        path="/t/oauth2/v2.0/token",
        status=401,
        token=None,
        access=None,
        error_code="AADSTS7000215",
        kind="token",
        client_id=APP,
    )
    assert (issued.outcome, issued.app_id, issued.tenant_id) == ("issued", APP, "tid")
    assert (refused.outcome, refused.to_json()["kind"], refused.to_json()["error_code"]) == (
        "refused",
        "token",
        "AADSTS7000215",
    )
