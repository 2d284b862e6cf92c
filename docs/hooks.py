"""MkDocs hooks: lay out the installed package tree for mkdocstrings, and make the links of
the pages included from the repository (the README as the home page, the efficacy suite's
README) work on the site.

``spard.service``, ``spard.client`` and ``spard.trainer_adapters`` live in top-level folders
that the install maps into ``spard`` (pyproject's package-dir). The API reference is read
statically from ``build/docs-src/spard``: links to ``spard/`` with the mapped folders linked in
under their package names.
"""

from __future__ import annotations

import posixpath
import re
import shutil
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
TREE = ROOT / "build" / "docs-src" / "spard"


def _lay_out() -> None:
    # The [tool.setuptools.package-dir] table ("spard.client" = "client"); tomllib would need
    # Python 3.11, the project supports 3.10.
    table = (ROOT / "pyproject.toml").read_text().split("[tool.setuptools.package-dir]")[1]
    table = table.split("\n[", 1)[0]
    mapping = dict(re.findall(r'"([\w.]+)"\s*=\s*"([\w/]+)"', table))
    shutil.rmtree(TREE.parent, ignore_errors=True)
    TREE.mkdir(parents=True)
    for source in (ROOT / "spard").iterdir():
        (TREE / source.name).symlink_to(source)
    for package, folder in mapping.items():
        if package != "spard":
            (TREE / package.removeprefix("spard.")).symlink_to(ROOT / folder)


_lay_out()

# Site pages whose whole text is a file of the repository (a snippet): its links are written
# relative to that file, not to the page. Every other page's origin is its own file in docs/.
INCLUDED = {"index.md": "README.md", "efficacy.md": "benchmarks/efficacy/README.md"}
LINK = re.compile(r"(\]\()([^)\s#]+)([^)]*\))")


def _origin(file: File) -> str:
    """The repository file whose text (and whose folder, for its links) a page has: its
    own file (in docs/, or a repository file published by on_files), or the included one."""
    own = Path(file.abs_src_path or "").resolve()
    return INCLUDED.get(file.src_uri) or (
        own.relative_to(ROOT).as_posix() if own.is_relative_to(ROOT) else ""
    )


def _targets(origin: str) -> dict[str, str]:
    """Each relative link of ``origin`` and the repository file it names."""
    text = (ROOT / origin).read_text(encoding="utf-8")
    found = {}
    for _, target, _ in LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue  # http:, mailto:
        path = posixpath.normpath(posixpath.join(posixpath.dirname(origin), target))
        if (ROOT / path).is_file():
            found[target] = path
    return found


def _site_path(path: str) -> str:
    """Where a repository file is on the site: docs/ pages at the root, an included file as
    its page, anything else at its repository path (published by on_files)."""
    pages = {origin: page for page, origin in INCLUDED.items()}
    return pages.get(path, path.removeprefix("docs/"))


def on_files(files: Files, config: Any) -> Files:
    """Publish the repository files outside docs/ that a page links to (images, the
    benchmark READMEs, example scripts), and those that a published page links to in turn:
    the site would otherwise answer 404 for them."""
    pending = [f for f in files if f.src_uri.endswith(".md")]
    while pending:
        origin = _origin(pending.pop())
        if not origin or not (ROOT / origin).is_file():
            continue
        for path in _targets(origin).values():
            site = _site_path(path)
            if path.startswith("docs/") or site in INCLUDED or files.get_file_from_path(site):
                continue
            new = File(path, str(ROOT), config["site_dir"], config["use_directory_urls"])
            files.append(new)
            if path.endswith(".md"):
                pending.append(new)
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """Every page's links rewritten from its origin's folder to the page's; an included page
    gets its origin's text first (here rather than by pymdownx.snippets, which runs after
    this hook)."""
    page_path = page.file.src_uri
    origin = _origin(page.file)
    if not origin or not (ROOT / origin).is_file():
        return markdown
    targets = _targets(origin)
    if page_path in INCLUDED:
        markdown = (ROOT / origin).read_text(encoding="utf-8")

    def rewrite(match: re.Match[str]) -> str:
        path = targets.get(match.group(2))
        if path is None:
            return match.group(0)
        here = posixpath.dirname(page_path) or "."
        return match.group(1) + posixpath.relpath(_site_path(path), here) + match.group(3)

    return LINK.sub(rewrite, markdown)
