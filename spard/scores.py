"""Validation of a score batch and the per-batch statistics every strategy reads.

A batch is ``S`` of shape ``(N, G, K)``: N prompts, G rollouts each, K objectives; NaN (or
None in nested lists) marks a missing score.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np

from spard.errors import InputError
from spard.types import BoolArray, FloatArray, IntArray

_NUMERIC_KINDS = "fiu"
MAX_SCORE = 1e100


def parse_scores(scores: Any, num_objectives: int | None, *, field: str = "scores") -> FloatArray:
    """Return ``scores`` as a float64 ``(N, G, K)`` array with NaN for missing entries.

    Raises :class:`InputError` naming ``field`` for ragged, non-numeric or boolean input, a
    wrong rank, N or G of 0, G < 2, K not matching ``num_objectives`` (unless None), +/-inf, or
    an all-missing batch. The one check of a step's scores: :func:`spard.step` runs it; the
    service's decoder runs it too with ``num_objectives=None``, so a malformed batch is refused
    before the run is read.
    """
    array = scores_array(scores, field=field)
    if array.ndim != 3:
        raise InputError(
            f"{field} must have shape (N, G, K) = (prompts, rollouts, objectives); "
            f"got {array.ndim} dimension(s) with shape {array.shape}",
            field=field,
        )
    n_prompts, n_rollouts, n_objectives = array.shape
    if n_prompts == 0:
        raise InputError(f"{field} has no prompts (N = 0)", field=field)
    if n_rollouts < 2:
        raise InputError(
            f"{field} needs at least 2 rollouts per prompt for group-relative advantages; "
            f"got G = {n_rollouts}",
            field=field,
        )
    if n_objectives == 0:
        raise InputError(f"{field} has no objectives (K = 0)", field=field)
    if num_objectives is not None and n_objectives != num_objectives:
        raise InputError(
            f"{field} has K = {n_objectives} objectives on its last axis; "
            f"the run has {num_objectives}",
            field=field,
        )
    if np.isfinite(array).all():
        _check_magnitude(array, field)
        return array
    infinite = np.isinf(array)
    if infinite.any():
        where = tuple(int(i) for i in np.argwhere(infinite)[0])
        raise InputError(
            f"{field} contains +/-inf (first at index {where}); use NaN/null for a missing score",
            field=field,
        )
    if np.isnan(array).all():
        raise InputError(f"{field} has no valid score: every entry is missing", field=field)
    _check_magnitude(array, field)
    return array


def _check_magnitude(array: FloatArray, field: str) -> None:
    # The statistics square deviations and sum them over a batch: beyond this, they overflow.
    large = np.abs(array) > MAX_SCORE
    if large.any():
        where = tuple(int(i) for i in np.argwhere(large)[0])
        raise InputError(
            f"{field} must lie within +/-{MAX_SCORE:g} (first outside at index {where})",
            field=field,
        )


def scores_array(
    scores: Any, *, field: str = "scores", may_hold_booleans: bool = True
) -> FloatArray:
    """``scores`` as a float64 array with NaN for None: the one rule of what a score may be.

    A number, or None / NaN for missing; never true/false (a reward of ``True`` is a bug
    upstream, not 1.0: numpy would silently read it as one). Raises :class:`InputError`
    naming ``field``. Shape and values are :func:`parse_scores`'s to check.
    ``may_hold_booleans=False``: the caller knows nested lists hold no boolean (a decoder that
    counted the body's ``true``/``false`` tokens), which skips their scan.
    """
    if isinstance(scores, np.ndarray):
        array = scores
    else:
        try:
            array = np.asarray(scores)
        except (ValueError, TypeError) as exc:
            raise InputError(
                f"{field} must be a rectangular (N, G, K) array of numbers; ragged nested "
                f"lists are not accepted ({exc})",
                field=field,
            ) from None
        # numpy reads a list mixing true/false with numbers as numbers: only a scan tells.
        # Other array-likes (a torch tensor) carry one dtype, which numpy keeps: no scan.
        nested = isinstance(scores, list | tuple)
        if nested and may_hold_booleans and array.dtype.kind in _NUMERIC_KINDS:
            _refuse_booleans(_scalar_types(scores, array.ndim), field)
    kind = array.dtype.kind
    if kind == "b":
        _refuse_booleans({bool}, field)
    if kind in _NUMERIC_KINDS:
        return array.astype(np.float64, copy=False)
    if kind == "O":
        # Nested lists holding None arrive as objects; only numbers and None may pass.
        kinds = set(map(type, array.flat))
        _refuse_booleans(kinds, field)
        bad = [t for t in kinds if not (t is type(None) or issubclass(t, (int, float, np.number)))]
        if not bad:
            try:
                return array.astype(np.float64)
            except (ValueError, TypeError):
                pass
        names = ", ".join(sorted(t.__name__ for t in bad)) or "mixed"
        raise InputError(
            f"{field} must hold numbers or null; found {names} values, or ragged nested lists",
            field=field,
        )
    raise InputError(
        f"{field} must hold numbers or null; got an array of dtype {array.dtype}", field=field
    )


def _scalar_types(nested: Any, depth: int) -> set[type]:
    """The types of the scalars of ``depth``-deep regular nested sequences (C-speed chain)."""
    if depth == 0:
        return {type(nested)}
    flat: Any = nested
    for _ in range(depth - 1):
        flat = chain.from_iterable(flat)
    return set(map(type, flat))


def _refuse_booleans(kinds: set[type], field: str) -> None:
    if any(issubclass(kind, (bool, np.bool_)) for kind in kinds):
        raise InputError(
            f"{field} must hold numbers or null, not true/false (a pass/fail reward as 1.0 and "
            "0.0: convert it, e.g. with .astype(float), so the intent is explicit)",
            field=field,
        )


def scores_digest(scores: FloatArray) -> str:
    """A fingerprint of a batch, used to tell a faithful replay from a conflicting one."""
    canonical = np.where(np.isnan(scores), np.nan, scores) if np.isnan(scores).any() else scores
    canonical = canonical + 0.0  # -0.0 + 0.0 is 0.0: one number, one digest
    hasher = hashlib.sha256(np.asarray(scores.shape, dtype="<i8").tobytes())
    contiguous = np.ascontiguousarray(canonical, dtype="<f8")
    hasher.update(contiguous.data.cast("B"))
    return hasher.hexdigest()[:32]


@dataclass(frozen=True)
class BatchStatistics:
    """What one batch says about each objective; shapes in the field comments."""

    all_valid: bool  # no missing entry: lets hot paths skip masking
    valid: BoolArray  # (N, G, K) finite entries
    valid_float: FloatArray  # (N, G, K) the same mask as 1.0 / 0.0, for fast products
    filled: FloatArray  # (N, G, K) scores with missing entries set to 0
    valid_counts: IntArray  # (N, K) valid rollouts per prompt and objective
    group_means: FloatArray  # (N, K) mean over valid rollouts; 0 where none
    dispersion: FloatArray  # (N, K) D_ik, within-group mean absolute deviation
    objective_means: FloatArray  # (K,) m_k over valid entries; NaN when absent
    mean_dispersion: FloatArray  # (K,) mean D_ik over groups that can disperse; NaN if none

    @property
    def present(self) -> BoolArray:
        """(K,) objectives with at least one valid score in the batch."""
        return ~np.isnan(self.objective_means)


def batch_statistics(scores: FloatArray) -> BatchStatistics:
    """Per-batch statistics of a validated ``(N, G, K)`` score array (see algorithm.md)."""
    valid = ~np.isnan(scores)
    all_valid = bool(valid.all())
    if all_valid:
        filled = scores
        valid_float = np.broadcast_to(np.float64(1.0), scores.shape)  # a view: no copy
        valid_counts = np.full((scores.shape[0], scores.shape[2]), scores.shape[1], np.int64)
        pivot = scores[:, :1, :]
    else:
        filled = np.where(valid, scores, 0.0)
        valid_float = valid.astype(np.float64)
        # einsum on a float mask: boolean sums over the middle axis are several times slower.
        valid_counts = np.einsum("ngk->nk", valid_float).astype(np.int64)
        first_valid = np.argmax(valid, axis=1)[:, None, :]
        pivot = np.take_along_axis(filled, first_valid, axis=1)
    safe_counts = np.maximum(valid_counts, 1)
    # Work relative to each group's first valid rollout: a constant group then has exactly
    # zero deviations (the float mean of equal values can be an ulp off, and a spurious 1e-17
    # dispersion would hide a zero-signal prompt), and the sums lose less precision.
    deviations = filled - pivot
    if not all_valid:
        deviations *= valid_float
    offset_means = np.einsum("ngk->nk", deviations) / safe_counts
    np.subtract(deviations, offset_means[:, None, :], out=deviations)
    np.abs(deviations, out=deviations)
    if not all_valid:
        deviations *= valid_float
    can_disperse = valid_counts >= 2
    dispersion = np.where(can_disperse, np.einsum("ngk->nk", deviations) / safe_counts, 0.0)
    group_means = pivot[:, 0, :] + offset_means

    total_counts = valid_counts.sum(axis=0)
    dispersing_groups = can_disperse.sum(axis=0)
    # The same trick across groups: relative to one scored group's mean, an objective that is
    # constant over the whole batch gets exactly its value as mean, whatever the prompt order.
    first_scored = np.argmax(valid_counts > 0, axis=0)
    batch_pivot = group_means[first_scored, np.arange(group_means.shape[1])]
    with np.errstate(invalid="ignore", divide="ignore"):
        offsets = ((group_means - batch_pivot) * valid_counts).sum(axis=0) / total_counts
        objective_means = np.where(total_counts > 0, batch_pivot + offsets, np.nan)
        mean_dispersion = np.where(
            dispersing_groups > 0, dispersion.sum(axis=0) / dispersing_groups, np.nan
        )
    return BatchStatistics(
        all_valid=all_valid,
        valid=valid,
        valid_float=valid_float,
        filled=filled,
        valid_counts=valid_counts,
        group_means=group_means,
        dispersion=dispersion,
        objective_means=objective_means,
        mean_dispersion=mean_dispersion,
    )
