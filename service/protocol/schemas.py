"""Request and response models of the HTTP API (they also make the OpenAPI document)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from spard.config import MAX_STEP, SpardConfig, Strategy
from spard.names import OBJECTIVE_NAME_PATTERN
from spard.service.protocol.streaming import Observation, ObservationBatch, StreamingConfig
from spard.state import State
from spard.strategies import PRESETS

ObjectiveName = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=OBJECTIVE_NAME_PATTERN)
]
ObjectiveStats = dict[str, dict[str, float | None]]
__all__ = ["Observation", "ObservationBatch"]  # re-exported: part of the API's models


RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"


class CreateRunRequest(BaseModel):
    """Body of ``POST /v1/runs``."""

    model_config = ConfigDict(extra="forbid")

    run_id: str | None = Field(
        None, pattern=RUN_ID_PATTERN, description="your id for the run; generated if absent"
    )
    objectives: list[ObjectiveName] = Field(min_length=1, description="objective names (K)")
    strategy: Strategy | None = Field(None, description="shortcut for config.strategy")
    config: dict[str, Any] = Field(
        default_factory=dict,
        description="overrides of SpardConfig fields (every one optional; see their defaults "
        "and meaning below), applied over the named `preset` if one is given",
        json_schema_extra=lambda schema: schema.update(config_overrides_schema()),
    )
    prior_weights: list[float] | dict[str, float] | None = Field(
        None,
        description="w0: K numbers >= 0, at least one positive (0 tracks an objective without "
        "training on it), or objective -> weight; uniform if absent",
    )
    streaming: dict[str, Any] = Field(
        default_factory=dict,
        description="how streamed observations become steps (StreamingConfig fields)",
    )


class StepRequest(BaseModel):
    """JSON body of ``POST /v1/runs/{run_id}/steps`` (documentation; parsed by the codec)."""

    model_config = ConfigDict(extra="forbid")

    step: int | None = Field(
        None, ge=0, le=MAX_STEP, description="step index; absent: the next one"
    )
    scores: list[
        Annotated[list[Annotated[list[float | None], Field(min_length=1)]], Field(min_length=2)]
    ] = Field(
        min_length=1,
        description="(N, G, K) nested lists: prompts, rollouts (at least 2), objectives; "
        "null = missing; every row the same length",
    )
    prompt_ids: list[str | int] | None = Field(None, description="N ids, echoed back")
    return_advantages: bool = Field(False, description="also return (N, G) advantages")


class ObserveResponse(BaseModel):
    """What happened to each observation (indexes into the request's list)."""

    accepted: int
    duplicates: int = Field(description="sent before with the same scores")
    conflicts: list[int] = Field(description="sent before with other scores (first ones kept)")
    overflow: list[int] = Field(description="no free rollout index below group_size")
    late: list[int] = Field(description="their step was already committed: not stored")
    steps: list[int] = Field(description="the steps they went to")
    committed: list[int] = Field(description="steps this request committed automatically")


class CommitRequest(BaseModel):
    """Optional body of ``POST /v1/runs/{run_id}/steps/{step}/commit``."""

    model_config = ConfigDict(extra="forbid")

    return_advantages: bool = False


class WeightsResponse(BaseModel):
    """The current reward weights (what the next step will get)."""

    run_id: str
    etag: str = Field(description="the same as the ETag header")
    step: int | None = Field(description="the last applied step")
    reward_weights: dict[str, float]


class SampleWeightSummary(BaseModel):
    prompts: int
    zero_signal: int
    min: float | None
    p10: float | None
    p50: float | None
    p90: float | None
    max: float | None


class RunSummary(BaseModel):
    """A run: its configuration, where it stands and its latest per-objective statistics."""

    run_id: str
    objectives: list[str]
    strategy: Strategy
    config: dict[str, Any]
    prior_weights: dict[str, float]
    reward_weights: dict[str, float] = Field(description="the weights the next step will get")
    last_step: int | None
    steps_applied: int
    stats: ObjectiveStats | None
    last_sample_weights: SampleWeightSummary | None
    created_at: float
    updated_at: float
    streaming: StreamingConfig


class StepResponse(BaseModel):
    """The engine's answer for one step."""

    run_id: str
    step: int
    replayed: bool = Field(description="true when this step had been applied before")
    reward_weights: dict[str, float] = Field(description="weights to apply to this batch")
    sample_weights: list[float] = Field(description="(N,) RADR data weights")
    zero_signal: list[bool] = Field(description="(N,) prompts with no GRPO signal")
    advantages: list[list[float]] | None = Field(description="(N, G) when asked for")
    stats: ObjectiveStats
    prompt_ids: list[str | int] | None


class CommitResponse(StepResponse):
    """A step built from observations: ``prompt_ids`` are the group ids, in batch order."""

    dropped_groups: list[str | int]
    observations: int
    committed_before: list[int] = Field(description="open earlier steps committed first")


class HistoryEntry(BaseModel):
    step: int
    reward_weights: dict[str, float]
    stats: ObjectiveStats
    sample_weights: SampleWeightSummary
    applied_at: float


class HistoryPage(BaseModel):
    """A page of per-step history; pass ``next_after`` as ``after`` for the next page."""

    run_id: str
    entries: list[HistoryEntry]
    next_after: int | None


class ErrorBody(BaseModel):
    detail: str
    field: str | None


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in [
        (400, "a body that cannot be parsed (not UTF-8, not JSON)"),
        (401, "missing or unknown API key"),
        (404, "no such run for this tenant"),
        (422, "invalid input; `field` names it"),
        (503, "the run store is unavailable"),
    ]
}


def inline_definitions(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its ``$defs`` references replaced by the definitions themselves: the
    request body is documented outside ``components``, where a ``$ref`` would dangle."""
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            reference = node.get("$ref", "")
            if reference.startswith("#/$defs/"):
                return resolve(definitions[reference.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


def state_schema() -> dict[str, Any]:
    """The JSON schema of an exported state (GET and PUT ``.../state``)."""
    return inline_definitions(State.json_schema())


def config_overrides_schema() -> dict[str, Any]:
    """SpardConfig's schema with every field optional, plus ``preset``: what ``config``
    of a create-run request may hold (the knobs become discoverable in the API docs)."""
    schema = inline_definitions(SpardConfig.model_json_schema())
    schema.pop("required", None)
    schema.pop("title", None)
    schema.pop("description", None)  # the field's own description stays
    schema["properties"]["preset"] = {
        "enum": sorted(PRESETS),
        "description": "named overrides applied first; `paper` is our reading of the authors' "
        "runs (docs/paper-faithfulness.md)",
    }
    return schema
