"""Request models of the HTTP API and the error statuses every route documents (the response
documents are :mod:`spard.service.protocol.documents`; both make the OpenAPI document)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from spard.config import MAX_STEP, SpardConfig, Strategy
from spard.names import OBJECTIVE_NAME_PATTERN
from spard.service.protocol.documents import ErrorBody
from spard.service.protocol.streaming import Observation, ObservationBatch
from spard.state import State
from spard.strategies import PRESETS

ObjectiveName = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=OBJECTIVE_NAME_PATTERN)
]
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


class CommitRequest(BaseModel):
    """Optional body of ``POST /v1/runs/{run_id}/steps/{step}/commit``."""

    model_config = ConfigDict(extra="forbid")

    return_advantages: bool = False


def error_statuses(descriptions: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for error statuses, each with the one error body."""
    return {
        status: {"model": ErrorBody, "description": text} for status, text in descriptions.items()
    }


ERROR_RESPONSES = error_statuses(
    {
        401: "missing or unknown API key",
        404: "no such run for this tenant",
        422: "invalid input, a body that is not JSON included; `field` names it",
        431: "request headers over the limit",
        503: "the run store is unavailable",
    }
)
# What the request gate answers on every route that reads a body (http/middleware.py).
BODY_ERRORS = {
    408: "the body did not arrive within SPARD_BODY_TIMEOUT_S",
    413: "the body is over SPARD_MAX_BODY_BYTES",
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
