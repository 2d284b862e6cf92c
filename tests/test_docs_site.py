"""The documentation site (#26): built strictly (a link to a missing file fails it), every
page's links and images resolve on the site (the README as the home page, the efficacy page,
docs pages linking to files outside docs/), it loads nothing from an outside host (no Google
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


def local_targets(site: Path, page: Path) -> list[tuple[str, Path]]:
    """Each link and image of a built page that stays on the site, and the file it names
    (``/x`` from the site's root, as the 404 page writes them)."""
    folder = posixpath.dirname(page.relative_to(site).as_posix())
    found = []
    for target in re.findall(r'(?:href|src)="([^"#?]*)', page.read_text()):
        if not target or re.match(r"[a-z]+:", target) or target.startswith("//"):
            continue
        base = "" if target.startswith("/") else folder
        found.append((target, site / posixpath.normpath(posixpath.join(base, target.lstrip("/")))))
    return found


def test_every_page_links_only_to_what_the_site_has(site):
    pages = sorted(site.rglob("*.html"))
    assert len(pages) > 10
    broken = [
        (page.relative_to(site).as_posix(), target)
        for page in pages
        for target, path in local_targets(site, page)
        if not (path.is_file() or (path / "index.html").is_file())
    ]
    assert not broken


@pytest.mark.parametrize(
    ("page", "target"),
    [
        ("index.html", ".png"),  # the README's results figure
        ("efficacy/index.html", ".png"),
        ("service/index.html", "deploy/grafana/dashboard.png"),  # a file outside docs/
        ("paper-faithfulness/index.html", "efficacy/"),  # a link to an included page
    ],
)
def test_links_out_of_docs_are_published(site, page, target):
    assert any(link.endswith(target) for link, _ in local_targets(site, site / page))


def test_the_site_loads_nothing_from_an_outside_host_and_hides_its_hook(site):
    for page in site.rglob("*.html"):
        loads = re.findall(r'<(?:link|script|img)[^>]+(?:href|src)="(https?:)?//', page.read_text())
        assert not loads, page
    assert not list(site.rglob("hooks*"))
