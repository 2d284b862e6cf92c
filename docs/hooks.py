"""MkDocs hook: lay out the installed package tree for mkdocstrings.

``spard.service``, ``spard.client``, ``spard.trainer_adapters`` and ``spard.efficacy`` live in
top-level folders that the install maps into ``spard`` (pyproject's package-dir). The API
reference is read statically from ``build/docs-src/spard``: links to ``spard/`` with the
mapped folders linked in under their package names.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

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
