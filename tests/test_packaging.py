"""The folder-to-package mapping works in both an editable install and a built wheel."""

from __future__ import annotations

import subprocess
import sys
import time
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


def build_wheel(folder: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(folder)],
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=300,
    )
    (wheel,) = folder.glob("spard-*.whl")
    return wheel


@pytest.mark.parametrize(("module", "folder"), sorted(SUBPACKAGES.items()))
def test_editable_install_maps_top_level_folders(tmp_path, module, folder):
    assert where_imported(module, tmp_path) == ROOT / folder / "__init__.py"


@pytest.mark.slow
def test_wheel_contains_the_mapped_packages_and_imports_from_them(tmp_path):
    wheel = build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in ("spard", *SUBPACKAGES):
        assert f"{module.replace('.', '/')}/__init__.py" in names
    # Every module of the mapped folders ships, nested packages included.
    for folder, package in [("service", "spard/service"), ("client", "spard/client")]:
        for source in (ROOT / folder).rglob("*.py"):
            assert f"{package}/{source.relative_to(ROOT / folder).as_posix()}" in names, source
    assert "spard/efficacy/train.py" in names
    assert "spard/py.typed" in names
    for asset in (ROOT / "service" / "http" / "static").iterdir():  # the curriculum page
        assert f"spard/service/http/static/{asset.name}" in names, asset
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


@pytest.mark.slow
def test_a_wheel_with_the_service_extra_serves(tmp_path):
    """``pip install 'spard[service]'`` from a built wheel, in a fresh venv, then ``spard
    serve``: what a user without the repository does."""
    import httpx
    from servers import free_port

    wheel = build_wheel(tmp_path)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run(
        [
            str(venv / "bin/python"),
            "-m",
            "pip",
            "install",
            "-q",
            f"spard[service] @ {wheel.as_uri()}",
        ],
        check=True,
        timeout=600,
    )
    installed = subprocess.run(
        [str(venv / "bin/python"), "-m", "pip", "list", "--format=freeze"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert "torch" not in installed
    port = free_port()
    server = subprocess.Popen(
        [str(venv / "bin/spard"), "serve", "--port", str(port)],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        for _ in range(100):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        docs = httpx.get(f"http://127.0.0.1:{port}/docs", timeout=5)
        assert docs.status_code == 200
        asset = httpx.get(f"http://127.0.0.1:{port}/docs/assets/swagger-ui-bundle.js", timeout=5)
        assert asset.status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=20)
