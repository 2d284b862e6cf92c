"""Strategies as rows of one table: a reward-weight rule, a data-weight rule, an advantage rule.

Every named strategy (``spard``, ``gdpo``, ...) is a :class:`StrategyRules` row; the engine
reads the three rules and never the name, so "SPARD over decoupled advantages" is a row (or
three config fields), not a branch. ``SpardConfig.reward_rule`` / ``data_rule`` /
``advantage_mode`` override a row's rule when they are not ``auto``.

Presets are named sets of config overrides (``SpardConfig.from_preset``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

RewardRule = Literal["fixed", "pawa", "saw"]
DataRule = Literal["none", "radr", "radr_mass"]
AdvantageRule = Literal["sum", "decoupled", "scaled", "decoupled_floor"]
StrategyName = Literal[
    "spard", "pawa", "radr", "static", "saw", "gdpo", "spard_gdpo", "pawa_gdpo", "radr_gdpo"
]


@dataclass(frozen=True)
class StrategyRules:
    """How a strategy sets each of the three things a GRPO step needs.

    ``reward_weights``: ``fixed`` (the prior w0), ``pawa`` (progress-aware, moved every
    ``update_every`` steps) or ``saw`` (coefficient of variation of the batch).
    ``data_weights``: ``none`` (all 1), ``radr`` (``v_i = sum_k w_k A_ik``) or ``radr_mass``
    (``v_i`` divided by the weight mass of the objectives scored for prompt i, so a prompt is not
    favoured for being scored on more objectives). ``advantages``: ``sum`` (GRPO on the weighted
    sum), ``decoupled`` (GDPO: per-objective group z-scores, weighted, batch-whitened),
    ``scaled`` (GRPO on the weighted sum of each objective divided by its running dispersion
    scale ``s_k``: GDPO's scale equalisation without its per-group division) or
    ``decoupled_floor`` (GDPO with each group's std floored at ``s_k``).
    """

    reward_weights: RewardRule
    data_weights: DataRule
    advantages: AdvantageRule

    def describe(self) -> str:
        """One line for tables and logs, e.g. ``pawa weights + radr data weights, sum``."""
        data = "" if self.data_weights == "none" else f" + {self.data_weights} data weights"
        return f"{self.reward_weights} reward weights{data}, {self.advantages} advantages"


# The rows; the `*_gdpo` rows put PAWA and/or RADR over GDPO's decoupled advantages.
# `spard`'s rules are the default frozen by the efficacy suite's pre-registered
# leave-one-family-out selection (benchmarks/efficacy/results/v3/selection/selection.md,
# chosen in 14 of 14 folds): PAWA reward weights over GDPO advantages whose group std is
# floored at the objective's running scale, and no RADR (adding RADR lowered two of the three
# PAWA configurations there; `data_rule="radr_mass"` adds it). `spard_gdpo` is PAWA + RADR
# over plain GDPO.
STRATEGY_TABLE: dict[StrategyName, StrategyRules] = {
    "spard": StrategyRules("pawa", "none", "decoupled_floor"),
    "spard_gdpo": StrategyRules("pawa", "radr_mass", "decoupled"),
    "pawa": StrategyRules("pawa", "none", "sum"),
    "pawa_gdpo": StrategyRules("pawa", "none", "decoupled"),
    "radr": StrategyRules("fixed", "radr", "sum"),
    "radr_gdpo": StrategyRules("fixed", "radr", "decoupled"),
    "static": StrategyRules("fixed", "none", "sum"),  # GRPOavg
    "saw": StrategyRules("saw", "none", "sum"),
    "gdpo": StrategyRules("fixed", "none", "decoupled"),
}
STRATEGIES: tuple[StrategyName, ...] = tuple(STRATEGY_TABLE)

# Named config overrides. "paper" is our best reading of the authors' public scripts
# (docs/paper-faithfulness.md): curriculum refreshed every 4 steps, weights towards the
# objectives whose gains are reliable ("gain"), data weights on (--dynaopt_data_enabled), summed
# advantages as in ms-swift's GRPO. It is a reading, not the paper's code, which is not public.
PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "paper": {
        "strategy": "spard",
        "pawa_mode": "gain",
        "update_every": 4,
        "data_rule": "radr_mass",
        "advantage_mode": "sum",
    },
}
