"""The README's Python examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert blocks
    namespaces = []
    for block in blocks:
        namespace: dict[str, object] = {}
        exec(compile(block, str(README), "exec"), namespace)
        namespaces.append(namespace)
    assert namespaces[0]["state"].steps_applied == 100
    reward_func = next(ns["reward_func"] for ns in namespaces if "reward_func" in ns)
    assert callable(reward_func)  # built without contacting the service
