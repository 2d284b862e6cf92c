"""The arms of the suite: baselines, the frozen default, and the candidates the selection saw.

``CANDIDATES`` is every SPARD configuration the leave-one-family-out selection chose among
(``python -m spard.efficacy.select``); ``SUITE_ARMS`` what ``spard bench --suite`` compares on
the evaluation seeds. Every arm ever tried is listed here and reported, losers included.
"""

from __future__ import annotations

from spard.efficacy.train import Arm
from spard.strategies import PRESETS

BASELINES = (Arm("static", "static"), Arm("gdpo", "gdpo"), Arm("saw", "saw"))

CANDIDATES = (
    Arm(
        "spard_sum-lag", "spard", {"advantage_mode": "sum", "pawa_mode": "lag", "data_rule": "radr"}
    ),
    Arm(
        "spard_sum-gain",
        "spard",
        {"advantage_mode": "sum", "pawa_mode": "gain", "data_rule": "radr"},
    ),
    Arm(
        "spard_sum-lag-mass",
        "spard",
        {"advantage_mode": "sum", "pawa_mode": "lag", "data_rule": "radr_mass"},
    ),
    Arm("spard_gdpo-lag", "spard_gdpo", {"pawa_mode": "lag", "data_rule": "radr"}),
    Arm("spard_gdpo-gain", "spard_gdpo", {"pawa_mode": "gain", "data_rule": "radr"}),
    Arm("spard_gdpo-absolute", "spard_gdpo", {"pawa_mode": "absolute", "data_rule": "radr"}),
    Arm("spard_gdpo-lag-mass", "spard_gdpo", {"pawa_mode": "lag", "data_rule": "radr_mass"}),
    Arm(
        "spard_gdpo-lag-every4",
        "spard_gdpo",
        {"pawa_mode": "lag", "update_every": 4, "data_rule": "radr"},
    ),
    Arm(
        "spard_gdpo-lag-gamma1",
        "spard_gdpo",
        {"pawa_mode": "lag", "data_weight_power": 1.0, "data_rule": "radr"},
    ),
    Arm("pawa_gdpo-lag", "pawa_gdpo", {"pawa_mode": "lag"}),
    Arm("radr_gdpo", "radr_gdpo"),
    # What the paper preset was when screened (data_rule pinned: the preset follows the default).
    Arm(
        "paper",
        "spard",
        {"advantage_mode": "sum", "pawa_mode": "gain", "update_every": 4, "data_rule": "radr"},
    ),
    # Added after the first screening pass (every earlier candidate kept): PAWA alone over
    # summed advantages, and the leader with a milder data-weight temper or a period of 4.
    Arm("pawa_sum-lag", "pawa", {"pawa_mode": "lag"}),
    Arm(
        "spard_sum-lag-mass-gamma0.25",
        "spard",
        {"pawa_mode": "lag", "data_rule": "radr_mass", "data_weight_power": 0.25},
    ),
    Arm(
        "spard_sum-lag-mass-every4",
        "spard",
        {"pawa_mode": "lag", "data_rule": "radr_mass", "update_every": 4},
    ),
)
ARMS = {arm.name: arm for arm in (*BASELINES, *CANDIDATES)}

# What `spard bench` compares on the evaluation seeds: the baselines, the frozen default
# (`spard`, no overrides, so it follows SpardConfig), the previous default (PAWA lag + plain
# RADR), the paper preset as it stands, and the default's two halves.
SUITE_ARMS = (
    *BASELINES,
    Arm("spard", "spard"),
    ARMS["spard_sum-lag"],
    Arm("preset-paper", "spard", dict(PRESETS["paper"])),
    ARMS["pawa_sum-lag"],
    Arm("radr-mass", "radr", {"data_rule": "radr_mass"}),
)
ARMS = {**ARMS, **{arm.name: arm for arm in SUITE_ARMS}}
