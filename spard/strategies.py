"""Strategies as rows of one table: a reward-weight rule, a data-weight rule, an advantage rule.

Every named strategy (``spard``, ``gdpo``, ...) is a :class:`StrategyRules` row of rule names;
``SpardConfig.build()`` looks each name up in its registry below and composes the rule objects
into a :class:`spard.rules.RuleChain`, so "SPARD over decoupled advantages" is a row (or three
config fields), not a branch. ``SpardConfig.reward_rule`` / ``data_rule`` / ``advantage_mode``
override a row's rule when they are not ``auto``. A registry line maps a rule's name to its
entry: how the rule object is built from the config's fields, one line saying what it does (the
config's field descriptions are generated from them) and, for an advantage rule, what a
trainer's own advantage code can do with it (the adapters read these, never rule names). A new
rule is its class and one entry here. The registries are read-only.

Presets are named sets of config overrides (``SpardConfig.from_preset``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, get_args

from spard.advantages import Decoupled, GroupDecoupled, Summed
from spard.drw import VERL_GRPO_EPS, HypervolumeScale
from spard.gd2po import ConsensusFiltered
from spard.pawa import Pawa
from spard.radr import NoDataWeights, Radr
from spard.rules import AdvantageRule as AdvantageRuleObject
from spard.rules import DataRule as DataRuleObject
from spard.rules import FixedWeights, RewardScale
from spard.rules import RewardRule as RewardRuleObject
from spard.saw import Saw

if TYPE_CHECKING:
    from spard.config import SpardConfig

# The rule names, written once: mypy checks every use, and the registries below must hold
# exactly these (checked at import), so a new rule is one class, its name here and one entry.
RewardRule = Literal["fixed", "pawa", "saw"]
DataRule = Literal["none", "radr", "radr_mass"]
AdvantageRule = Literal[
    "sum",
    "decoupled",
    "scaled",
    "decoupled_floor",
    "gd2po_hard",
    "gd2po_snr",
    "mo_grpo",
    "drw",
]
# TRL's ``multi_objective_aggregation`` values (ms-swift: ``scale_rewards`` group / gdpo).
TrainerAggregation = Literal["sum_then_normalize", "normalize_then_sum"]

_Rule = TypeVar("_Rule")


@dataclass(frozen=True)
class RuleEntry(Generic[_Rule]):
    """A reward or data rule's registry entry: its builder and what it does, in one line."""

    build: Callable[[SpardConfig], _Rule]
    description: str


@dataclass(frozen=True)
class AdvantageEntry:
    """An advantage rule's registry entry: its builder, what it does, and what a trainer's own
    advantage code can do with it.

    ``trainer_aggregation``: the trainer computes this rule itself from the weights the adapter
    hands it, with this aggregation; None: only the engine can, so the adapters apply the
    engine's advantages. ``weights_over_scales``: those weights are the reward weights divided
    by the objectives' running scales ``s_k``. ``decoupled_variant``: the rule a trainer
    configured for normalise-then-sum (GDPO) runs instead (the rule itself when it already
    normalises each objective on its own); None: there is none, and such a trainer is refused.
    ``reward_scale``: builds the rule that scales every reward of a batch before this one sees
    it (DRW's meta reward), for the rules that take one.
    """

    build: Callable[[SpardConfig], AdvantageRuleObject]
    description: str
    trainer_aggregation: TrainerAggregation | None = None
    weights_over_scales: bool = False
    decoupled_variant: AdvantageRule | None = None
    reward_scale: Callable[[SpardConfig], RewardScale] | None = None


REWARD_RULES: Mapping[RewardRule, RuleEntry[RewardRuleObject]] = MappingProxyType(
    {
        "fixed": RuleEntry(lambda c: FixedWeights(), "the prior weights w0, never moved"),
        "pawa": RuleEntry(
            lambda c: Pawa(c.step_size, c.prior_strength, c.prior_mix, c.warmup, c.update_every),
            "progress-aware, moved every update_every steps",
        ),
        "saw": RuleEntry(
            lambda c: Saw(c.saw_offsets), "each batch's coefficient of variation per objective"
        ),
    }
)
DATA_RULES: Mapping[DataRule, RuleEntry[DataRuleObject]] = MappingProxyType(
    {
        "none": RuleEntry(lambda c: NoDataWeights(), "every prompt weighs 1"),
        "radr": RuleEntry(
            lambda c: Radr(c.data_weight_power, c.data_weight_min, c.data_weight_max),
            "RADR, v_i = sum_k w_k A_ik",
        ),
        "radr_mass": RuleEntry(
            lambda c: Radr(c.data_weight_power, c.data_weight_min, c.data_weight_max, True),
            "RADR with v_i divided by the weight mass prompt i was scored on",
        ),
    }
)
ADVANTAGE_RULES: Mapping[AdvantageRule, AdvantageEntry] = MappingProxyType(
    {
        "sum": AdvantageEntry(
            lambda c: Summed(c.missing_scores, c.scale_rewards, c.advantage_eps),
            "GRPO on the weighted sum",
            trainer_aggregation="sum_then_normalize",
            decoupled_variant="decoupled",
        ),
        "decoupled": AdvantageEntry(
            lambda c: Decoupled(c.advantage_eps),
            "GDPO: per-objective group z-scores, weighted, batch-whitened",
            trainer_aggregation="normalize_then_sum",
            decoupled_variant="decoupled",
        ),
        "scaled": AdvantageEntry(
            lambda c: Summed(c.missing_scores, c.scale_rewards, c.advantage_eps, True),
            "GRPO on the weighted sum of each objective divided by its running scale s_k",
            trainer_aggregation="sum_then_normalize",
            weights_over_scales=True,
            decoupled_variant="decoupled_floor",
        ),
        "decoupled_floor": AdvantageEntry(
            lambda c: Decoupled(c.advantage_eps, True),
            "GDPO with each group's std floored at s_k",
            decoupled_variant="decoupled_floor",
        ),
        "gd2po_hard": AdvantageEntry(
            lambda c: ConsensusFiltered(),
            "GD2PO hard: GDPO without the rollouts whose objectives disagree in sign, each "
            "prompt scaled by the share of its rollouts kept, before the whitening",
            decoupled_variant="gd2po_hard",
        ),
        "gd2po_snr": AdvantageEntry(
            lambda c: ConsensusFiltered(c.agreement_threshold),
            "GD2PO snr: as gd2po_hard, dropping a disagreeing rollout only when its agreement "
            "ratio is below agreement_threshold",
            decoupled_variant="gd2po_snr",
        ),
        "mo_grpo": AdvantageEntry(
            lambda c: GroupDecoupled(c.advantage_eps),
            "MO-GRPO (our reading): per-objective group z-scores, weighted, then normalised in "
            "their group",
            decoupled_variant="mo_grpo",
        ),
        "drw": AdvantageEntry(
            lambda c: Summed(c.missing_scores, c.scale_rewards, VERL_GRPO_EPS),
            "DRW hypervolume: GRPO on the weighted sum times the meta reward 0.5 + 1.5 tanh(c), "
            "c the hypervolume the batch's mean scores add to a buffer of earlier ones",
            reward_scale=lambda c: HypervolumeScale(c.drw_buffer_max),
        ),
    }
)
for _names, _registry in (
    (RewardRule, REWARD_RULES),
    (DataRule, DATA_RULES),
    (AdvantageRule, ADVANTAGE_RULES),
):
    if get_args(_names) != tuple(_registry):
        raise RuntimeError(f"rule names {get_args(_names)} and registry {tuple(_registry)} differ")


def decoupled_variant(rule: AdvantageRule) -> AdvantageRule | None:
    """The rule a trainer configured for normalise-then-sum runs in place of ``rule``; None
    when there is none."""
    return ADVANTAGE_RULES[rule].decoupled_variant


def is_decoupled(rule: AdvantageRule) -> bool:
    """Whether ``rule`` normalises each objective before summing (GDPO's family)."""
    return decoupled_variant(rule) == rule


def describe_rules(registry: Mapping[Any, RuleEntry[Any] | AdvantageEntry]) -> str:
    """``name (what it does) | ...`` for a config field's description."""
    return " | ".join(f"{name} ({entry.description})" for name, entry in registry.items())


StrategyName = Literal[
    "spard",
    "pawa",
    "radr",
    "static",
    "saw",
    "gdpo",
    "spard_gdpo",
    "pawa_gdpo",
    "radr_gdpo",
    "gd2po_hard",
    "gd2po_snr",
    "mo_grpo",
    "drw",
]


@dataclass(frozen=True)
class StrategyRules:
    """How a strategy sets each of the three things a GRPO step needs: the names of its
    reward-weight, data-weight and advantage rules (see the registries above for what each
    does)."""

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
STRATEGY_TABLE: Mapping[StrategyName, StrategyRules] = MappingProxyType(
    {
        "spard": StrategyRules("pawa", "none", "decoupled_floor"),
        "spard_gdpo": StrategyRules("pawa", "radr_mass", "decoupled"),
        "pawa": StrategyRules("pawa", "none", "sum"),
        "pawa_gdpo": StrategyRules("pawa", "none", "decoupled"),
        "radr": StrategyRules("fixed", "radr", "sum"),
        "radr_gdpo": StrategyRules("fixed", "radr", "decoupled"),
        "static": StrategyRules("fixed", "none", "sum"),  # GRPOavg
        "saw": StrategyRules("saw", "none", "sum"),
        "gdpo": StrategyRules("fixed", "none", "decoupled"),
        # The field's methods, each as its authors run it (docs/field-methods.md).
        "gd2po_hard": StrategyRules("fixed", "none", "gd2po_hard"),
        "gd2po_snr": StrategyRules("fixed", "none", "gd2po_snr"),
        "mo_grpo": StrategyRules("fixed", "none", "mo_grpo"),
        "drw": StrategyRules("fixed", "none", "drw"),
    }
)
STRATEGIES: tuple[StrategyName, ...] = tuple(STRATEGY_TABLE)

# Named config overrides. "paper" is our best reading of the authors' public scripts
# (docs/paper-faithfulness.md): curriculum refreshed every 4 steps, weights towards the
# objectives whose gains are reliable ("gain"), data weights on (--dynaopt_data_enabled), summed
# advantages as in ms-swift's GRPO. It is a reading, not the paper's code, which is not public.
PRESETS: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        "default": MappingProxyType({}),
        "paper": MappingProxyType(
            {
                "strategy": "spard",
                "pawa_mode": "gain",
                "update_every": 4,
                "data_rule": "radr_mass",
                "advantage_mode": "sum",
            }
        ),
    }
)
