"""Runs scenarios: set the emulator's world up as the admin, then act as the daemon with the reference client.

A run talks to an emulator over HTTPS like any daemon: a private one started for the run (`local_emulator`) or
a running one (`EmulatorTarget`). Each scenario first imports its tenant (the demo by default) into that
emulator, so scenarios never see each other's changes. Files a scenario makes (a certificate's private key) live
in a temporary folder that is removed when the scenario ends, however it ends.
"""

from __future__ import annotations

import io
import json
import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jwt
import requests

from m365_mock.scenarios.model import Scenario, Step, tenant_data
from m365_mock.tools.control_client import control_request

_PLACEHOLDER = re.compile(r"\{(tenant|domain|app_id)(?::([^{}]+))?\}")


class ScenarioFailure(Exception):
    """A setup action that did not do what it should; the scenario stops there."""


@dataclass
class EmulatorTarget:
    """A running emulator: its base URL, the control API's admin key, and the CA that signed its certificate."""

    base_url: str
    admin_key: str
    ca_file: str | None = None

    def control(self, method: str, path: str, body: Any = None) -> requests.Response:
        return control_request(self.base_url, self.admin_key, method, path, body, ca_file=self.ca_file, timeout=120)

    def health_problem(self, timeout: float = 3.0) -> str | None:
        """Why it cannot be used (no answer to its health check, or the admin key refused), or None."""
        try:
            response = requests.get(
                f"{self.base_url}/_m365/health", verify=self.ca_file or True, timeout=timeout, allow_redirects=False
            )
        except requests.exceptions.SSLError:
            return "its TLS certificate is not trusted (give its CA file with --ca-file or M365_MOCK_CA_FILE)"
        except (OSError, ValueError) as exc:  # requests' exceptions are OSErrors; a bad URL is a ValueError
            return f"it cannot be reached ({type(exc).__name__})"
        if response.status_code != 200:
            return f"its health check answered HTTP {response.status_code}"
        try:
            refused = self.control("GET", "/settings").status_code in (401, 403)
        except (OSError, ValueError) as exc:
            return f"its control API cannot be reached ({type(exc).__name__})"
        if refused:
            return "its control API refuses the admin key (give --admin-key or M365_MOCK_ADMIN_KEY)"
        return None

    @classmethod
    def from_connection(cls, facts: dict[str, Any]) -> EmulatorTarget:
        return cls(facts["base_url"].rstrip("/"), facts["admin_key"], facts.get("ca_file"))


@contextmanager
def local_emulator() -> Iterator[EmulatorTarget]:
    """A private emulator for the length of a run: `m365-mock serve` (the production server) on a free port of
    127.0.0.1, with its CA, keys and access log in a temporary state folder; stopped and removed afterwards."""
    from m365_mock.tools.process import start_emulator

    with (
        tempfile.TemporaryDirectory(prefix="m365-mock-run-", ignore_cleanup_errors=True) as tmp,
        start_emulator(Path(tmp) / "state") as running,
    ):
        yield EmulatorTarget.from_connection(running.facts)


# ---------------------------------------------------------------- results


@dataclass
class StepResult:
    name: str
    passed: bool
    detail: str
    seconds: float = 0.0


@dataclass
class ScenarioResult:
    name: str
    source: str
    steps: list[StepResult] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.error is None and all(step.passed for step in self.steps)


# ---------------------------------------------------------------- the world of one scenario


@dataclass
class World:
    """What the steps act on: the tenant as imported, its apps with their credentials, made certificates."""

    target: EmulatorTarget
    tenant_id: str
    domain: str
    apps: list[dict[str, Any]]
    certificates: dict[str, str] = field(default_factory=dict)
    clients: dict[tuple[str, str], Any] = field(default_factory=dict)
    base_dir: Path = field(default_factory=Path.cwd)
    workdir: Path | None = None  # for files the scenario makes; run_scenario gives a temporary folder

    def app(self, key: str | None) -> dict[str, Any]:
        if key is None:
            return self.apps[0]
        for app in self.apps:
            if key.lower() in (app["app_id"], app["display_name"].lower()):
                return app
        raise ScenarioFailure(f"the tenant has no app '{key}'")

    def fill(self, value: Any) -> Any:
        """Replace {tenant}, {domain}, {app_id} and {app_id:Display Name} in strings, lists and mappings."""
        if isinstance(value, str):

            def one(match: re.Match[str]) -> str:
                kind, arg = match.group(1), match.group(2)
                if kind == "tenant":
                    return self.tenant_id
                if kind == "domain":
                    return self.domain
                return self.app(arg)["app_id"]

            return _PLACEHOLDER.sub(one, value)
        if isinstance(value, list):
            return [self.fill(v) for v in value]
        if isinstance(value, dict):
            return {k: self.fill(v) for k, v in value.items()}
        return value

    def admin(self, method: str, path: str, body: Any = None, expect: int | None = None) -> Any:
        response = self.target.control(method, self.fill(path), self.fill(body))
        ok = response.status_code == expect if expect else response.status_code < 300
        if not ok:
            raise ScenarioFailure(
                f"{method} /_m365{self.fill(path)} answered {response.status_code}: {response.text[:300]}"
            )
        return response.json() if response.content else None

    def refresh_apps(self) -> None:
        self.apps = self.admin("GET", f"/tenants/{self.tenant_id}/applications")["value"]


def prepare(target: EmulatorTarget, scenario: Scenario, workdir: Path | None = None) -> World:
    """Import the scenario's tenant (demo, file or inline; certificate files read here, as the control API reads
    no files) and read back its apps and their secrets."""
    from m365_mock.state.tenantfile import ConfigError

    try:
        data = tenant_data(scenario)
    except ConfigError as exc:
        raise ScenarioFailure(str(exc)) from None
    target.control("POST", "/time", {"reset": True})
    response = target.control("POST", "/import", data)
    if response.status_code != 200:
        raise ScenarioFailure(f"the tenant could not be loaded: {response.text[:300]}")
    first = target.control("GET", "/tenants").json()["value"][0]
    world = World(target, first["id"], first["domains"][0], [], base_dir=scenario.base_dir, workdir=workdir)
    world.refresh_apps()
    return world


# ---------------------------------------------------------------- setup actions


def run_setup(world: World, action: dict[str, Any]) -> str:
    """One admin action; returns what it did, for the report."""
    kind, value = next(iter(action.items()))
    if kind == "exo":
        from m365_mock.tools.control_client import ControlClient
        from m365_mock.tools.exo import run

        out, err = io.StringIO(), io.StringIO()
        client = ControlClient(
            world.target.base_url, world.target.admin_key, ca_file=world.target.ca_file, tenant=world.tenant_id
        )
        if run(world.fill(value), client, out, err) != 0:
            raise ScenarioFailure(f"exo failed: {err.getvalue().strip()}")
        return f"exo: {world.fill(value).strip().splitlines()[0]}"
    if kind == "control":
        world.admin(value["method"], value["path"], value.get("body"), value.get("status"))
        world.refresh_apps()
        return f"control: {value['method']} {world.fill(value['path'])}"
    if kind == "deliver":
        mailbox = world.fill(value["mailbox"])
        if "count" in value:
            body = {"count": value["count"], "unreadRatio": value.get("unread_ratio", 0.3)}
        else:
            body = control_message(world.fill(value.get("message") or {}))
        world.admin("POST", f"/mailboxes/{quote(mailbox)}/messages", body)
        if "count" in value:
            return f"deliver: {value['count']} message(s) to {mailbox}"
        return f"deliver: {body.get('subject', '(no subject)')!r} to {mailbox}"
    if kind == "advance":
        world.admin("POST", "/time", {"advance": value})
        return f"advance the clock {value} s"
    if kind == "settings":
        world.admin("PATCH", "/settings", value)
        return f"settings: {value}"
    if kind == "certificate":
        app = world.app(world.fill(value["app"]))
        pem_path = _make_certificate(world, app)
        world.certificates[app["app_id"]] = str(pem_path)
        return f"certificate uploaded for {app['display_name']}"
    raise ScenarioFailure(f"unknown setup action {kind}")


def control_message(message: dict[str, Any]) -> dict[str, Any]:
    """A `deliver.message` written as in tenant files, as the control API's fields (Graph message properties)."""
    names = {
        "subject": "subject",
        "received": "receivedDateTime",
        "read": "isRead",
        "folder": "folder",
        "importance": "importance",
        "categories": "categories",
    }
    body = {field_name: message[key] for key, field_name in names.items() if key in message}
    if "from" in message:
        body["from"] = _recipient(message["from"])
    if "to" in message:
        body["toRecipients"] = [_recipient(address) for address in _addresses(message["to"])]
    if "body" in message or "body_type" in message:
        body["body"] = {"contentType": message.get("body_type", "text"), "content": message.get("body", "")}
    return body


def _recipient(text: str) -> dict[str, Any]:
    """`address` or `Name <address>` as a Graph recipient."""
    if "<" in text:
        name, _, address = text.rpartition("<")
        address, name = address.rstrip().rstrip(">").strip(), name.strip().strip('"').strip()
    else:
        address, name = text.strip(), ""
    return {"emailAddress": {"name": name or address, "address": address}}


def _addresses(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _make_certificate(world: World, app: dict[str, Any]) -> Path:
    from m365_mock.identity.keys import certificate_pem, new_rsa_key, private_key_pem, self_signed_certificate

    key = new_rsa_key()
    cert = self_signed_certificate(key, app["display_name"])
    world.admin(
        "POST",
        f"/tenants/{world.tenant_id}/applications/{app['app_id']}/certificates",
        {"pem": certificate_pem(cert), "display_name": "scenario"},
    )
    if world.workdir is None:
        raise ScenarioFailure("no folder to keep the certificate's private key in")
    path = world.workdir / f"{app['app_id']}.pem"
    path.write_bytes(private_key_pem(key) + certificate_pem(cert).encode())
    return path


# ---------------------------------------------------------------- steps


class StepError(Exception):
    """What a failed call returned: HTTP status, error code and message."""

    def __init__(self, status: int, code: str | int | None, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class Outcome:
    """What a step produced, compared with its `expect`."""

    error: StepError | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    count: int | None = None
    claims: dict[str, Any] | None = None
    body_visible: bool | None = None
    folder: dict[str, Any] | None = None
    log: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""


def _client_for(world: World, step: Step):
    """The daemon for an app and credential; kept for the scenario, so its token is reused like a real one's."""
    app = world.app(world.fill(step.options.get("as")))
    credential = step.options.get("credential", "secret")
    key = (app["app_id"], credential)
    if key not in world.clients:
        world.clients[key] = _new_client(world, app, credential)
    return world.clients[key]


def _new_client(world: World, app: dict[str, Any], credential: str):
    from m365_mock.client import ClientSettings, MailClient, TokenProvider

    settings = ClientSettings(
        tenant=world.tenant_id,
        client_id=app["app_id"],
        login_url=world.target.base_url,
        graph_url=f"{world.target.base_url}/v1.0",
        ca_file=world.target.ca_file,
        max_retries=1,
        max_retry_wait=5,
    )
    if credential == "certificate":
        if app["app_id"] not in world.certificates:
            raise ScenarioFailure(f"no certificate was made for {app['display_name']} (add a `certificate` setup)")
        settings.certificate_file = world.certificates[app["app_id"]]
    else:
        if not app["secrets"]:
            raise ScenarioFailure(f"{app['display_name']} has no client secret")
        newest = app["secrets"][-1]
        settings.client_secret = newest["id"] if credential == "secret_id" else newest["value"]
    tokens = TokenProvider(settings)
    return tokens, MailClient(settings, tokens=tokens)


def _call(function, *args, **kwargs) -> Any:
    from m365_mock.client import AuthError, GraphError

    try:
        return function(*args, **kwargs)
    except AuthError as exc:
        raise StepError(exc.status, exc.code, exc.description) from None
    except GraphError as exc:
        raise StepError(exc.status, exc.code, exc.message) from None


def _find(mail, mailbox: str, subject: str, folder: str | None = None) -> dict[str, Any]:
    for message in _call(lambda: list(mail.messages(mailbox, folder=folder, top=100))):
        if message.get("subject") == subject:
            return message
    raise StepError(404, "ScenarioMessageNotFound", f"no message with subject {subject!r} in {mailbox}")


def perform(world: World, step: Step) -> Outcome:
    """Do one step as the daemon; the outcome holds what came back (or the error)."""
    o = world.fill(step.options)
    outcome = Outcome()
    try:
        if step.do == "admin":
            outcome.note = run_setup(world, step.options["action"])
            return outcome
        if step.do == "log":
            query = {
                k: v
                for k, v in {
                    "mailbox": o.get("mailbox"),
                    "outcome": o.get("outcome"),
                    "app": world.app(o["as"])["app_id"] if "as" in o else None,
                }.items()
                if v
            }
            outcome.log = world.admin("GET", "/log?" + urlencode(query))["value"]
            outcome.count = len(outcome.log)
            return outcome
        tokens, mail = _client_for(world, step)
        if step.do == "token":
            outcome.claims = jwt.decode(_call(tokens.token), options={"verify_signature": False})
        elif step.do == "fetch":
            messages = _call(
                lambda: list(
                    mail.messages(o["mailbox"], folder=o.get("folder"), unread=o.get("unread"), top=o.get("top", 50))
                )
            )
            outcome.messages, outcome.count = messages, len(messages)
        elif step.do == "read":
            found = _find(mail, o["mailbox"], o["subject"], o.get("folder"))
            message = _call(mail.message, o["mailbox"], found["id"])
            outcome.messages, outcome.body_visible = [message], "body" in message
        elif step.do == "mark_read":
            found = _find(mail, o["mailbox"], o["subject"], o.get("folder"))
            outcome.messages = [_call(mail.mark_read, o["mailbox"], found["id"], True)]
        elif step.do == "move":
            found = _find(mail, o["mailbox"], o["subject"], o.get("folder"))
            outcome.messages = [_call(mail.move, o["mailbox"], found["id"], o["move_to"], create=True)]
        elif step.do == "send":
            attachments = [str(attachment_path(world, a)) for a in o.get("attachments", [])]
            _call(
                mail.send,
                o["mailbox"],
                to=_addresses(o["to"]),
                cc=_addresses(o.get("cc")),
                subject=o.get("subject", ""),
                body=o.get("body", ""),
                attachments=attachments,
            )
        elif step.do == "wait_for_delivery":
            deadline = time.monotonic() + float(o.get("timeout", 5))
            while True:
                messages = [
                    m
                    for m in _call(lambda: list(mail.messages(o["mailbox"], folder=o.get("folder", "inbox"), top=100)))
                    if m.get("subject") == o["subject"]
                ]
                if messages or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            outcome.messages, outcome.count = messages, len(messages)
        elif step.do == "process":
            outcome = _process(mail, o)
        elif step.do == "folder":
            outcome.folder = _call(mail.folder, o["mailbox"], o.get("folder", "inbox"))
    except StepError as exc:
        outcome.error = exc
    return outcome


def attachment_path(world: World, name: str) -> Path:
    """A file a step attaches: absolute, or relative to the scenario file."""
    return Path(name) if Path(name).is_absolute() else world.base_dir / name


def _process(mail, o: dict[str, Any]) -> Outcome:
    """The daemon's fetch loop: take unread mail page by page, mark it read and/or move it, until none is left.

    Fails when a message would be handled twice (by subject and id).
    """
    mailbox, folder = o["mailbox"], o.get("folder", "inbox")
    seen: set[str] = set()
    subjects: list[str] = []
    for _ in range(1000):
        page = _call(
            lambda: list(
                mail.messages(mailbox, folder=folder, unread=True, top=o.get("top", 10), limit=o.get("top", 10))
            )
        )
        if not page:
            break
        for message in page:
            identity = message.get("internetMessageId") or message["id"]
            if identity in seen:
                raise StepError(500, "ScenarioDuplicate", f"message {message['subject']!r} was handed out twice")
            seen.add(identity)
            subjects.append(message["subject"])
            if o.get("mark_read", True):
                moved = _call(mail.mark_read, mailbox, message["id"], True)
                message = moved
            if o.get("move_to"):
                _call(mail.move, mailbox, message["id"], o["move_to"], create=True)
    outcome = Outcome(count=len(subjects), messages=[{"subject": s} for s in subjects])
    outcome.folder = _call(mail.folder, mailbox, folder)
    return outcome


# ---------------------------------------------------------------- expectations


def check(step: Step, outcome: Outcome) -> tuple[bool, str]:
    """Compare an outcome with the step's `expect`; (passed, explanation)."""
    expect = step.expect
    wanted_error = expect.get("error")
    got = outcome.error
    if wanted_error is None:
        if got is not None and expect.get("ok", True):
            return False, f"expected success, got {got.status} {got.code}: {got.message}"
    else:
        if got is None:
            return False, f"expected error {_describe_error(wanted_error)}, but the step succeeded"
        problems = []
        if "status" in wanted_error and wanted_error["status"] != got.status:
            problems.append(f"status {got.status} (expected {wanted_error['status']})")
        if "code" in wanted_error and str(wanted_error["code"]) != str(got.code):
            problems.append(f"code {got.code} (expected {wanted_error['code']})")
        if "message" in wanted_error and wanted_error["message"] != got.message:
            problems.append(f"message {got.message!r} (expected {wanted_error['message']!r})")
        if "message_contains" in wanted_error and wanted_error["message_contains"] not in got.message:
            problems.append(f"message {got.message!r} (expected to contain {wanted_error['message_contains']!r})")
        if problems:
            return False, "wrong error: " + "; ".join(problems)
        return True, f"failed as expected: {got.status} {got.code}"
    problems = []
    subjects = [m.get("subject") for m in outcome.messages]
    if "count" in expect and outcome.count != expect["count"]:
        problems.append(f"count {outcome.count} (expected {expect['count']})")
    if "count_at_least" in expect and (outcome.count or 0) < expect["count_at_least"]:
        problems.append(f"count {outcome.count} (expected at least {expect['count_at_least']})")
    if "subjects" in expect and subjects != expect["subjects"]:
        problems.append(f"subjects {subjects} (expected {expect['subjects']})")
    if "contains_subject" in expect and expect["contains_subject"] not in subjects:
        problems.append(f"no message {expect['contains_subject']!r} among {subjects[:10]}")
    if "body_visible" in expect and outcome.body_visible != expect["body_visible"]:
        problems.append(
            f"body {'present' if outcome.body_visible else 'absent'} "
            f"(expected {'present' if expect['body_visible'] else 'absent'})"
        )
    for claim, value in (expect.get("claims") or {}).items():
        actual = (outcome.claims or {}).get(claim)
        if actual != value:
            problems.append(f"claim {claim} = {actual!r} (expected {value!r})")
    for claim in expect.get("no_claims") or []:
        if claim in (outcome.claims or {}):
            problems.append(f"claim {claim} present (expected absent): {outcome.claims[claim]!r}")
    for key in ("unread", "total"):
        if key in expect:
            folder = outcome.folder or {}
            actual = folder.get("unreadItemCount" if key == "unread" else "totalItemCount")
            if actual != expect[key]:
                problems.append(f"{key} {actual} (expected {expect[key]})")
    if "entries" in expect and len(outcome.log) != expect["entries"]:
        problems.append(f"{len(outcome.log)} log entries (expected {expect['entries']})")
    if "decision_contains" in expect:
        missing = [r["decision"] for r in outcome.log if expect["decision_contains"] not in (r.get("decision") or "")]
        if missing or not outcome.log:
            problems.append(
                f"decisions {missing or '(none)'} (expected each to contain {expect['decision_contains']!r})"
            )
    if problems:
        return False, "; ".join(problems)
    return True, _summary(step, outcome)


def _describe_error(error: dict[str, Any]) -> str:
    return " ".join(str(error[k]) for k in ("status", "code") if k in error) or "(any)"


def _summary(step: Step, outcome: Outcome) -> str:
    if outcome.note:
        return outcome.note
    if outcome.claims is not None:
        return f"token for {outcome.claims.get('app_displayname')} with roles {outcome.claims.get('roles', [])}"
    if step.do == "log":
        return f"{len(outcome.log)} log entries"
    if outcome.body_visible is not None:
        return f"{outcome.messages[0].get('subject')!r} read, body {'present' if outcome.body_visible else 'absent'}"
    if outcome.folder is not None and outcome.count is None:
        return (
            f"{outcome.folder.get('displayName')}: {outcome.folder.get('totalItemCount')} total, "
            f"{outcome.folder.get('unreadItemCount')} unread"
        )
    if outcome.count is not None:
        return f"{outcome.count} message(s)"
    return "ok"


# ---------------------------------------------------------------- one scenario


def run_scenario(target: EmulatorTarget, scenario: Scenario) -> ScenarioResult:
    """Prepare the world, run the setup, then each step; a failed step does not stop the later ones.

    Whatever goes wrong in a scenario is reported in its result, never raised (but Ctrl+C is); the files it made
    are removed in every case.
    """
    started = time.monotonic()
    result = ScenarioResult(scenario.name, str(scenario.source or "inline"))
    with tempfile.TemporaryDirectory(prefix="m365-scenario-", ignore_cleanup_errors=True) as workdir:
        try:
            _run(target, scenario, Path(workdir), result)
        finally:
            result.seconds = time.monotonic() - started
    return result


def _run(target: EmulatorTarget, scenario: Scenario, workdir: Path, result: ScenarioResult) -> None:
    try:
        world = prepare(target, scenario, workdir)
        for action in scenario.setup:
            note = run_setup(world, action)
            result.steps.append(StepResult(f"setup: {note}", True, "done"))
    except Exception as exc:
        result.error = f"setup failed: {_explain(exc)}"
        return
    for step in scenario.steps:
        began = time.monotonic()
        try:
            outcome = perform(world, step)
            passed, detail = check(step, outcome)
        except Exception as exc:
            passed, detail = False, f"could not run: {_explain(exc)}"
        result.steps.append(StepResult(step.name, passed, detail, time.monotonic() - began))


def _explain(exc: Exception) -> str:
    """What went wrong, for the report: our own failures and HTTP errors as they are, anything else with its type."""
    if isinstance(exc, ScenarioFailure | requests.RequestException):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def result_json(result: ScenarioResult) -> dict[str, Any]:
    return {
        "name": result.name,
        "source": result.source,
        "passed": result.passed,
        "error": result.error,
        "seconds": round(result.seconds, 3),
        "steps": [{"name": s.name, "passed": s.passed, "detail": s.detail} for s in result.steps],
    }


def dumps(results: list[ScenarioResult]) -> str:
    return json.dumps([result_json(r) for r in results], indent=2)
