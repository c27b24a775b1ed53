"""One import name, `m365_mock`: every package folder is installed under it, and a project with modules of its
own named `client`, `scenarios` and a `conftest.py` uses the plugin, the client and the runner unharmed."""

from __future__ import annotations

import os
import site
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_installed_under_one_name():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {name: ROOT / folder for name, folder in config["package-dir"].items()}
    found = set()
    for name, folder in folders.items():
        for init in folder.rglob("__init__.py"):
            relative = init.parent.relative_to(folder)
            found.add(".".join([name, *relative.parts]))
    assert sorted(config["packages"]) == sorted(found)
    assert all(name == "m365_mock" or name.startswith("m365_mock.") for name in config["packages"])


THROWAWAY_TEST = '''
from m365_mock.scenarios.model import builtin_scenarios, load_scenario
from m365_mock.scenarios.runner import EmulatorTarget, run_scenario

import client
import scenarios


def test_the_projects_own_modules_are_its_own():
    assert client.OWNER == "the project" and scenarios.OWNER == "the project"


def test_plugin_client_and_runner(m365, project_marker):
    assert project_marker == "from the project's conftest"
    m365.deliver("support@contoso.onmicrosoft.com", subject="Parcel lost")
    mail = m365.mail_client()
    subjects = [m["subject"] for m in mail.messages("support@contoso.onmicrosoft.com", limit=50)]
    assert "Parcel lost" in subjects
    result = run_scenario(EmulatorTarget.from_connection(m365.facts), load_scenario(builtin_scenarios()[0]))
    assert result.passed, result
'''


@pytest.mark.slow
def test_a_project_with_its_own_client_and_scenarios_modules_uses_the_package(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(ROOT)],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    env_dir = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    python = env_dir / "bin" / "python"
    target = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    # The wheel goes into the new environment; its dependencies (and pytest) are seen from this one's
    # site-packages through a path file, which does not run this environment's editable-install hooks.
    [wheel] = wheels.glob("*.whl")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    (target / "outer-site.pth").write_text("\n".join(site.getsitepackages()) + "\n")

    project = tmp_path / "project"
    project.mkdir()
    (project / "client.py").write_text('OWNER = "the project"\n')
    (project / "scenarios.py").write_text('OWNER = "the project"\n')
    (project / "conftest.py").write_text(
        "import pytest\n\n\n@pytest.fixture\ndef project_marker():\n    return \"from the project's conftest\"\n"
    )
    (project / "test_daemon.py").write_text(textwrap.dedent(THROWAWAY_TEST))
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("M365_MOCK_", "PYTHON"))}
    run = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"],
        cwd=project,
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    located = subprocess.run(
        [str(python), "-c", "import m365_mock; print(m365_mock.__file__)"],
        capture_output=True,
        text=True,
        env=environment,
        cwd=project,
    )
    assert located.stdout.startswith(str(target)), "the wheel's copy, not the working tree's"
