"""PNG plots of a curriculum's trajectories (needs the ``plot`` extra: matplotlib)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from spard.config import SpardConfig
from spard.engine import StepResult
from spard.errors import InputError


def require_matplotlib() -> Any:
    """``matplotlib.pyplot`` on the Agg backend; a one-line :class:`InputError` without it."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError(
            "plotting needs matplotlib: pip install '.[plot]' in a clone of spard", field="plot"
        ) from None
    return plt


def plot_trajectories(
    results: Sequence[StepResult], path: Path, *, title: str, config: SpardConfig
) -> None:
    """Write three panels to ``path``: reward weights; each objective's batch mean, min-max
    scaled per objective so judges on 0-10 and rewards on 0-1 share one axis; the spread of
    the data weights. The warmup (weights held at the prior) is shaded."""
    plt = require_matplotlib()
    steps = np.array([result.step for result in results])
    names = results[0].objectives
    weights = np.array([result.reward_weights for result in results])
    means = np.array(
        [[np.nan if (m := r.stats[n]["mean"]) is None else m for n in names] for r in results]
    )
    low, high = np.nanmin(means, axis=0), np.nanmax(means, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        scaled = np.where(high > low, (means - low) / (high - low), 0.5)
    quantiles = np.array(
        [
            np.quantile(r.sample_weights[~r.zero_signal], [0.1, 0.5, 0.9])
            if (~r.zero_signal).any()
            else [np.nan] * 3
            for r in results
        ]
    )
    figure, (top, middle, bottom) = plt.subplots(3, 1, figsize=(8, 8), sharex=True)
    for k, name in enumerate(names):
        top.plot(steps, weights[:, k], label=name)
        middle.plot(steps, scaled[:, k], label=f"{name} [{low[k]:.3g}, {high[k]:.3g}]")
    bottom.plot(steps, quantiles[:, 1], color="black", label="median")
    bottom.fill_between(steps, quantiles[:, 0], quantiles[:, 2], alpha=0.3, label="p10-p90")
    warmup_end = steps[min(config.warmup, len(steps)) - 1]
    for axis in (top, middle, bottom):
        axis.axvspan(steps[0], warmup_end, color="grey", alpha=0.15, lw=0)
    top.set_ylabel("reward weight")
    top.set_title(f"{title}: strategy {config.strategy}, pawa_mode {config.pawa_mode}")
    top.legend(loc="best", fontsize="small")
    middle.set_ylabel("batch mean (min-max per objective)")
    middle.legend(loc="best", fontsize="x-small")
    bottom.set_ylabel("data weights (informative)")
    bottom.set_xlabel("step (grey: warmup, weights held at the prior)")
    bottom.legend(loc="best", fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
