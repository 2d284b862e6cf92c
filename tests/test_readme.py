"""The README's Python examples run as written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from servers import ServiceProcess

from spard.client import SpardClient

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


def test_the_readmes_openrlhf_reward_function_scores_through_a_real_service():
    block = next(
        b
        for b in re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
        if "make_reward_func" in b
    )
    server = ServiceProcess(env={"SPARD_AUTH_DISABLED": "true"}).start()
    try:
        with SpardClient(server.url) as client:
            client.create_run(
                ["correctness", "format"], run_id="my-run", streaming={"group_size": 2}
            )
        namespace: dict[str, Any] = {}
        exec(
            compile(block.replace("http://127.0.0.1:8000", server.url), "README", "exec"), namespace
        )
        prompts = ["2+2=", "2+2="]
        answer = namespace["reward_func"](["2+2= <answer>4", "2+2= 5"], prompts, [4, 4])
        # Before any step the weights are the prior (equal): the mean of the two scores.
        assert answer["rewards"].tolist() == [1.0, 0.0]
        assert answer["extra_logs"]["correctness"].tolist() == [1.0, 0.0]
        assert answer["extra_logs"]["spard_weight/format"].tolist() == [0.5, 0.5]
        with SpardClient(server.url) as client:  # both samples were stored: one group of 2
            commit = client.commit("my-run", 0)
        assert commit.observations == 2
        assert commit.sample_weights.shape == (1,)
    finally:
        server.stop()


def test_the_knobs_table_lists_every_config_field():
    import spard

    table = README.read_text().split("## Knobs", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"`([a-z_]+)`", table))
    assert set(spard.SpardConfig.model_fields) <= listed
