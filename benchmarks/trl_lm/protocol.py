"""The pre-registered protocol of the TRL benchmark (``PREREGISTRATION.md``): arms, seeds, the
settings every run shares, the queue order, and the hash that names each run's result file.

A run's result is ``<arm>-seed<seed>-<hash>.json``; the hash covers every setting below, the
task definition and the placebo's calibration, so a rerun with the same protocol skips the
runs already finished and a changed protocol never mixes with an old one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.trl_lm import tasks

VERSION = 2
PLACEBO_FILE = Path(__file__).with_name("placebo.json")


@dataclass(frozen=True)
class Arm:
    """One arm: which trainer, which judge scale, and (for SpardGRPOTrainer) its rules."""

    trainer: str  # "trl" (GRPOTrainer), "spard" (SpardGRPOTrainer) or "placebo"
    judge_scale: float  # 1: raw 0-5; 5: the judge on [0, 1]
    aggregation: str = "sum_then_normalize"  # TRL's, for the "trl" arms
    strategy: str = "spard"  # SpardGRPOTrainer's spard_strategy
    config: dict[str, Any] = field(default_factory=dict)  # its spard_config
    label: str = ""


ARMS: dict[str, Arm] = {
    "grpo_avg_unit": Arm("trl", tasks.JUDGE_SCALE, label="GRPOavg, judge on [0,1]"),
    "grpo_avg_raw": Arm("trl", 1.0, label="GRPOavg, judge raw 0-5"),
    "gdpo": Arm("trl", 1.0, "normalize_then_sum", label="GDPO (TRL normalize_then_sum)"),
    "spard": Arm("spard", 1.0, strategy="spard", label="SPARD (frozen default)"),
    "saw": Arm("spard", 1.0, strategy="saw", label="SAW"),
    "pawa": Arm("spard", 1.0, strategy="pawa", label="PAWA alone (sum)"),
    "radr": Arm("spard", 1.0, strategy="radr", label="RADR alone (sum)"),
    "floor": Arm(
        "spard",
        1.0,
        strategy="spard",
        config={"reward_rule": "fixed"},
        label="floor (default without PAWA)",
    ),
    "placebo": Arm(
        "placebo",
        1.0,
        strategy="spard",
        config={"reward_rule": "fixed", "data_rule": "radr"},
        label="placebo (random walk + shuffled RADR)",
    ),
}
# Added after the default was frozen and the evaluation started (issue 27; PREREGISTRATION.md,
# "Added after the freeze"): the field's methods, each the engine's strategy of that name with
# its authors' hyperparameters. Not in ARMS, so the frozen protocol's hash is unchanged; their
# results are named by field_hash().
FIELD_ARMS: dict[str, Arm] = {
    name: Arm("spard", 1.0, strategy=name, label=f"{label} (added after the freeze)")
    for name, label in (
        ("gd2po_hard", "GD2PO hard"),
        ("gd2po_snr", "GD2PO snr"),
        ("drw", "DRW hypervolume"),
        ("mo_grpo", "MO-GRPO (our reading)"),
    )
}
FIELD_SEEDS = tuple(range(12))
ALL_ARMS: dict[str, Arm] = {**ARMS, **FIELD_ARMS}
PRIMARY_ARMS = ("spard", "gdpo", "grpo_avg_unit")
SECONDARY_ARMS = ("grpo_avg_raw", "saw", "pawa", "radr", "floor", "placebo")
PRIMARY_SEEDS = tuple(range(24))
SECONDARY_SEEDS = tuple(range(12))
DEV_SEEDS = tuple(range(1000, 1010))  # development and calibration only, never evaluated
PRIMARY_COMPARISONS = (("spard", "gdpo"), ("spard", "grpo_avg_unit"))


@dataclass(frozen=True)
class Settings:
    """What every run of every arm shares."""

    steps: int = 160
    eval_every: int = 20  # held-out evaluation every this many steps, at 0 and at the end
    eval_samples: int = 8  # completions per held-out prompt per evaluation
    per_device_train_batch_size: int = 32
    gradient_accumulation_steps: int = 2
    steps_per_generation: int = 2  # one generation batch of 8 prompts x 8 per optimizer step
    num_generations: int = 8
    learning_rate: float = 5e-4
    temperature: float = 1.0
    judge_noise: float = tasks.JUDGE_NOISE
    max_completion_tokens: int = tasks.MAX_COMPLETION_TOKENS


SMOKE = Settings(steps=5, eval_every=1, eval_samples=2)


def placebo_calibration() -> dict[str, Any]:
    """The placebo's random walk, measured from SPARD's development runs (``placebo.json``)."""
    if not PLACEBO_FILE.exists():
        return {"rho": 0.95, "sigma": 0.05, "source": "uncalibrated default"}
    calibration: dict[str, Any] = json.loads(PLACEBO_FILE.read_text())
    return calibration


def description(settings: Settings, policy_key: str) -> dict[str, Any]:
    """Everything a run's result depends on but its arm and seed."""
    return {
        "version": VERSION,
        "settings": asdict(settings),
        "arms": {name: asdict(arm) for name, arm in ARMS.items()},
        "policy": policy_key,
        "held_out": [prompt["prompt"] for prompt in tasks.held_out_prompts()],
        "length_targets": tasks.LENGTH_TARGETS,
        "placebo": placebo_calibration(),
    }


def protocol_hash(settings: Settings, policy_key: str) -> str:
    """The short hash that names result files of this protocol."""
    text = json.dumps(description(settings, policy_key), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def field_description(settings: Settings, policy_key: str) -> dict[str, Any]:
    """The frozen protocol's description plus the field arms: they share every setting."""
    described = description(settings, policy_key)
    described["field_arms"] = {name: asdict(arm) for name, arm in FIELD_ARMS.items()}
    return described


def field_hash(settings: Settings, policy_key: str) -> str:
    """The short hash that names the field arms' result files."""
    text = json.dumps(field_description(settings, policy_key), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def result_name(arm: str, seed: int, digest: str) -> str:
    return f"{arm}-seed{seed}-{digest}.json"


def evaluation_queue() -> list[tuple[str, int]]:
    """Every (arm, seed) of the evaluation: the primary arms' seeds first, seed by seed (so a
    partial result stays paired), then the secondary arms' seeds, seed by seed."""
    jobs = [(arm, seed) for seed in PRIMARY_SEEDS for arm in PRIMARY_ARMS]
    jobs += [(arm, seed) for seed in SECONDARY_SEEDS for arm in SECONDARY_ARMS]
    return jobs


def field_queue() -> list[tuple[str, int]]:
    """Every (arm, seed) of the field arms, seed by seed."""
    return [(arm, seed) for seed in FIELD_SEEDS for arm in FIELD_ARMS]
