"""Hyperparameters of the engine: one frozen pydantic model, every default of algorithm.md.

The symbol each field stands for in ``algorithm.md`` is given in its description, so the
contract and the code can be read side by side.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from functools import cached_property
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from spard.advantages import MissingScores, ScaleRewards
from spard.errors import InputError, did_you_mean
from spard.names import normal_name
from spard.progress import Progress, UtilityMode
from spard.rules import RuleChain
from spard.strategies import (
    ADVANTAGE_RULES,
    DATA_RULES,
    PRESETS,
    REWARD_RULES,
    STRATEGIES,
    STRATEGY_TABLE,
    AdvantageRule,
    DataRule,
    RewardRule,
    StrategyName,
    StrategyRules,
    describe_rules,
)

Strategy = StrategyName
PawaMode = UtilityMode
# "auto" (the strategy's) or a rule's name.
AdvantageMode = Literal["auto", AdvantageRule]
RewardRuleOption = Literal["auto", RewardRule]
DataRuleOption = Literal["auto", DataRule]

# The largest step index (and count) every store keeps exactly: Redis sorted-set scores and
# JSON numbers in most clients are doubles.
MAX_STEP = 2**53 - 1

__all__ = ["STRATEGIES", "SpardConfig", "Strategy", "config_from_overrides", "input_error"]


class SpardConfig(BaseModel):
    """Every hyperparameter of the engine, with the defaults of ``algorithm.md``.

    By default (``strategy="spard"``), PAWA moves reward weight towards the objectives whose
    reliable progress is lowest (mode ``lag``), and advantages are GDPO's per-objective group
    z-scores with each group's std floored at the objective's running dispersion scale (rule
    ``decoupled_floor``). RADR's data weights are off by default: no configuration with them
    won the efficacy suite's selection (``data_rule="radr_mass"`` turns them on).

    Frozen and JSON-round-trippable (``model_dump`` / ``model_validate``); unknown fields are
    rejected so a typo in an override never passes silently.
    """

    # NaN and +/-inf are refused everywhere (JSON writes them as null, so a run holding one
    # could be stored but never loaded again), and every knob has an upper bound far above any
    # useful value but low enough that the engine's arithmetic cannot overflow.
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    strategy: Strategy = Field(
        "spard", description="a row of spard.strategies.STRATEGY_TABLE: " + " | ".join(STRATEGIES)
    )
    reward_rule: RewardRuleOption = Field(
        "auto",
        description=f"reward-weight rule: {describe_rules(REWARD_RULES)}; auto: the strategy's",
    )
    data_rule: DataRuleOption = Field(
        "auto",
        description=f"data-weight rule: {describe_rules(DATA_RULES)}; auto: the strategy's",
    )
    # Chosen by the efficacy suite's leave-one-family-out selection (benchmarks/efficacy/
    # README.md): every lag configuration beat every gain one, in two versions of the suite.
    pawa_mode: PawaMode = Field("lag", description="utility: gain z, absolute |z| or lag -z")

    level_decay: float = Field(0.9, ge=0.0, lt=1.0, description="b_mu, EMA of the level")
    progress_decay: float = Field(0.9, ge=0.0, lt=1.0, description="b_g, EMA of the gains")
    scale_decay: float = Field(0.9, ge=0.0, lt=1.0, description="b_s, EMA of dispersion")
    gain_window: int = Field(16, ge=2, le=4096, description="W, gains kept for the MAD")
    eps_rel: float = Field(1e-3, ge=0.0, le=1e6, description="eps_rel, scale floor of the noise")
    eps: float = Field(1e-8, ge=1e-30, le=1.0, description="eps, absolute floor")

    utility_clip: float = Field(3.0, gt=0.0, le=1e3, description="c, clip of the reliability")
    step_size: float = Field(0.2, gt=0.0, le=1e3, description="eta, exponentiated-gradient step")
    prior_strength: float = Field(1.0, ge=0.0, le=1e6, description="lambda, pull towards w0")
    prior_mix: float = Field(0.05, ge=0.0, le=1.0, description="rho, floor mix with w0")
    warmup: int = Field(
        4, ge=1, le=MAX_STEP, description="observations before an objective can move"
    )
    update_every: int = Field(
        1, ge=1, le=MAX_STEP, description="weight update period, in applied steps"
    )

    data_weight_power: float = Field(0.5, ge=0.0, le=10.0, description="gamma, temper of v_i")
    data_weight_min: float = Field(0.2, ge=0.0, le=1e6, description="d_min, clip of data weights")
    data_weight_max: float = Field(5.0, gt=0.0, le=1e6, description="d_max, clip of data weights")

    advantage_mode: AdvantageMode = Field(
        "auto",
        description=f"advantage rule: {describe_rules(ADVANTAGE_RULES)}; auto: the strategy's",
    )
    missing_scores: MissingScores = Field(
        "renormalise",
        description="summed rules: renormalise the weights over the objectives a rollout was "
        "scored on, or zero (a missing score adds 0, as TRL's and verl's nansum)",
    )
    scale_rewards: ScaleRewards = Field("group", description="as TRL's scale_rewards")
    advantage_eps: float = Field(
        1e-4, gt=0.0, le=1.0, description="std floor of advantages, as TRL"
    )

    # tau of GD2PO's scripts (train_gd2po_snr.sh: TAU defaults to 0.8); their code clamps it to
    # [0, 1], where we refuse it instead.
    agreement_threshold: float = Field(
        0.8,
        ge=0.0,
        le=1.0,
        description="GD2PO snr: tau, the agreement ratio below which a "
        "rollout whose objectives disagree in sign is dropped",
    )
    # Theirs is unbounded; a bound keeps the state's size (and the hypervolume's cost) bounded.
    drw_buffer_max: int = Field(
        64,
        ge=2,
        le=4096,
        description="DRW: most performance points its buffer keeps (the reference and the "
        "newest); fewer with many objectives, where the hypervolume would cost too much",
    )
    saw_offsets: dict[str, Annotated[float, Field(ge=-1e12, le=1e12)]] = Field(
        default_factory=dict, description="SAW: per-objective shift added before the CV"
    )
    replay_window: int = Field(
        8, ge=1, le=10_000, description="applied steps whose results are kept for replay"
    )
    replay_max_prompts: int = Field(
        65_536,
        ge=1,
        le=1_048_576,
        description="most prompts the kept steps may hold together (oldest dropped first; the "
        "last step is always kept): bounds the state's size whatever N and replay_window",
    )

    @field_validator("saw_offsets", mode="after")
    @classmethod
    def _normal_names(cls, offsets: dict[str, float]) -> dict[str, float]:
        return {normal_name(name): value for name, value in offsets.items()}

    @model_validator(mode="after")
    def _check_ranges(self) -> SpardConfig:
        if self.data_weight_min > self.data_weight_max:
            raise ValueError("data_weight_min must not exceed data_weight_max")
        return self

    @classmethod
    def from_preset(cls, preset: str, **overrides: Any) -> SpardConfig:
        """A config from a named preset (``spard.strategies.PRESETS``) plus ``overrides``."""
        return cls.model_validate({**preset_overrides(preset), **overrides})

    @property
    def rules(self) -> StrategyRules:
        """The strategy's row with every ``auto`` rule resolved and every explicit one applied."""
        row = STRATEGY_TABLE[self.strategy]
        reward: RewardRule = row.reward_weights if self.reward_rule == "auto" else self.reward_rule
        data: DataRule = row.data_weights if self.data_rule == "auto" else self.data_rule
        advantage: AdvantageRule = (
            row.advantages if self.advantage_mode == "auto" else self.advantage_mode
        )
        return StrategyRules(reward, data, advantage)

    def build(self) -> RuleChain:
        """The strategy as rule objects, each built by its registry from these fields; built
        once per config (it is frozen) and reused by every step."""
        return self._chain

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy, with ``update`` applied; its rule chain is built again from its own fields
        (pydantic would copy the cached one along with the field values)."""
        copied = super().model_copy(update=update, deep=deep)
        copied.__dict__.pop("_chain", None)
        return copied

    @cached_property
    def _chain(self) -> RuleChain:
        rules = self.rules
        progress = Progress(
            level_decay=self.level_decay,
            progress_decay=self.progress_decay,
            scale_decay=self.scale_decay,
            window=self.gain_window,
            eps_rel=self.eps_rel,
            eps=self.eps,
            utility_mode=self.pawa_mode,
            utility_clip=self.utility_clip,
            warmup=self.warmup,
        )
        advantage = ADVANTAGE_RULES[rules.advantages]
        return RuleChain(
            progress,
            REWARD_RULES[rules.reward_weights].build(self),
            DATA_RULES[rules.data_weights].build(self),
            advantage.build(self),
            None if advantage.reward_scale is None else advantage.reward_scale(self),
        )

    @property
    def resolved_advantage_mode(self) -> AdvantageRule:
        """The advantage rule in force once ``auto`` is resolved from the strategy."""
        return self.rules.advantages


def input_error(
    exc: ValidationError, prefix: str, known: Collection[str] | None = None
) -> InputError:
    """The first error of a pydantic validation as an :class:`InputError` naming
    ``prefix.<location>``; an unknown key gets the closest of ``known`` as a hint."""
    error = exc.errors()[0]
    location = [str(part) for part in error["loc"]]
    while len(location) > 1 and location[-1] in _UNION_TAGS:
        location.pop()  # "group_id.int": which member of a union pydantic tried
    field = ".".join([part for part in [prefix, *location] if part])
    message = error["msg"]
    if error["type"] == "extra_forbidden" and known is not None and len(location) == 1:
        message = f"unknown key{did_you_mean(location[0], known)}; keys: {', '.join(known)}"
    return InputError(f"{field}: {message}", field=field)


_UNION_TAGS = frozenset({"int", "str", "float", "bool", "none", "constrained-str"})


def preset_overrides(preset: Any) -> Mapping[str, Any]:
    """The overrides of a named preset; :class:`InputError` naming ``config.preset`` for a
    name that is not one (or not a string)."""
    if not isinstance(preset, str) or preset not in PRESETS:
        raise InputError(
            f"unknown preset {preset!r}; known: {sorted(PRESETS)}", field="config.preset"
        )
    return PRESETS[preset]


def config_from_overrides(
    overrides: Any, *, strategy: str | None = None, defaults: Mapping[str, Any] | None = None
) -> SpardConfig:
    """A config from a request's ``config`` overrides (over ``defaults``) and its ``strategy``
    shortcut; raises :class:`InputError` naming ``config.<field>``."""
    if not isinstance(overrides, Mapping):
        raise InputError("config must be an object of SpardConfig fields", field="config")
    preset = preset_overrides(overrides.get("preset", "default"))
    explicit = {key: value for key, value in overrides.items() if key != "preset"}
    merged = {**(defaults or {}), **preset, **explicit}
    if strategy is not None:
        if explicit.get("strategy", strategy) != strategy:
            raise InputError("strategy and config.strategy disagree", field="config.strategy")
        merged["strategy"] = strategy
    try:
        return SpardConfig.model_validate(merged)
    except ValidationError as exc:
        raise input_error(exc, "config", [*SpardConfig.model_fields, "preset"]) from None
