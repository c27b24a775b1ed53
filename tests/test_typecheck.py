"""The type checker is clean over the whole package (the server, the reference client and the scenarios).

mypy reads modules by folder, and the repository's folders install under one name through setuptools'
package-dir; so the check runs over a tree of links that puts each folder where its import name says.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def linked_package_tree(into: Path) -> Path:
    """`into/m365_mock` with the package-dir layout of pyproject.toml, made of links to the real files."""
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    top = into / "m365_mock"
    top.mkdir(parents=True)
    nested = {name.split(".", 1)[1] for name in mapping if name != "m365_mock"}
    for entry in (ROOT / mapping["m365_mock"]).iterdir():
        if entry.name not in nested and entry.name != "__pycache__":
            (top / entry.name).symlink_to(entry)
    for name in nested:
        (top / name).symlink_to(ROOT / mapping[f"m365_mock.{name}"])
    return top


def test_the_type_checker_is_clean(tmp_path):
    package = linked_package_tree(tmp_path / "tree")
    cache = ROOT / ".mypy_cache"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(cache),
            "-p",
            "m365_mock",
        ],
        cwd=tmp_path / "tree",
        env={**os.environ, "MYPYPATH": str(tmp_path / "tree")},
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = result.stdout.replace(str(package), "m365_mock")
    assert result.returncode == 0, report[-6000:]
