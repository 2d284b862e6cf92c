"""The engine state: plain, immutable data with an exact, versioned JSON-safe form."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Annotated, Any

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from spard.config import MAX_STEP, SpardConfig, input_error
from spard.errors import InputError
from spard.names import is_allowed_name, normal_name
from spard.progress import ObjectiveTracks
from spard.types import BoolArray, FloatArray

SCHEMA_VERSION = 1

ObjectiveStats = dict[str, dict[str, float | None]]


@dataclass(frozen=True)
class AppliedStep:
    """What the engine answered for one applied step, kept for replays."""

    step: int
    scores_digest: str
    reward_weights: FloatArray  # (K,)
    sample_weights: FloatArray  # (N,)
    zero_signal: BoolArray  # (N,)
    stats: ObjectiveStats
    request_id: str | None = None  # the caller's idempotency key, if it sent one
    reward_scale: float = 1.0  # what every reward was multiplied by (DRW's meta reward)

    def __post_init__(self) -> None:
        for array in (self.reward_weights, self.sample_weights, self.zero_signal):
            array.setflags(write=False)


@dataclass(frozen=True)
class State:
    """Everything the curriculum carries from one step to the next.

    Treat it as a value: :func:`spard.step` returns a new state and never changes the one it
    was given (its arrays are read-only).
    """

    objectives: tuple[str, ...]
    config: SpardConfig
    prior_weights: FloatArray  # (K,) w0, sums to 1
    reward_weights: FloatArray  # (K,) weights for the next batch
    tracks: ObjectiveTracks
    steps_applied: int = 0
    last_step: int | None = None
    recent: tuple[AppliedStep, ...] = ()
    # (M, K) the reward-scale rule's state (DRW: its buffer of performance points, the first
    # the reference); None for strategies without one, and then absent from the document.
    reward_scale_state: FloatArray | None = None

    def __post_init__(self) -> None:
        for array in _arrays(self):
            array.setflags(write=False)

    def applied(self, step: int) -> AppliedStep | None:
        """The stored answer of an applied step, if it is still kept."""
        return next((entry for entry in self.recent if entry.step == step), None)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (NaN as None) that :meth:`from_dict` turns back into this state."""
        document: dict[str, Any] = orjson.loads(self.to_json())
        return document

    def to_json(self) -> bytes:
        """The state as JSON (NaN as null): :meth:`to_dict`, encoded. orjson writes the arrays
        itself, with no Python list in between; the service stores this on every step."""
        tracks = self.tracks
        recent = [_applied_document(entry) for entry in self.recent]
        document = {
            "version": SCHEMA_VERSION,
            "objectives": self.objectives,
            "config": self.config.model_dump(mode="json"),
            "prior_weights": self.prior_weights,
            "reward_weights": self.reward_weights,
            "steps_applied": self.steps_applied,
            "last_step": self.last_step,
            "observations": tracks.observations,
            "level": tracks.level,
            "progress": tracks.progress,
            "gains": tracks.gains,
            "scale": tracks.scale,
            "recent": recent,
        }
        if self.reward_scale_state is not None:  # optional: states without one stay as they were
            document["reward_scale_state"] = self.reward_scale_state
        return orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY)

    @staticmethod
    def json_schema() -> dict[str, Any]:
        """The JSON schema of :meth:`to_dict`'s document (what :meth:`from_dict` accepts)."""
        return _StateModel.model_json_schema()

    @classmethod
    def from_dict(cls, data: Any) -> State:
        """Rebuild a state from :meth:`to_dict` output; raises :class:`InputError` if invalid."""
        try:
            model = _StateModel.model_validate(data)
        except ValidationError as exc:
            raise input_error(exc, "state") from None
        return model.to_state()


def _applied_document(entry: AppliedStep) -> dict[str, Any]:
    document = {
        "step": entry.step,
        "scores_digest": entry.scores_digest,
        "reward_weights": entry.reward_weights,
        "sample_weights": entry.sample_weights,
        "zero_signal": entry.zero_signal,
        "stats": entry.stats,
        "request_id": entry.request_id,
    }
    if entry.reward_scale != 1.0:  # optional: only DRW's steps carry one
        document["reward_scale"] = entry.reward_scale
    return document


def _arrays(state: State) -> list[np.ndarray[Any, Any]]:
    # The stored steps lock their own arrays when they are made.
    found: list[np.ndarray[Any, Any]] = [state.prior_weights, state.reward_weights]
    if state.reward_scale_state is not None:
        found.append(state.reward_scale_state)
    return found + [getattr(state.tracks, f.name) for f in fields(state.tracks)]


def _array(values: list[float | None]) -> FloatArray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


# What a state may hold: finite numbers (NaN is written as null, so a NaN arriving here could
# never be written back), counts and step indices that every store keeps exactly.
_Count = Annotated[int, Field(ge=0, le=MAX_STEP)]
_Finite = Annotated[float, Field(ge=-1e300, le=1e300)]


class _AppliedStepModel(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    step: _Count
    scores_digest: str
    reward_weights: list[_Finite]
    sample_weights: list[_Finite]
    zero_signal: list[bool]
    stats: dict[str, dict[str, _Finite | None]]
    request_id: str | None = None  # absent in states written before idempotency keys
    # DRW's meta reward 0.5 + 1.5 tanh(c), in [0.5, 2); absent when 1 (and in older states).
    reward_scale: Annotated[float, Field(ge=0.5, le=2.0)] = 1.0


class _StateModel(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    version: int
    objectives: list[str]
    config: SpardConfig
    prior_weights: list[_Finite]
    reward_weights: list[_Finite]
    steps_applied: _Count
    last_step: _Count | None
    observations: list[_Count]
    level: list[_Finite | None]
    progress: list[_Finite]
    gains: list[list[_Finite | None]]
    scale: list[Annotated[float, Field(ge=0.0, le=1e300)] | None]
    recent: list[_AppliedStepModel]
    reward_scale_state: list[list[_Finite]] | None = None  # absent in states without one

    def to_state(self) -> State:
        objectives = validate_objectives(self.objectives, self.config, field="state.objectives")
        if self.version != SCHEMA_VERSION:
            raise InputError(
                f"state.version: {self.version} is not supported (this engine reads "
                f"version {SCHEMA_VERSION})",
                field="state.version",
            )
        num_objectives = len(objectives)
        window = self.config.gain_window
        for name in ("prior_weights", "reward_weights", "observations", "level", "progress"):
            _require_length(name, getattr(self, name), num_objectives)
        _require_length("scale", self.scale, num_objectives)
        _require_length("gains", self.gains, num_objectives)
        for row in self.gains:
            _require_length("gains[k]", row, window)
        buffer = self._reward_scale_state(num_objectives)
        for entry in self.recent:
            _require_length("recent.reward_weights", entry.reward_weights, num_objectives)
            _require_length("recent.zero_signal", entry.zero_signal, len(entry.sample_weights))
        _require_simplex("state.prior_weights", self.prior_weights)
        untrained = np.asarray(self.prior_weights) == 0.0
        # The kept steps' weights are handed back on replay: the same rules as the current.
        weight_lists = [("state.reward_weights", self.reward_weights)] + [
            ("state.recent.reward_weights", entry.reward_weights) for entry in self.recent
        ]
        for field, weights in weight_lists:
            _require_simplex(field, weights)
            if (np.asarray(weights)[untrained] != 0.0).any():
                raise InputError(
                    f"{field} must be 0 where state.prior_weights is 0 (an objective with "
                    "prior weight 0 is never trained on)",
                    field=field,
                )
        tracks = ObjectiveTracks(
            observations=np.array(self.observations, dtype=np.int64),
            level=_array(self.level),
            progress=np.array(self.progress, dtype=np.float64),
            gains=np.array([_array(row) for row in self.gains]).reshape(num_objectives, window),
            scale=_array(self.scale),
        )
        recent = tuple(
            AppliedStep(
                step=entry.step,
                scores_digest=entry.scores_digest,
                reward_weights=np.array(entry.reward_weights, dtype=np.float64),
                sample_weights=np.array(entry.sample_weights, dtype=np.float64),
                zero_signal=np.array(entry.zero_signal, dtype=np.bool_),
                stats=entry.stats,
                request_id=entry.request_id,
                reward_scale=entry.reward_scale,
            )
            for entry in self.recent
        )
        return State(
            objectives=objectives,
            config=self.config,
            prior_weights=np.array(self.prior_weights, dtype=np.float64),
            reward_weights=np.array(self.reward_weights, dtype=np.float64),
            tracks=tracks,
            steps_applied=self.steps_applied,
            last_step=self.last_step,
            recent=recent,
            reward_scale_state=buffer,
        )

    def _reward_scale_state(self, num_objectives: int) -> FloatArray | None:
        """The (M, K) buffer, checked against what the config's rules keep: only when its
        advantage rule scales rewards, rows of K, at most ``drw_buffer_max``."""
        field = "state.reward_scale_state"
        scaled = self.config.build().reward_scale is not None
        if self.reward_scale_state is None:  # none yet, or a state from before the key
            return None
        if not scaled:
            raise InputError(f"{field}: this run's rules keep no reward-scale state", field=field)
        for row in self.reward_scale_state:
            _require_length("reward_scale_state[m]", row, num_objectives)
        if len(self.reward_scale_state) > self.config.drw_buffer_max:
            raise InputError(
                f"{field} holds {len(self.reward_scale_state)} points; config.drw_buffer_max "
                f"is {self.config.drw_buffer_max}",
                field=field,
            )
        return np.array(self.reward_scale_state, dtype=np.float64).reshape(-1, num_objectives)


def validate_objectives(
    objectives: Any, config: SpardConfig, *, field: str = "objectives"
) -> tuple[str, ...]:
    """Check objective names (non-empty, unique strings) and the config keys that name them."""
    if isinstance(objectives, str) or not all(isinstance(n, str) for n in objectives):
        raise InputError(f"{field} must be a list of objective names (strings)", field=field)
    names = tuple(objectives)
    if not names:
        raise InputError(f"{field} must name at least one objective", field=field)
    if any(not name.strip() for name in names):
        raise InputError(f"{field} contains an empty name", field=field)
    for name in names:
        if not is_allowed_name(name):
            raise InputError(
                f"{field}: {name!r} holds a control or invisible character", field=field
            )
    names = tuple(normal_name(name) for name in names)  # look-alikes become duplicates
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise InputError(f"{field} names {duplicates} more than once", field=field)
    unknown = sorted(set(config.saw_offsets) - set(names))
    if unknown:
        raise InputError(
            f"config.saw_offsets names unknown objectives {unknown}", field="config.saw_offsets"
        )
    return names


def _require_length(name: str, values: list[Any], expected: int) -> None:
    if len(values) != expected:
        raise InputError(
            f"state.{name} has {len(values)} entries; expected {expected}", field=f"state.{name}"
        )


def _require_simplex(field: str, values: list[float]) -> None:
    array = np.asarray(values, dtype=np.float64)
    if not (np.isfinite(array).all() and (array >= 0).all() and abs(array.sum() - 1.0) < 1e-6):
        raise InputError(f"{field} must be finite, non-negative and sum to 1", field=field)
