"""Admins change groups, members and policies while daemons read and send: no request fails, and every access
decision is the one a stable world gives."""

from __future__ import annotations

import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator

import pytest

from m365_mock.app import create_app
from m365_mock.clock import Clock
from m365_mock.state.directory import GRAPH_RESOURCE
from m365_mock.state.tenantfile import load_demo_world
from tests.conftest import shared_signing_key
from tests.helpers import ADMIN_KEY, BILLING, GROUP, RAOP, SALES, SUPPORT, TENANT, Admin, GraphClient

ROUNDS = 250
USERS_OUTSIDE_THE_READS = 2


@pytest.fixture
def preempt_often() -> Iterator[None]:
    """Switch threads every few bytecodes, so that a reader lands inside a writer's change if it can."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


@pytest.fixture
def world_app():
    """The demo tenant as shipped (the app restricted to cctr_sec_group: support@ and billing@), frozen in time so
    that a policy removed at the instant it was made leaves the rule list at once."""
    clock = Clock()
    clock.freeze()
    app = create_app(load_demo_world(), signing_key=shared_signing_key(), clock=clock, admin_key=ADMIN_KEY)
    app.testing = True
    return app


def run_together(workers: list[Callable[[], None]]) -> list[BaseException]:
    failures: list[BaseException] = []
    start = threading.Barrier(len(workers))

    def guarded(work: Callable[[], None]) -> None:
        start.wait()
        try:
            work()
        except BaseException as exc:  # collected and reported by the test
            failures.append(exc)

    threads = [threading.Thread(target=guarded, args=(work,)) for work in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failures


@pytest.mark.slow
def test_changes_during_requests_never_fail_a_request_or_change_a_decision(world_app, preempt_often):
    emulator = world_app.extensions["m365"]
    tenant = emulator.directory.tenant(TENANT)
    demo = next(iter(tenant.applications.values()))
    token = emulator.issuer.issue(tenant, demo, GRAPH_RESOURCE, "1").access_token
    setup = Admin(world_app.test_client())
    other = setup.call(
        "POST", "applications", {"display_name": "Other Daemon", "permissions": ["Mail.Read"]}, expect=201
    ).get_json()
    users = [
        setup.call("POST", "mailboxes", {"address": f"churn.user{i}@contoso.onmicrosoft.com"}, expect=201).get_json()
        for i in range(USERS_OUTSIDE_THE_READS)
    ]
    # A group nested in the policy's scope group: deciding walks the groups while the churn adds and removes some.
    setup.call("POST", "groups", {"address": "nested@contoso.onmicrosoft.com"}, expect=201)
    setup.call("POST", f"groups/{GROUP}/members", {"member": "nested@contoso.onmicrosoft.com"}, expect=201)
    # The demo app's own policy comes after rules that the churn removes, so a removal shifts it in the list.
    for i in range(3):
        setup.call("POST", "groups", {"address": f"early{i}@contoso.onmicrosoft.com"}, expect=201)
        setup.policy(other["app_id"], f"early{i}@contoso.onmicrosoft.com")
    listed = setup.call("GET", "accessPolicies").get_json()["value"]
    [original] = [p for p in listed if p["app_id"] != [other["app_id"]]]
    setup.call("DELETE", f"accessPolicies/{original['id']}", expect=204)
    setup.policy(demo.app_id, GROUP)

    outcomes: Counter[str] = Counter()
    wrong: list[str] = []

    def expect(response, status: int, message: str | None, what: str) -> None:
        got = response.status_code
        body = response.get_json(silent=True) or {}
        text = (body.get("error") or {}).get("message") if got >= 400 else None
        outcomes[f"{what} {got}"] += 1
        if got != status or text != message:
            wrong.append(f"{what}: {got} {text!r}")

    def reader() -> None:
        graph = GraphClient(world_app.test_client(), token)
        for _ in range(ROUNDS):
            expect(graph.get(f"/users/{SUPPORT}/messages?$top=1"), 200, None, "read support@")
            expect(graph.get(f"/users/{SALES}/messages?$top=1"), 403, RAOP, "read sales@")

    def sender() -> None:
        graph = GraphClient(world_app.test_client(), token)
        message = {"message": {"subject": "churn", "toRecipients": [{"emailAddress": {"address": BILLING}}]}}
        for _ in range(ROUNDS // 2):
            expect(graph.post(f"/users/{SUPPORT}/sendMail", json=message), 202, None, "send from support@")
            expect(graph.post(f"/users/{SALES}/sendMail", json=message), 403, RAOP, "send from sales@")

    def policy_churn() -> None:
        admin = Admin(world_app.test_client())
        for i in range(ROUNDS):
            for early in admin.call("GET", "accessPolicies").get_json()["value"]:
                if early["app_id"] == [other["app_id"]]:
                    admin.call("DELETE", f"accessPolicies/{early['id']}", expect=204)
                    admin.policy(other["app_id"], early["scope"])
                    break
            admin.policy(other["app_id"], f"early{i % 3}@contoso.onmicrosoft.com", "DenyAccess")

    def group_churn() -> None:
        admin = Admin(world_app.test_client())
        for i in range(ROUNDS):
            address = f"temporary{i}@contoso.onmicrosoft.com"
            admin.call("POST", "groups", {"address": address, "members": [SALES, GROUP]}, expect=201)
            admin.call("DELETE", f"groups/{address}", expect=204)

    def member_churn() -> None:
        admin = Admin(world_app.test_client())
        for i in range(ROUNDS):
            user = users[i % len(users)]["address"]
            admin.call("POST", f"groups/{GROUP}/members", {"member": user}, expect=201)
            admin.call("DELETE", f"groups/{GROUP}/members/{user}", expect=204)

    failures = run_together([reader, reader, sender, policy_churn, group_churn, member_churn])

    assert failures == []
    assert wrong == [], f"{len(wrong)} requests differed from the stable world's answer: {wrong[:5]}"
    assert outcomes == {
        "read support@ 200": 2 * ROUNDS,
        "read sales@ 403": 2 * ROUNDS,
        "send from support@ 202": ROUNDS // 2,
        "send from sales@ 403": ROUNDS // 2,
    }
    final = emulator.directory.tenant(TENANT)
    assert {m.address for m in final.mailboxes.values() if m.address.startswith("churn.user")} == {
        u["address"] for u in users
    }
    assert [m for m in final.group(GROUP).members if m.startswith("churn.user")] == []
    assert not any(g.address.startswith("temporary") for g in final.groups.values())
    inbox = emulator.mail.store(final.mailbox(BILLING)).folder("inbox")
    assert sum(1 for m in inbox.all if m.subject == "churn") == ROUNDS // 2
