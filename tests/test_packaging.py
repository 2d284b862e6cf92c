"""The folder-to-package mapping works in both an editable install and a built wheel."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUBPACKAGES = {"spard.service": "service", "spard.client": "client"}
SUBPACKAGES["spard.trainer_adapters"] = "trainer_adapters"


def where_imported(module: str, cwd: Path, pythonpath: str | None = None) -> Path:
    env = {"PYTHONPATH": pythonpath} if pythonpath else {}
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}; print({module}.__file__)"],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", **env},
        timeout=60,
        check=True,
    )
    return Path(done.stdout.strip())


@pytest.mark.parametrize(("module", "folder"), sorted(SUBPACKAGES.items()))
def test_editable_install_maps_top_level_folders(tmp_path, module, folder):
    assert where_imported(module, tmp_path) == ROOT / folder / "__init__.py"


@pytest.mark.slow
def test_wheel_contains_the_mapped_packages_and_imports_from_them(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("spard-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in ("spard", *SUBPACKAGES):
        assert f"{module.replace('.', '/')}/__init__.py" in names
    # Every module of the mapped folders ships, nested packages included.
    for folder, package in [("service", "spard/service"), ("client", "spard/client")]:
        for source in (ROOT / folder).rglob("*.py"):
            assert f"{package}/{source.relative_to(ROOT / folder).as_posix()}" in names, source
    assert "spard/efficacy/train.py" in names
    assert "spard/py.typed" in names
    assert not any(name.startswith(("tests/", "service/", "benchmarks/")) for name in names)
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        timeout=300,
    )
    for module in SUBPACKAGES:
        location = where_imported(module, tmp_path, pythonpath=str(target))
        assert location.is_relative_to(target)
