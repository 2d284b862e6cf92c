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
    engine = next(ns for ns in namespaces if "state" in ns)
    assert engine["state"].steps_applied == 100
    first_run = next(ns for ns in namespaces if "outcome" in ns)
    assert first_run["outcome"].step == 4
    reward_func = next(ns["reward_func"] for ns in namespaces if "reward_func" in ns)
    assert callable(reward_func)  # built without contacting the service


def test_the_knobs_table_lists_every_config_field():
    import spard

    table = README.read_text().split("## Knobs", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"`([a-z_]+)`", table))
    assert set(spard.SpardConfig.model_fields) <= listed
