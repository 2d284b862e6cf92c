"""The API's response documents, each defined once.

The service builds them (:mod:`spard.service.runs.records`, the routes), the OpenAPI
components are derived from them (each route's ``response_model``; :func:`document_schema`),
and the SDK reads its answers as them (:mod:`spard.client`), so mypy checks the same keys on
both sides. TypedDicts, not models: the step answer is on the hot path and is written by orjson
straight from these dicts, numpy arrays and all.

Light: typing, numpy and pydantic only (the SDK's install); no web framework, no I/O.
"""

# No `from __future__ import annotations`: pydantic reads these annotations at run time.

from typing import Annotated, Any

import numpy as np
import numpy.typing as npt
from pydantic import ConfigDict, Field, TypeAdapter, with_config
from pydantic.json_schema import SkipJsonSchema
from typing_extensions import NotRequired, TypedDict

from spard.config import Strategy
from spard.state import ObjectiveStats

# A vector or matrix is a JSON list; the service may hold it as the numpy array orjson writes
# as that list (the step answer does: no .tolist() on the hot path). The schema says "list".
FloatVector = list[float] | SkipJsonSchema[npt.NDArray[np.float64]]
BoolVector = list[bool] | SkipJsonSchema[npt.NDArray[np.bool_]]
FloatMatrix = list[list[float]] | SkipJsonSchema[npt.NDArray[np.float64]]
GroupId = str | int
WeightsByObjective = dict[str, float]
_ARRAYS = ConfigDict(arbitrary_types_allowed=True)


class SampleWeightSummary(TypedDict):
    """The data weights of a step: quantiles over informative prompts (None when every prompt
    was zero-signal) and the zero-signal count."""

    prompts: int
    zero_signal: int
    min: float | None
    p10: float | None
    p50: float | None
    p90: float | None
    max: float | None


class RunSummary(TypedDict):
    """A run: its configuration, where it stands and its latest per-objective statistics."""

    run_id: str
    objectives: list[str]
    strategy: Strategy
    config: dict[str, Any]
    prior_weights: WeightsByObjective
    reward_weights: Annotated[
        WeightsByObjective, Field(description="the weights the next step will get")
    ]
    last_step: int | None
    steps_applied: int
    stats: ObjectiveStats | None
    last_sample_weights: SampleWeightSummary | None
    created_at: float
    updated_at: float
    streaming: Annotated[
        dict[str, Any],
        Field(json_schema_extra=lambda schema: schema.update(_streaming_schema())),
    ]


class RunList(TypedDict):
    """The caller's runs, most recently written first (``GET /v1/runs``)."""

    runs: list[RunSummary]


@with_config(_ARRAYS)
class StepResponse(TypedDict):
    """The engine's answer for one step."""

    run_id: str
    step: int
    replayed: Annotated[bool, Field(description="true when this step had been applied before")]
    reward_weights: Annotated[
        WeightsByObjective, Field(description="weights to apply to this batch")
    ]
    sample_weights: Annotated[FloatVector, Field(description="(N,) RADR data weights")]
    zero_signal: Annotated[BoolVector, Field(description="(N,) prompts with no GRPO signal")]
    advantages: Annotated[FloatMatrix | None, Field(description="(N, G) when asked for")]
    stats: ObjectiveStats
    prompt_ids: list[GroupId] | None


@with_config(_ARRAYS)
class CommitResponse(StepResponse):
    """A step built from observations: ``prompt_ids`` are the group ids, in batch order."""

    dropped_groups: list[GroupId]
    observations: int
    committed_before: Annotated[list[int], Field(description="open earlier steps committed first")]


class WeightsResponse(TypedDict):
    """The current reward weights (what the next step will get)."""

    run_id: str
    etag: Annotated[str, Field(description="the same as the ETag header")]
    step: Annotated[int | None, Field(description="the last applied step")]
    reward_weights: WeightsByObjective


class HistoryEntry(TypedDict):
    step: int
    reward_weights: WeightsByObjective
    stats: ObjectiveStats
    sample_weights: SampleWeightSummary
    applied_at: float


class HistoryPage(TypedDict):
    """A page of per-step history; pass ``next_after`` as ``after`` for the next page."""

    run_id: str
    entries: list[HistoryEntry]
    next_after: int | None


class ObserveResponse(TypedDict):
    """What happened to each observation (indexes into the request's list)."""

    accepted: int
    duplicates: Annotated[int, Field(description="sent before with the same scores")]
    conflicts: Annotated[
        list[int], Field(description="sent before with other scores (first ones kept)")
    ]
    overflow: Annotated[list[int], Field(description="no free rollout index below group_size")]
    late: Annotated[list[int], Field(description="their step was already committed: not stored")]
    steps: Annotated[list[int], Field(description="the steps they went to")]
    committed: Annotated[list[int], Field(description="steps this request committed automatically")]


class ValidationIssue(TypedDict):
    """One finding of the request validation (a 422 lists them all in ``errors``)."""

    loc: list[str | int]
    msg: str
    type: str


class ErrorBody(TypedDict):
    """Every error's body."""

    detail: str
    field: str | None
    errors: NotRequired[list[ValidationIssue]]


def _streaming_schema() -> dict[str, Any]:
    # The run's streaming settings are StreamingConfig's JSON dump: its schema, not a copy.
    # Imported here: the SDK reads no streaming settings and need not build their model.
    from spard.service.protocol.streaming import StreamingConfig

    schema = StreamingConfig.model_json_schema()
    schema.pop("title", None)
    return schema


def document_schema(document: Any) -> dict[str, Any]:
    """The JSON schema of a document type (what OpenAPI publishes for it)."""
    schema: dict[str, Any] = TypeAdapter(document).json_schema()
    return schema
