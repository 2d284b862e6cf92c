"""Per-objective learning-progress statistics: level, progress, MAD noise, scale, reliability.

:class:`Progress` is the transform every strategy runs first: it owns the statistics'
parameters, ``init`` gives empty :class:`ObjectiveTracks`, ``update`` folds a batch into them.
Pure functions over plain arrays of shape ``(K,)`` (and the ``(K, W)`` gains window), so the
state stays plain data and every update is a new value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from spard.scores import BatchStatistics
from spard.types import BoolArray, FloatArray, IntArray

MAD_TO_SIGMA = 1.4826
UtilityMode = Literal["gain", "absolute", "lag"]


@dataclass(frozen=True)
class ObjectiveTracks:
    """The statistics kept across steps for each of the K objectives."""

    observations: IntArray  # (K,) steps in which the objective had a valid score
    level: FloatArray  # (K,) mu_k, NaN until first observed
    progress: FloatArray  # (K,) g_k, EMA of the gains
    gains: FloatArray  # (K, W) ring buffer of the last W gains d_k, NaN where unused
    scale: FloatArray  # (K,) s_k, EMA of mean dispersion, NaN until a group disperses

    @classmethod
    def empty(cls, num_objectives: int, window: int) -> ObjectiveTracks:
        """Tracks of objectives never observed."""
        return cls(
            observations=np.zeros(num_objectives, dtype=np.int64),
            level=np.full(num_objectives, np.nan),
            progress=np.zeros(num_objectives),
            gains=np.full((num_objectives, window), np.nan),
            scale=np.full(num_objectives, np.nan),
        )

    @property
    def gain_counts(self) -> IntArray:
        """(K,) how many gains each objective has produced (one fewer than observations)."""
        return np.maximum(self.observations - 1, 0)

    def noise(self) -> FloatArray:
        """(K,) sigma_k = 1.4826 * MAD of the gains in the window; 0 with no gain yet."""
        window = self.gains.shape[1]
        counts = np.minimum(self.gain_counts, window)
        centre = _row_medians(self.gains, counts)
        spread = _row_medians(np.abs(self.gains - centre[:, None]), counts)
        return np.where(counts > 0, MAD_TO_SIGMA * spread, 0.0)

    def reliability(self, noise: FloatArray, eps_rel: float, eps: float) -> FloatArray:
        """(K,) z_k = g_k / (sigma_k + eps_rel * s_k + eps): progress signal-to-noise.

        ``noise`` is :meth:`noise` of these tracks, passed in because callers report it too.
        """
        scale = np.where(np.isnan(self.scale), 0.0, self.scale)
        reliability: FloatArray = self.progress / (noise + eps_rel * scale + eps)
        return reliability


def _row_medians(rows: FloatArray, counts: IntArray) -> FloatArray:
    """Median of the first ``counts[k]`` non-NaN values of each row (NaN sorts last)."""
    ordered = np.sort(rows, axis=1)
    # counts <= W keeps both indices in range; rows with counts == 0 are masked below.
    upper = counts // 2
    lower = np.maximum(counts - 1, 0) // 2
    rows_index = np.arange(rows.shape[0])
    middle = 0.5 * (ordered[rows_index, lower] + ordered[rows_index, upper])
    return np.where(counts > 0, middle, 0.0)


def absorb_batch(
    tracks: ObjectiveTracks, batch: BatchStatistics, decays: tuple[float, float, float]
) -> ObjectiveTracks:
    """Fold one batch into the tracks. Objectives absent from the batch are held unchanged.

    ``decays`` are ``(b_mu, b_g, b_s)``: the EMA decays of the level, progress and scale.
    """
    level_decay, progress_decay, scale_decay = decays
    batch_means = batch.objective_means
    present = ~np.isnan(batch_means)
    first = present & (tracks.observations == 0)
    seen_before = present & ~first

    gain = np.where(seen_before, batch_means - tracks.level, 0.0)
    level = np.where(
        first,
        batch_means,
        np.where(
            seen_before,
            level_decay * tracks.level + (1.0 - level_decay) * batch_means,
            tracks.level,
        ),
    )
    progress = np.where(
        seen_before,
        progress_decay * tracks.progress + (1.0 - progress_decay) * gain,
        tracks.progress,
    )
    gains = tracks.gains.copy()
    rows = np.flatnonzero(seen_before)
    gains[rows, tracks.gain_counts[rows] % gains.shape[1]] = gain[rows]

    batch_scale = batch.mean_dispersion
    has_scale = ~np.isnan(batch_scale)
    scale = np.where(
        has_scale & np.isnan(tracks.scale),
        batch_scale,
        np.where(
            has_scale,
            scale_decay * tracks.scale + (1.0 - scale_decay) * batch_scale,
            tracks.scale,
        ),
    )
    return ObjectiveTracks(
        observations=tracks.observations + present,
        level=level,
        progress=progress,
        gains=gains,
        scale=scale,
    )


@dataclass(frozen=True)
class Signals:
    """What the tracks after a batch say about each objective; every array is ``(K,)``."""

    noise: FloatArray  # sigma_k, MAD of the recent gains
    reliability: FloatArray  # z_k, progress signal-to-noise
    utilities: FloatArray  # u_k, what PAWA climbs (reported for every strategy)


@dataclass(frozen=True)
class Progress:
    """The shared first transform of every strategy: the statistics of algorithm.md.

    Its parameters are the EMA decays ``b_mu, b_g, b_s``, the window ``W``, the noise floors
    ``eps_rel, eps``, and the utility's ``mode`` and clip ``c`` with the ``warmup`` before an
    objective counts. Its state is the :class:`ObjectiveTracks`.
    """

    level_decay: float
    progress_decay: float
    scale_decay: float
    window: int
    eps_rel: float
    eps: float
    utility_mode: UtilityMode
    utility_clip: float
    warmup: int

    def init(self, num_objectives: int) -> ObjectiveTracks:
        """Tracks of ``num_objectives`` objectives never observed."""
        return ObjectiveTracks.empty(num_objectives, self.window)

    def update(self, tracks: ObjectiveTracks, batch: BatchStatistics) -> ObjectiveTracks:
        """The tracks with ``batch`` folded in."""
        decays = (self.level_decay, self.progress_decay, self.scale_decay)
        return absorb_batch(tracks, batch, decays)

    def signals(self, tracks: ObjectiveTracks, batch: BatchStatistics) -> Signals:
        """Noise, reliability and utilities of ``tracks`` (the tracks after ``batch``)."""
        noise = tracks.noise()
        reliability = tracks.reliability(noise, self.eps_rel, self.eps)
        eligible = batch.present & (tracks.observations >= self.warmup)
        return Signals(noise, reliability, self.utility(reliability, eligible))

    def utility(self, reliability: FloatArray, eligible: BoolArray) -> FloatArray:
        """(K,) u_k from the reliability z_k by the mode; 0 where not ``eligible``.

        ``gain``: clip(z); ``absolute``: |clip(z)|; ``lag``: -clip(z).
        """
        clipped = np.clip(reliability, -self.utility_clip, self.utility_clip)
        if self.utility_mode == "absolute":
            clipped = np.abs(clipped)
        elif self.utility_mode == "lag":
            clipped = -clipped
        return np.where(eligible, clipped, 0.0)
