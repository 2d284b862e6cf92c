"""A verl `reward.custom_reward_function` file for SPARD: one scorer per objective.

verl loads this file (reward.custom_reward_function.path=examples/verl_reward.py,
reward.custom_reward_function.name=compute_score). Each scorer gets verl's arguments and returns
a float, or None where the objective does not apply.
"""

from __future__ import annotations

import re
from typing import Any

from spard.trainer_adapters.verl import objective_reward


def correctness(solution_str: str, ground_truth: Any, **_: Any) -> float | None:
    if ground_truth is None:  # a prompt source without reference answers
        return None
    found = re.findall(r"-?\d+(?:\.\d+)?", solution_str)
    return float(bool(found) and found[-1] == str(ground_truth))


def format_ok(solution_str: str, **_: Any) -> float:
    return float("####" in solution_str)


def brevity(solution_str: str, **_: Any) -> float:
    return 1.0 / (1.0 + len(solution_str) / 512)


compute_score = objective_reward(
    {"correctness": correctness, "format": format_ok, "brevity": brevity}
)
