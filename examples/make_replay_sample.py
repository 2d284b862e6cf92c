"""Write examples/replay_sample.jsonl: 30 logged steps of a synthetic 3-objective GRPO run.

``format`` is easy (saturates within ~10 steps), ``correctness`` is hard (binary, slow), and
``fluency`` is a noisy judge score on a 1-10 scale that stays flat; a quarter of the prompts
come from a chat source with no correctness label (null). Run: python examples/make_replay_sample.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

PROMPTS, ROLLOUTS, STEPS = 8, 8, 30


def main() -> None:
    rng = np.random.default_rng(7)
    path = Path(__file__).with_name("replay_sample.jsonl")
    with path.open("w", encoding="utf-8") as handle:
        handle.write(json.dumps({"objectives": ["correctness", "format", "fluency"]}) + "\n")
        for step in range(STEPS):
            p_format = min(0.98, 0.4 + 0.06 * step)
            p_correct = 0.1 + 0.012 * step
            shape = (PROMPTS, ROLLOUTS)
            correctness = (rng.random(shape) < p_correct).astype(float)
            correctness[: PROMPTS // 4] = np.nan  # chat prompts: no reference answer
            format_ok = (rng.random(shape) < p_format).astype(float)
            fluency = np.clip(np.round(rng.normal(6.0, 1.5, shape)), 1, 10)
            scores = np.stack([correctness, format_ok, fluency], axis=-1)
            listed = np.where(np.isnan(scores), None, scores).tolist()
            handle.write(json.dumps({"step": step, "scores": listed}) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
