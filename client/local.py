"""The engine in-process behind an httpx transport: ``SpardClient.local()`` talks to this
exactly as it talks to the service (same requests, same JSON, same errors), with no server."""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np

import spard
from spard.config import config_from_overrides
from spard.service.protocol.streaming import StreamingConfig, parse_observations, streaming_config
from spard.service.protocol.wire import (
    IDEMPOTENCY_HEADER,
    OCTET_STREAM,
    decode_step,
    request_id_from_header,
)
from spard.service.runs.assembly import assemble, due_commits, items_by_step
from spard.service.runs.ledger import (
    DEFAULT_MAX_OPEN_STEPS,
    ObservationLedger,
    ObserveReport,
    check_step_count,
    nothing_to_commit,
    too_many_open_steps,
)
from spard.service.runs.records import (
    commit_payload,
    history_entry,
    run_summary,
    sample_weight_summary,
    step_payload,
)

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_ROUTE = re.compile(
    r"^/v1/runs(?:/(?P<run>[^/]+)"
    r"(?:/(?P<tail>steps|history|state|observations|weights)(?:/(?P<step>\d+)/commit)?)?)?$"
)


class _HttpProblemError(Exception):
    def __init__(self, status: int, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.field = status, detail, field


class _LocalRun:
    def __init__(
        self, state: spard.State, streaming: StreamingConfig, created_by: str | None = None
    ) -> None:
        self.state = state
        self.streaming = streaming
        self.created_by = created_by  # the create request's idempotency key
        self.observations = ObservationLedger()
        self.etag = secrets.token_hex(12)
        self.created_at = self.updated_at = time.time()
        self.history: list[dict[str, Any]] = []

    def summary(self, run_id: str) -> dict[str, Any]:
        summary = run_summary(
            run_id, self.state, created_at=self.created_at, updated_at=self.updated_at
        )
        summary["streaming"] = self.streaming.model_dump(mode="json")
        return summary

    def weights(self, run_id: str) -> dict[str, Any]:
        names, weights = self.state.objectives, self.state.reward_weights.tolist()
        return {
            "run_id": run_id,
            "etag": self.etag,
            "step": self.state.last_step,
            "reward_weights": dict(zip(names, weights, strict=True)),
        }


class LocalRuns:
    """In-memory runs with the service's semantics (exactly-once steps, history, state)."""

    def __init__(self, step_retention: int = 8, history_retention: int = 2000) -> None:
        self._runs: dict[str, _LocalRun] = {}
        self._lock = threading.Lock()
        self._step_retention = step_retention
        self._history_retention = history_retention

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Serve one request like the service would."""
        try:
            with self._lock:
                status, payload = self._dispatch(request)
        except _HttpProblemError as problem:
            status, payload = problem.status, {"detail": problem.detail, "field": problem.field}
        except spard.SpardError as exc:
            conflict = isinstance(exc, spard.StepOrderError | spard.StepConflictError)
            status, payload = (
                (409 if conflict else 422),
                {"detail": exc.message, "field": exc.field},
            )
        if status in (204, 304):
            return httpx.Response(status)
        body = json.dumps(payload, default=_numpy_default).encode()
        return httpx.Response(status, content=body, headers={"content-type": "application/json"})

    def _dispatch(self, request: httpx.Request) -> tuple[int, Any]:
        match = _ROUTE.match(request.url.path)
        if match is None:
            raise _HttpProblemError(404, f"no route {request.url.path}")
        run_id, tail, step = match.group("run"), match.group("tail"), 0
        if match.group("step") is not None:
            tail, step = "commit", int(match.group("step"))
        handlers: dict[tuple[str, bool, str | None], Callable[[], tuple[int, Any]]] = {
            ("POST", False, None): lambda: self._create(_json(request), _request_id(request)),
            ("GET", True, None): lambda: (200, self._run(run_id).summary(run_id)),
            ("DELETE", True, None): lambda: self._delete(run_id),
            ("POST", True, "steps"): lambda: self._step(run_id, request),
            ("GET", True, "history"): lambda: self._history(run_id, request),
            ("GET", True, "state"): lambda: (200, self._run(run_id).state.to_dict()),
            ("PUT", True, "state"): lambda: self._import(run_id, _json(request)),
            ("POST", True, "observations"): lambda: self._observe(run_id, _json(request)),
            ("POST", True, "commit"): lambda: self._commit(run_id, step, _json(request)),
            ("GET", True, "weights"): lambda: self._weights(run_id, request),
        }
        handler = handlers.get((request.method, run_id is not None, tail))
        if handler is None:
            raise _HttpProblemError(405, f"{request.method} is not allowed on {request.url.path}")
        return handler()

    def _run(self, run_id: str | None) -> _LocalRun:
        if run_id is None or run_id not in self._runs:
            raise _HttpProblemError(404, f"run {run_id!r} not found", "run_id")
        return self._runs[run_id]

    def _create(self, body: dict[str, Any], request_id: str | None) -> tuple[int, Any]:
        run_id = body.get("run_id")
        if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
            raise _HttpProblemError(422, f"run_id must match {_RUN_ID.pattern}", "run_id")
        if run_id in self._runs:
            existing = self._runs[run_id]
            if request_id is not None and existing.created_by == request_id:
                return 201, existing.summary(run_id)
            raise _HttpProblemError(409, f"run {run_id!r} already exists", "run_id")
        config = config_from_overrides(
            body.get("config") or {},
            strategy=body.get("strategy"),
            defaults={"replay_window": self._step_retention},
        )
        state = spard.init(body.get("objectives") or [], config, body.get("prior_weights"))
        self._runs[run_id] = _LocalRun(
            state, streaming_config(body.get("streaming")), created_by=request_id
        )
        return 201, self._runs[run_id].summary(run_id)

    def _delete(self, run_id: str | None) -> tuple[int, Any]:
        self._run(run_id)
        del self._runs[run_id]  # type: ignore[arg-type]
        return 204, None

    def _step(self, run_id: str | None, request: httpx.Request) -> tuple[int, Any]:
        run = self._run(run_id)
        if request.headers.get("content-type", "").startswith(OCTET_STREAM):
            decoded = decode_step(request.content)
            step, scores = decoded.step, decoded.scores
            advantages, prompt_ids = decoded.return_advantages, None
        else:
            body = _json(request)
            step, scores = body.get("step"), body.get("scores")
            advantages, prompt_ids = bool(body.get("return_advantages")), body.get("prompt_ids")
        result = self._apply(run, step, scores, advantages, _request_id(request))
        return 200, step_payload(run_id or "", result, prompt_ids)

    def _apply(
        self,
        run: _LocalRun,
        step: int | None,
        scores: Any,
        advantages: bool,
        request_id: str | None = None,
    ) -> Any:
        result, run.state = spard.step(
            run.state, scores, step, return_advantages=advantages, request_id=request_id
        )
        if not result.replayed:
            run.updated_at, run.etag = time.time(), secrets.token_hex(12)
            weights = sample_weight_summary(result.sample_weights, result.zero_signal)
            run.history.append(history_entry(result, weights, applied_at=run.updated_at))
            del run.history[: -self._history_retention]
        return result

    def _observe(self, run_id: str | None, body: Any) -> tuple[int, Any]:
        run = self._run(run_id)
        observations = parse_observations(body)
        report = ObserveReport()
        grouped = items_by_step(observations, run.state.objectives, run.streaming)
        check_step_count(len(grouped), DEFAULT_MAX_OPEN_STEPS)
        for step, (positions, items) in grouped.items():
            last, size = run.state.last_step, run.streaming.group_size or 0
            outcome = run.observations.observe(step, items, last, size)
            if outcome.status == "full":
                message = too_many_open_steps(outcome.step, DEFAULT_MAX_OPEN_STEPS)
                raise _HttpProblemError(409, message, None)
            report.add(outcome, positions)
            for due in due_commits(run.streaming, outcome):
                if self._commit_if_possible(run_id, due) and due not in report.committed:
                    report.committed.append(due)
        return 200, report.to_json()

    def _commit(self, run_id: str | None, step: int, body: Any) -> tuple[int, Any]:
        run = self._run(run_id)
        sealed = run.observations.seal(step, run.state.last_step, self._step_retention)
        before = []
        for earlier in sealed.open_before:  # in order, each once: linear, as in the service
            found = run.observations.seal(earlier, run.state.last_step, self._step_retention)
            if found.observed:
                batch = assemble(found.observed, len(run.state.objectives), run.streaming)
                with contextlib.suppress(spard.InputError):
                    self._apply(run, earlier, batch.scores, False)
                    before.append(earlier)
        if not sealed.observed:
            raise _HttpProblemError(409, nothing_to_commit(step, sealed.last_step), "step")
        batch = assemble(sealed.observed, len(run.state.objectives), run.streaming)
        advantages = bool((body or {}).get("return_advantages"))
        result = self._apply(run, step, batch.scores, advantages)
        return 200, commit_payload(run_id or "", result, batch, before)

    def _commit_if_possible(self, run_id: str | None, step: int) -> bool:
        """Commit a step the rules make due; one with nothing usable stays open."""
        try:
            self._commit(run_id, step, {})
        except (_HttpProblemError, spard.InputError):
            return False
        return True

    def _weights(self, run_id: str | None, request: httpx.Request) -> tuple[int, Any]:
        run = self._run(run_id)
        if request.headers.get("if-none-match", "").strip('" ') == run.etag:
            return 304, None
        return 200, run.weights(run_id or "")

    def _history(self, run_id: str | None, request: httpx.Request) -> tuple[int, Any]:
        run = self._run(run_id)
        after = int(request.url.params.get("after", -1))
        limit = int(request.url.params.get("limit", 100))
        entries = [entry for entry in run.history if entry["step"] > after][:limit]
        next_after = entries[-1]["step"] if len(entries) == limit else None
        return 200, {"run_id": run_id, "entries": entries, "next_after": next_after}

    def _import(self, run_id: str | None, body: Any) -> tuple[int, Any]:
        run = self._run(run_id)
        state = spard.State.from_dict(body)
        if state.objectives != run.state.objectives:
            raise _HttpProblemError(
                422, "state.objectives differ from the run's", "state.objectives"
            )
        run.state, run.updated_at, run.etag = state, time.time(), secrets.token_hex(12)
        run.observations.drop_after(state.last_step)
        keep = -1 if state.last_step is None else state.last_step
        run.history = [entry for entry in run.history if entry["step"] <= keep]
        return 200, run.summary(run_id or "")


class LocalTransport(httpx.BaseTransport):
    """Sync httpx transport over :class:`LocalRuns`."""

    def __init__(self, runs: LocalRuns | None = None) -> None:
        self.runs = runs or LocalRuns()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        return self.runs.handle(request)


class AsyncLocalTransport(httpx.AsyncBaseTransport):
    """Async httpx transport over :class:`LocalRuns`."""

    def __init__(self, runs: LocalRuns | None = None) -> None:
        self.runs = runs or LocalRuns()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        return self.runs.handle(request)


def _request_id(request: httpx.Request) -> str | None:
    return request_id_from_header(request.headers.get(IDEMPOTENCY_HEADER))


def _json(request: httpx.Request) -> Any:
    try:
        return json.loads(request.content or b"{}")
    except ValueError as exc:
        raise _HttpProblemError(422, f"body is not valid JSON: {exc}", "body") from None


def _numpy_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot serialise {type(value).__name__}")
