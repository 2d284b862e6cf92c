"""Running ms-swift's real GRPO for the adapter's tests: ``swift rlhf``'s own entry point on a
tiny random Qwen2 built from a config, a locally built tokenizer, toy reward plugins."""

from __future__ import annotations

from pathlib import Path

from swift.pipelines import rlhf_main

from spard.trainer_adapters import swift as spard_swift

G = 4
REWARDS_PLUGIN = """
from swift.rewards import ORM, orms


class HasVowel(ORM):
    def __call__(self, completions, **kwargs):
        return [float(any(c in "aeiou" for c in text)) for text in completions]


class LengthScore(ORM):
    def __call__(self, completions, **kwargs):
        return [min(len(text), 8) / 8.0 for text in completions]


class Digits(ORM):
    def __call__(self, completions, **kwargs):
        # Not applicable to completions that start with a space: a missing score.
        return [
            None if t.startswith(" ") else float(sum(c.isdigit() for c in t)) for t in completions
        ]


class NoneAtFirst(ORM):
    calls = 0

    def __call__(self, completions, **kwargs):
        # No reward at all for the first batch, then some.
        NoneAtFirst.calls += 1
        if NoneAtFirst.calls == 1:
            return [None] * len(completions)
        return [float(len(t) % 3) for t in completions]


orms["has_vowel"] = HasVowel
orms["length_score"] = LengthScore
orms["digits"] = Digits
orms["none_at_first"] = NoneAtFirst
"""


def swift_rlhf(
    folder: Path,
    out: Path,
    *extra: str,
    rewards: tuple[str, ...] = ("has_vowel", "length_score", "digits"),
    spard: bool = True,
) -> None:
    """``swift rlhf --rlhf_type grpo`` as the authors ran it, plus SPARD's plugin file (without
    it with ``spard=False``: ms-swift's own trainer)."""
    plugins = [str(folder / "rewards_plugin.py")]
    if spard:
        plugins.append(str(spard_swift.plugin_path()))
    rlhf_main(
        [
            *("--rlhf_type", "grpo", "--model", str(folder / "model"), "--model_type", "qwen2"),
            *("--template", "default", "--dataset", str(folder / "data.jsonl")),
            *("--external_plugins", *plugins),
            *("--num_generations", str(G), "--per_device_train_batch_size", "8"),
            *("--max_completion_length", "8", "--learning_rate", "1e-3", "--logging_steps", "1"),
            *("--output_dir", str(out), "--add_version", "false", "--report_to", "none"),
            *("--dynamic_sample", "true", "--save_steps", "2", "--torch_dtype", "float32"),
            *("--use_hf", "true", "--tuner_type", "full", "--split_dataset_ratio", "0"),
            *("--dataloader_num_workers", "0", "--seed", "0", "--reward_funcs", *rewards),
            *extra,
        ]
    )
