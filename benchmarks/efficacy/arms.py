"""The arms of the suite: baselines as trainers compute them, and the candidates for the default.

``CANDIDATES`` is every configuration the leave-one-family-out selection chooses among
(``python -m benchmarks.efficacy.select``); ``SUITE_ARMS`` what ``python -m benchmarks.efficacy
--suite`` compares on the evaluation seeds. Every arm ever tried is listed here and reported,
losers included. See ``PREREGISTRATION.md`` for the endpoint and the selection rule.
"""

from __future__ import annotations

from benchmarks.efficacy.train import Arm

# As TRL 1.16 computes them (tests/test_efficacy.py checks against TRL's own code): GRPOavg
# sums with a missing score as 0 (nansum), GDPO is normalize_then_sum; SAW sums likewise.
BASELINES = (
    Arm("static", "static", {"missing_scores": "zero"}),
    Arm("gdpo", "gdpo"),
    Arm("saw", "saw", {"missing_scores": "zero"}),
)
# GRPOavg at its best: every reward rescaled to [0, 1] by its known range first, what a
# practitioner who knows the units does by hand. Not a candidate (the engine cannot know units).
STATIC_RESCALED = Arm("static_rescaled", "static", {"missing_scores": "zero"}, rescale=True)

_LAG = {"pawa_mode": "lag"}
CANDIDATES = (
    # The default before this suite: PAWA lag, mass-normalised RADR, summed advantages.
    Arm("spard_sum", "spard", {**_LAG, "data_rule": "radr_mass", "advantage_mode": "sum"}),
    Arm("spard_gdpo", "spard_gdpo", {**_LAG, "data_rule": "radr_mass"}),
    Arm("pawa_gdpo", "pawa_gdpo", _LAG),
    # Scale equalisation by the running batch-level dispersion s_k (the engine's own statistic).
    Arm("spard_scaled", "spard", {**_LAG, "data_rule": "radr_mass", "advantage_mode": "scaled"}),
    Arm("pawa_scaled", "pawa", {**_LAG, "advantage_mode": "scaled"}),
    Arm("radr_scaled", "radr", {"data_rule": "radr_mass", "advantage_mode": "scaled"}),
    Arm("scaled", "static", {"advantage_mode": "scaled"}),
    # GDPO with each group's std floored at s_k: no blow-up of a near-constant noisy group.
    Arm(
        "spard_floor",
        "spard",
        {**_LAG, "data_rule": "radr_mass", "advantage_mode": "decoupled_floor"},
    ),
    Arm("pawa_floor", "pawa", {**_LAG, "advantage_mode": "decoupled_floor"}),
    Arm("floor", "static", {"advantage_mode": "decoupled_floor"}),
    # The authors' period of 4, and the paper reading of PAWA (gain), over scaled advantages.
    Arm(
        "spard_scaled-every4",
        "spard",
        {**_LAG, "data_rule": "radr_mass", "advantage_mode": "scaled", "update_every": 4},
    ),
    Arm(
        "spard_scaled-gain",
        "spard",
        {"pawa_mode": "gain", "data_rule": "radr_mass", "advantage_mode": "scaled"},
    ),
)
ARMS = {arm.name: arm for arm in (*BASELINES, STATIC_RESCALED, *CANDIDATES)}

# The candidate the engine's default (`strategy="spard"` with no overrides) is, as frozen by
# the last selection (results/v3/selection/selection.md).
FROZEN = "pawa_floor"


def _without(arm: Arm, name: str, **overrides: str) -> Arm:
    return Arm(name, arm.strategy, {**arm.overrides, **overrides})


def suite_arms(frozen: str = FROZEN) -> tuple[Arm, ...]:
    """What ``python -m benchmarks.efficacy --suite`` runs on the evaluation seeds
    (pre-registered): the baselines, GRPOavg on rescaled rewards, the engine's default as it
    ships (``spard``), the default before this suite (``spard_sum``), and the frozen candidate
    without its data weights and without its reward weights (the ablation)."""
    chosen = ARMS[frozen]
    arms = [*BASELINES, STATIC_RESCALED, Arm("spard", "spard"), ARMS["spard_sum"]]
    if chosen.overrides.get("data_rule", "none") == "none" and chosen.strategy in (
        "pawa",
        "static",
    ):
        # Added after the freeze (the frozen candidate has no RADR, so "without RADR" is the
        # default itself): the default with RADR added, to show what RADR does on it.
        arms.append(_without(chosen, "default-with-radr", data_rule="radr_mass"))
    else:
        arms.append(_without(chosen, "default-without-radr", data_rule="none"))
    arms.append(_without(chosen, "default-without-pawa", reward_rule="fixed"))
    return tuple({arm.name: arm for arm in arms}.values())


SUITE_ARMS = suite_arms()

# The field's methods (issue 27), added after the default was frozen: each with its authors'
# hyperparameters (docs/field-methods.md), run on the evaluation seeds only, never screened and
# never a candidate for the default (PREREGISTRATION.md, "Added after the default was frozen").
FIELD_ARMS = (
    Arm("gd2po_hard", "gd2po_hard"),
    Arm("gd2po_snr", "gd2po_snr"),
    Arm("drw", "drw"),
    Arm("mo_grpo", "mo_grpo"),
)
ARMS = {**ARMS, **{arm.name: arm for arm in (*SUITE_ARMS, *FIELD_ARMS)}}
