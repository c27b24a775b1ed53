"""The team's own daemon in a scenario: `run`, `start` and `stop`, its environment, and the processes it leaves
(none). The daemons are small programs in tests/scenarios/daemons/, run unmodified: a shell script with curl, a
Node script with fetch, and Python ones with MSAL and with azure-identity, each configured by its environment."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from m365_mock.scenarios import daemons, runner
from m365_mock.scenarios.actions import run_setup
from m365_mock.scenarios.model import ScenarioError, Step, load_scenario, parse_scenario
from m365_mock.scenarios.results import ScenarioResult
from m365_mock.scenarios.runner import run_scenario
from m365_mock.scenarios.steps import perform
from m365_mock.scenarios.world import prepare

pytestmark = pytest.mark.slow

DAEMONS = Path(__file__).resolve().parent / "daemons"
QUEUE = {"QUEUE_MAILBOX": "support@{domain}"}
PRINTER = {
    "deliver": {"mailbox": "support@{domain}", "message": {"subject": "Printer jammed", "from": "ann@example.org"}}
}
# Writes the environment it was given (and the certificate file it names) to $OUT.
DUMP = (
    "import json, os; env = dict(os.environ); path = env.get('M365_MOCK_CERTIFICATE_PATH'); "
    "env['pem'] = open(path).read() if path else ''; json.dump(env, open(env['OUT'], 'w'))"
)


def scenario_file(tmp_path: Path, steps: list[dict[str, Any]], setup: list[dict[str, Any]] = ()) -> Path:
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps({"name": "daemon", "setup": list(setup), "steps": steps}))
    return path


def run_steps(target, tmp_path: Path, steps: list[dict[str, Any]], setup: list[dict[str, Any]] = ()) -> ScenarioResult:
    return run_scenario(target, load_scenario(scenario_file(tmp_path, steps, setup)))


def outcomes(result: ScenarioResult) -> dict[str, tuple[bool, str]]:
    assert result.error is None, result.error
    return {step.name: (step.passed, step.detail) for step in result.steps}


def failed(result: ScenarioResult) -> dict[str, str]:
    return {name: detail for name, (passed, detail) in outcomes(result).items() if not passed}


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie waiting for its parent does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_the_environment_names_the_emulator_the_app_and_the_ca_and_nothing_of_the_runners(
    target, tmp_path, monkeypatch
):
    monkeypatch.setenv("M365_MOCK_ADMIN_KEY", "the runner's key")
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "a secret of the real cloud")
    monkeypatch.setenv("AZURE_USERNAME", "someone@real.example")
    monkeypatch.setenv("KEPT_FOR_THE_DAEMON", "yes")
    dump = [sys.executable, "-c", DUMP]
    connector = "Contact Center Connector"
    result = run_steps(
        target,
        tmp_path,
        [
            {"do": "run", "name": "secret", "command": dump, "env": {"OUT": "{here}/secret.json", "BOX": "x@{domain}"}},
            {"do": "run", "name": "secret id", "command": dump, "credential": "secret_id", "env": {"OUT": "id.json"}},
            {
                "do": "run",
                "name": "certificate",
                "as": connector,
                "credential": "certificate",
                "command": dump,
                "env": {"OUT": "cert.json"},
            },
        ],
        setup=[{"certificate": {"app": connector}}],
    )
    assert failed(result) == {}
    [tenant] = target.client.tenants()
    [app] = [a for a in target.client.applications() if a["display_name"] == connector]
    base, secret = target.base_url, app["secrets"][-1]
    env = json.loads((tmp_path / "secret.json").read_text())
    assert {k: v for k, v in env.items() if k.startswith("M365_MOCK_")} == {
        "M365_MOCK_BASE_URL": base,
        "M365_MOCK_GRAPH_URL": f"{base}/v1.0",
        "M365_MOCK_CA_FILE": target.ca_file,
        "M365_MOCK_TENANT_ID": tenant["id"],
        "M365_MOCK_TENANT_DOMAIN": tenant["domains"][0],
        "M365_MOCK_AUTHORITY": f"{base}/{tenant['id']}",
        "M365_MOCK_AUTHORITY_HOST": base,
        "M365_MOCK_TOKEN_ENDPOINT": f"{base}/{tenant['id']}/oauth2/v2.0/token",
        "M365_MOCK_SCOPE": "https://graph.microsoft.com/.default",
        "M365_MOCK_CLIENT_ID": app["app_id"],
        "M365_MOCK_CLIENT_SECRET": secret["value"],
    }
    assert {k: v for k, v in env.items() if k.startswith("AZURE_")} == {
        "AZURE_TENANT_ID": tenant["id"],
        "AZURE_CLIENT_ID": app["app_id"],
        "AZURE_CLIENT_SECRET": secret["value"],
        "AZURE_AUTHORITY_HOST": base,
    }
    bundle = Path(env["REQUESTS_CA_BUNDLE"])
    assert env["SSL_CERT_FILE"] == env["CURL_CA_BUNDLE"] == str(bundle) and env["NODE_EXTRA_CA_CERTS"] == target.ca_file
    assert not bundle.exists()  # it was in the scenario's own folder, gone with it
    assert env["BOX"] == f"x@{tenant['domains'][0]}" and env["KEPT_FOR_THE_DAEMON"] == "yes"
    assert env["PYTHONUNBUFFERED"] == "1" and env["pem"] == ""

    assert json.loads((tmp_path / "id.json").read_text())["M365_MOCK_CLIENT_SECRET"] == secret["id"]
    cert = json.loads((tmp_path / "cert.json").read_text())
    assert "M365_MOCK_CLIENT_SECRET" not in cert and "AZURE_CLIENT_SECRET" not in cert
    assert cert["AZURE_CLIENT_CERTIFICATE_PATH"] == cert["M365_MOCK_CERTIFICATE_PATH"]
    assert "PRIVATE KEY" in cert["pem"] and "BEGIN CERTIFICATE" in cert["pem"]
    thumbprint = x509.load_pem_x509_certificate(cert["pem"].encode()).fingerprint(hashes.SHA1()).hex().upper()
    assert cert["M365_MOCK_CERTIFICATE_THUMBPRINT"] == thumbprint


def test_the_ca_bundle_holds_the_emulators_ca_and_what_the_runner_trusts(target, tmp_path):
    world = prepare(target, load_scenario(scenario_file(tmp_path, [{"do": "token"}])), tmp_path)
    env = daemons.daemon_environment(world, world.app(None))
    bundle = Path(env["REQUESTS_CA_BUNDLE"]).read_text()
    assert bundle.startswith(Path(target.ca_file).read_text().strip())
    assert bundle.count("BEGIN CERTIFICATE") > 10  # the system's CAs too: a daemon still reaches other hosts


def test_a_shell_daemon_with_curl_and_a_node_daemon_run_unmodified(target, tmp_path):
    script = str(DAEMONS / "list_inbox.sh")
    steps = [
        {
            "do": "run",
            "name": "curl --cacert",
            "command": f"sh {script}",
            "env": {**QUEUE, "USE_CACERT": "1"},
            "timeout": 30,
            "expect": {"exit_code": 0, "stdout_contains": "Printer jammed"},
        },
        {
            "do": "run",
            "name": "curl with CURL_CA_BUNDLE",
            "command": ["sh", script],
            "env": QUEUE,
            "timeout": 30,
            "expect": {"stdout_contains": "Printer jammed"},
        },
    ]
    if shutil.which("node"):
        steps.append(
            {
                "do": "run",
                "name": "node fetch",
                "command": ["node", str(DAEMONS / "list_inbox.mjs")],
                "env": QUEUE,
                "timeout": 30,
                "expect": {"stdout_contains": "Printer jammed"},
            }
        )
    steps.append(
        {
            "do": "check",
            "name": "their tokens",
            "expect": {"log": {"kind": "token", "status": 200, "count_at_least": len(steps)}},
        }
    )
    result = run_steps(target, tmp_path, steps, setup=[PRINTER])
    assert failed(result) == {}


def test_python_daemons_with_msal_and_azure_identity_find_the_emulator_by_their_environment(target, tmp_path):
    connector, identity = str(DAEMONS / "connector.py"), str(DAEMONS / "azure_identity.py")
    receipt = hashlib.sha256(b"ticket received\n").hexdigest()
    result = run_steps(
        target,
        tmp_path,
        [
            {
                "do": "run",
                "name": "EnvironmentCredential",
                "command": [sys.executable, identity, "sync"],
                "env": QUEUE,
                "expect": {"stdout_contains": "Printer jammed"},
            },
            {
                "do": "run",
                "name": "aio EnvironmentCredential",
                "command": [sys.executable, identity, "aio"],
                "env": QUEUE,
                "expect": {"stdout_contains": "Printer jammed"},
            },
            {
                "do": "start",
                "name": "start",
                "daemon": "connector",
                "command": [sys.executable, connector],
                "env": QUEUE,
            },
            {
                "do": "wait",
                "name": "processed",
                "timeout": 30,
                "until": {
                    "message": {"mailbox": "support@{domain}", "folder": "Processed", "subject": "Printer jammed"},
                    "outbound": {"to": "ann@example.org", "subject": "Re: Printer jammed"},
                    "folder": {"mailbox": "support@{domain}", "folder": "inbox", "unread": 0},
                },
            },
            {
                "do": "check",
                "name": "answered once",
                "expect": {
                    "outbound": {
                        "to": "ann@example.org",
                        "count": 1,
                        "attachments": [{"name": "receipt.txt", "sha256": receipt}],
                    },
                    "no_duplicates": {"mailbox": "support@{domain}"},
                    "folder": {"mailbox": "support@{domain}", "folder": "inbox", "unread": 0},
                },
            },
            {
                "do": "stop",
                "name": "stop",
                "daemon": "connector",
                "expect": {"exit_code": 0, "stdout_contains": "handled Printer jammed"},
            },
        ],
        setup=[PRINTER],
    )
    assert failed(result) == {}
    found = outcomes(result)
    assert found["stop"][1].startswith("connector stopped (SIGTERM) after running ")


def test_run_checks_the_exit_code_and_output_and_quotes_the_output_when_they_are_wrong(target, tmp_path):
    noisy = "echo out; echo err >&2; exit 3"
    result = run_steps(
        target,
        tmp_path,
        [
            {"do": "run", "name": "fails", "command": noisy},
            {
                "do": "run",
                "name": "as expected",
                "command": noisy,
                "expect": {"exit_code": 3, "stdout_contains": "out", "stderr_contains": "err"},
            },
            {
                "do": "run",
                "name": "wrong output",
                "command": noisy,
                "expect": {"exit_code": 3, "stdout_contains": "nope"},
            },
            {"do": "run", "name": "missing", "command": ["/nonexistent/daemon"]},
        ],
    )
    found = outcomes(result)
    assert found["fails"] == (False, "exit code 3 (expected 0); stderr ends: 'err'")
    assert found["as expected"][0] and found["as expected"][1].startswith("exit code 3 after ")
    assert found["wrong output"] == (False, "stdout does not contain 'nope'; it ends: 'out'")
    assert found["missing"] == (
        False,
        "could not run: cannot start ['/nonexistent/daemon']: No such file or directory",
    )


def test_a_run_past_its_timeout_is_killed_with_its_process_group(target, tmp_path):
    spawns = "echo started; sleep 30 & echo $! > child.pid; wait"
    result = run_steps(target, tmp_path, [{"do": "run", "name": "slow", "command": spawns, "timeout": 0.5}])
    assert outcomes(result)["slow"] == (
        False,
        "did not finish within 0.5 s: killed with its process group; stdout ends: 'started'",
    )
    assert not alive(int((tmp_path / "child.pid").read_text()))


def test_stop_ends_a_daemon_gently_then_by_force_and_reports_one_that_ended_on_its_own(target, tmp_path, monkeypatch):
    monkeypatch.setattr(daemons, "STOP_GRACE", 0.3)
    result = run_steps(
        target,
        tmp_path,
        [
            {
                "do": "start",
                "daemon": "polite",
                "command": "trap 'echo bye; exit 0' TERM; while :; do sleep 0.05; done",
            },
            {"do": "start", "daemon": "stubborn", "command": "trap '' TERM; while :; do sleep 0.05; done"},
            {"do": "start", "daemon": "crashing", "command": "echo oops >&2; exit 3"},
            {"do": "start", "daemon": "finishing", "command": "exit 3"},
            {"do": "start", "name": "same name", "daemon": "polite", "command": "true"},
            {"do": "run", "name": "a moment", "command": "sleep 0.3"},
            {"do": "stop", "name": "polite", "daemon": "polite", "expect": {"exit_code": 0, "stdout_contains": "bye"}},
            {"do": "stop", "name": "stubborn", "daemon": "stubborn", "expect": {"exit_code": 0}},
            {"do": "stop", "name": "crashing", "daemon": "crashing"},
            {"do": "stop", "name": "finishing", "daemon": "finishing", "expect": {"exit_code": 3}},
            {"do": "stop", "name": "again", "daemon": "polite"},
            {"do": "stop", "name": "ghost", "daemon": "ghost"},
        ],
    )
    found = outcomes(result)
    assert found["polite"][0] and found["polite"][1].startswith("polite stopped (SIGTERM) after running ")
    assert found["stubborn"] == (False, "signal SIGKILL (exit code -9) (expected 0); no output")
    assert found["crashing"] == (False, "exit code 3 (expected 0); stderr ends: 'oops'")
    assert found["finishing"] == (True, "finishing had exited on its own with exit code 3")
    assert found["same name"] == (
        False,
        "could not run: a daemon called 'polite' is already running; give this one another `daemon` name",
    )
    assert found["again"] == (False, "could not run: polite was already stopped: it stopped (SIGTERM)")
    assert found["ghost"] == (
        False,
        "could not run: no daemon called 'ghost' was started (started: polite, stubborn, crashing, finishing)",
    )


@pytest.mark.parametrize("ending", ["passed", "failed", "interrupted"])
def test_no_process_outlives_its_scenario(target, tmp_path, monkeypatch, ending):
    family = "echo $$ > leader.pid; sleep 60 & echo $! > child.pid; wait"
    steps = [
        {"do": "start", "daemon": "family", "command": family},
        {"do": "run", "name": "a moment", "command": "sleep 0.2"},
        {
            "do": "check",
            "expect": {
                "folder": {
                    "mailbox": "support@{domain}",
                    "folder": "inbox",
                    "total_at_least": 0 if ending != "failed" else 1000,
                }
            },
        },
    ]
    if ending == "interrupted":

        def interrupted(world, step):
            if step.do == "check":
                raise KeyboardInterrupt
            return perform(world, step)

        monkeypatch.setattr(runner, "perform", interrupted)
        with pytest.raises(KeyboardInterrupt):
            run_steps(target, tmp_path, steps)
    else:
        result = run_steps(target, tmp_path, steps)
        assert result.passed == (ending == "passed")
        assert result.steps[-1].name == "end: family" and result.steps[-1].detail == (
            "still running when the scenario ended: stopped (SIGTERM); signal SIGTERM (exit code -15)"
        )
    pids = [int((tmp_path / name).read_text()) for name in ("leader.pid", "child.pid")]
    assert not any(alive(pid) for pid in pids)


def test_world_daemons_keeps_each_daemons_app_output_and_place_in_the_request_log(target, tmp_path):
    path = scenario_file(tmp_path, [{"do": "token"}], setup=[PRINTER])
    (tmp_path / "work").mkdir()
    world = prepare(target, load_scenario(path), tmp_path / "work")
    for action in load_scenario(path).setup:
        run_setup(world, action)
    lister = f"sh {DAEMONS / 'list_inbox.sh'} && sleep 30"
    try:
        assert perform(world, Step("start", "start", {"command": lister, "env": QUEUE}, {})).note.startswith("daemon")
        waited = perform(world, Step("wait", "wait", {"until": {"log": {"kind": "all", "count_at_least": 2}}}, {}))
        assert waited.failure is None, waited.failure
        started = world.daemons["daemon"]
        assert started.running and started.last_seq is None and started.app_id == world.apps[0]["app_id"]
        perform(world, Step("token", "ours", {}, {}))  # a request of the runner's own, after the daemon's
        perform(world, Step("stop", "stop", {}, {}))
        perform(world, Step("run", "named run", {"command": "echo once", "daemon": "once"}, {}))
    finally:
        daemons.stop_all(world)
    mine = [r for r in world.admin.log() if started.first_seq < r["seq"] <= started.last_seq]
    assert [(r["kind"], r["status"]) for r in mine[:2]] == [("token", 200), ("graph", 200)]
    assert {r["app_id"] for r in mine} == {started.app_id}
    assert "Printer jammed" in started.stdout() and started.stderr() == ""
    assert started.stdout_path.parent == tmp_path / "work" / "daemons" and not started.running
    assert started.exit_code == -15 and started.ended == "stopped (SIGTERM)"
    once = world.daemons["once"]
    assert (once.exit_code, once.stdout(), once.ended, once.last_seq) == (0, "once\n", "ended", once.first_seq)


@pytest.mark.parametrize(
    ("step", "problem"),
    [
        ({"do": "start", "command": "x", "deamon": "y"}, "steps[0].deamon: unknown key; did you mean 'daemon'?"),
        ({"do": "run"}, "steps[0].command: required when do is 'run'"),
        ({"do": "start", "command": []}, "steps[0].command: expected a non-empty list"),
        ({"do": "start", "command": 5}, "steps[0].command: expected a string or a list, got a whole number"),
        (
            {"do": "run", "command": "x", "env": {"A": ["b"]}},
            "steps[0].env.A: expected a string, a number or true or false, got a list",
        ),
        (
            {"do": "run", "command": "x", "expect": {"exit_cod": 0}},
            "steps[0].expect.exit_cod: unknown key; did you mean 'exit_code'?",
        ),
    ],
)
def test_the_daemon_steps_are_read_strictly(step, problem):
    with pytest.raises(ScenarioError) as info:
        parse_scenario({"name": "x", "steps": [step]})
    assert str(info.value) == f"scenario: {problem}"


def test_a_command_is_a_list_or_a_shell_line_and_here_is_the_scenarios_folder(tmp_path):
    from m365_mock.scenarios.world import World

    world = object.__new__(World)  # only what filling placeholders reads
    world.base_dir, world.workdir, world.tenant_id, world.domain = tmp_path, tmp_path / "work", "t", "d"
    fill = world.fill
    assert daemons.command_line(fill(["python", "{here}/d.py"])) == ["python", f"{tmp_path}/d.py"]
    assert daemons.command_line(fill("sh {here}/d.sh > out")) == ["sh", "-c", f"sh {tmp_path}/d.sh > out"]
    assert fill({"ATTACHMENTS_DIR": "{workdir}/a"}) == {"ATTACHMENTS_DIR": f"{tmp_path}/work/a"}
