"""PNG plots of a curriculum's trajectories (needs the ``plot`` extra: matplotlib)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from spard.engine import StepResult
from spard.errors import InputError


def plot_trajectories(results: Sequence[StepResult], path: Path, *, title: str) -> None:
    """Write reward weights and batch means per objective over the steps to ``path``."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError(
            "plotting needs matplotlib: pip install 'spard[plot]'", field="plot"
        ) from None
    steps = [result.step for result in results]
    names = results[0].objectives
    weights = np.array([result.reward_weights for result in results])
    means = np.array(
        [[np.nan if (m := r.stats[n]["mean"]) is None else m for n in names] for r in results]
    )
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    for k, name in enumerate(names):
        top.plot(steps, weights[:, k], label=name)
        bottom.plot(steps, means[:, k], label=name)
    top.set_ylabel("reward weight")
    top.set_title(title)
    top.legend(loc="best", fontsize="small")
    bottom.set_ylabel("batch mean score")
    bottom.set_xlabel("step")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
