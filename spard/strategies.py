"""Strategies as rows of one table: a reward-weight rule, a data-weight rule, an advantage rule.

Every named strategy (``spard``, ``gdpo``, ...) is a :class:`StrategyRules` row of rule names;
``SpardConfig.build()`` looks each name up in its registry below and composes the rule objects
into a :class:`spard.rules.RuleChain`, so "SPARD over decoupled advantages" is a row (or three
config fields), not a branch. ``SpardConfig.reward_rule`` / ``data_rule`` / ``advantage_mode``
override a row's rule when they are not ``auto``. A registry line maps a rule's name to the
rule object built from the config's fields: a new rule is its class and one line here (the
config's choices of rule names are read from these registries).

Presets are named sets of config overrides (``SpardConfig.from_preset``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

from spard.advantages import Decoupled, Summed
from spard.pawa import Pawa
from spard.radr import NoDataWeights, Radr
from spard.rules import AdvantageRule as AdvantageRuleObject
from spard.rules import DataRule as DataRuleObject
from spard.rules import FixedWeights
from spard.rules import RewardRule as RewardRuleObject
from spard.saw import Saw

if TYPE_CHECKING:
    from spard.config import SpardConfig

# The rule names, written once: mypy checks every use, and the registries below must hold
# exactly these (checked at import), so a new rule is one class, its name here and one line.
RewardRule = Literal["fixed", "pawa", "saw"]
DataRule = Literal["none", "radr", "radr_mass"]
AdvantageRule = Literal["sum", "decoupled", "scaled", "decoupled_floor"]

REWARD_RULES: dict[RewardRule, Callable[[SpardConfig], RewardRuleObject]] = {
    "fixed": lambda c: FixedWeights(),
    "pawa": lambda c: Pawa(c.step_size, c.prior_strength, c.prior_mix, c.warmup, c.update_every),
    "saw": lambda c: Saw(c.saw_offsets),
}
DATA_RULES: dict[DataRule, Callable[[SpardConfig], DataRuleObject]] = {
    "none": lambda c: NoDataWeights(),
    "radr": lambda c: Radr(c.data_weight_power, c.data_weight_min, c.data_weight_max),
    "radr_mass": lambda c: Radr(c.data_weight_power, c.data_weight_min, c.data_weight_max, True),
}
ADVANTAGE_RULES: dict[AdvantageRule, Callable[[SpardConfig], AdvantageRuleObject]] = {
    "sum": lambda c: Summed(c.missing_scores, c.scale_rewards, c.advantage_eps),
    "decoupled": lambda c: Decoupled(c.advantage_eps),
    "scaled": lambda c: Summed(c.missing_scores, c.scale_rewards, c.advantage_eps, True),
    "decoupled_floor": lambda c: Decoupled(c.advantage_eps, True),
}
for _names, _registry in (
    (RewardRule, REWARD_RULES),
    (DataRule, DATA_RULES),
    (AdvantageRule, ADVANTAGE_RULES),
):
    if get_args(_names) != tuple(_registry):
        raise RuntimeError(f"rule names {get_args(_names)} and registry {tuple(_registry)} differ")
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
