"""The folder-to-package mapping works in both an editable install and a built wheel; the
engine's package (the spard/ folder) imports neither the service, the SDK nor the benchmarks,
and the benchmarks do not ship."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUBPACKAGES = {"spard.service": "service", "spard.client": "client"}
SUBPACKAGES["spard.trainer_adapters"] = "trainer_adapters"
# What the engine must not import: the I/O layers over it and the clone-only folders.
NOT_FROM_THE_ENGINE = (*SUBPACKAGES, "spard.efficacy", "benchmarks", "tests")
SAMPLE = ROOT / "examples" / "replay_sample.jsonl"


def imported_modules(source: str, module: str) -> set[str]:
    """Every module ``source`` (the text of ``module``) imports, at any depth (a function's
    lazy import too), relative imports resolved, and ``importlib.import_module("name")``."""
    found: set[str] = set()
    package = module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}".rstrip(".")
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and getattr(node.func, "attr", getattr(node.func, "id", None))
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.add(node.args[0].value)
    return found


def banned(module: str) -> bool:
    """Whether the engine must not import ``module``."""
    return any(module == name or module.startswith(f"{name}.") for name in NOT_FROM_THE_ENGINE)


def forbidden_arrows(modules: Iterable[tuple[str, str]]) -> list[str]:
    """``module -> imported`` for each (module name, source) that imports what the engine
    must not."""
    return sorted(
        f"{module} -> {name}"
        for module, source in modules
        for name in imported_modules(source, module)
        if banned(name)
    )


def engine_sources(folder: Path) -> list[tuple[str, str]]:
    """(module name, source) of every module of the engine's ``spard`` folder as installed
    under ``folder`` (``folder/spard``), the mapped subpackages left out."""
    mapped = {name.removeprefix("spard.") for name in SUBPACKAGES}
    sources = []
    for path in sorted((folder / "spard").rglob("*.py")):
        parts = path.relative_to(folder).with_suffix("").parts
        if len(parts) > 1 and parts[1] in mapped:
            continue
        name = ".".join(parts).removesuffix(".__init__")
        sources.append((name, path.read_text(encoding="utf-8")))
    return sources


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


def test_the_import_scan_sees_every_kind_of_import():
    """The scan the boundary tests rely on: top-level, lazy, relative and by name."""
    source = (
        "import spard.client\n"
        "def f():\n"
        "    from spard.service.settings import Settings\n"
        "    from .. import trainer_adapters\n"
        "    importlib.import_module('benchmarks.efficacy.run')\n"
    )
    assert forbidden_arrows([("spard.cli.x", source)]) == [
        "spard.cli.x -> benchmarks.efficacy.run",
        "spard.cli.x -> spard.client",
        "spard.cli.x -> spard.service.settings",
        "spard.cli.x -> spard.service.settings.Settings",
        "spard.cli.x -> spard.trainer_adapters",
    ]
    clean = "import spard.config\nfrom spard import state"
    assert forbidden_arrows([("spard.engine", clean)]) == []


def test_the_engine_imports_neither_the_service_the_sdk_nor_the_benchmarks():
    """No arrow from the spard/ folder (spard.* but the mapped subpackages) to spard.service,
    spard.client, spard.trainer_adapters, benchmarks or tests: in any import of its source,
    and in what importing every engine module loads."""
    sources = engine_sources(ROOT)
    assert {"spard", "spard.engine", "spard.config"} <= {name for name, _ in sources}
    assert forbidden_arrows(sources) == []
    names = [name for name, _ in sources]
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import importlib, json, sys\n"
            f"for name in {names!r}: importlib.import_module(name)\n"
            "print(json.dumps(sorted(sys.modules)))",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    modules = json.loads(loaded.stdout)
    assert "spard.engine" in modules
    assert [module for module in modules if banned(module)] == []


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
    assert "spard/service/cli/__init__.py" in names  # the `spard` command
    # The benchmarks need torch, which the package does not declare: they run from a clone.
    assert not any(name.startswith(("spard/efficacy/", "spard/cli/")) for name in names)
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
    installed = engine_sources(target)
    assert len(installed) == len(engine_sources(ROOT))
    assert forbidden_arrows(installed) == []
    entry_points = next(target.glob("spard-*.dist-info")) / "entry_points.txt"
    assert "spard = spard.service.cli:main" in entry_points.read_text()


@pytest.mark.slow
def test_the_light_install_runs_the_command(tmp_path):
    """``pip install spard`` without extras (no fastapi, no matplotlib, no torch): the
    ``spard`` command still answers ``--version`` and ``replay``, and ``serve`` and the
    former ``bench`` say what to do instead of a traceback."""
    wheel = build_wheel(tmp_path)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run(
        [str(venv / "bin/python"), "-m", "pip", "install", "-q", str(wheel)],
        check=True,
        timeout=600,
    )

    def spard(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(venv / "bin/spard"), *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=120,
            check=False,
        )

    assert spard("--version").stdout.startswith("spard ")
    replayed = spard("replay", str(SAMPLE))
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout.split()[:2] == ["step", "correctness"]
    for args, message in [
        (["serve"], "the service needs its extra: pip install '.[service]'"),
        (["bench", "--quick"], "run it from a clone: python -m benchmarks.efficacy"),
    ]:
        done = spard(*args)
        assert done.returncode == 2
        assert message in done.stderr
        assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_a_wheel_with_the_service_extra_serves(tmp_path):
    """``pip install 'spard[service]'`` from a built wheel, in a fresh venv, then ``spard
    serve``: what a user without the repository does."""
    import httpx

    from tests.servers import free_port

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
