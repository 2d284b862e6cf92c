"""The documentation site (#26): built strictly, its home page (the README) and the efficacy
page link only to files the site has, it loads nothing from an outside host (no Google
Fonts), and it does not publish its own build hook."""

from __future__ import annotations

import os
import posixpath
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mkdocs")
ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # a full site build, API reference included (~15 s)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent)) or "mkdocs"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [mkdocs, "build", "--strict", "--quiet", "-d", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.mark.parametrize("page", ["index.html", "efficacy/index.html"])
def test_included_pages_link_only_to_what_the_site_has(site, page):
    text = (site / page).read_text()
    folder = posixpath.dirname(page)
    targets = re.findall(r'(?:href|src)="([^"#]+)', text)
    assert any(target.endswith(".png") for target in targets)  # the results figures
    broken = []
    for target in targets:
        if re.match(r"[a-z]+:", target):
            continue
        path = site / posixpath.normpath(posixpath.join(folder, target))
        if not (path.is_file() or (path / "index.html").is_file()):
            broken.append(target)
    assert not broken


def test_the_site_loads_nothing_from_an_outside_host_and_hides_its_hook(site):
    for page in site.rglob("*.html"):
        loads = re.findall(r'<(?:link|script|img)[^>]+(?:href|src)="(https?:)?//', page.read_text())
        assert not loads, page
    assert not list(site.rglob("hooks*"))
