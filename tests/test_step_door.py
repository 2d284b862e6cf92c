"""The step's one front door (``StepDoor``): framework-free, and the same answers whichever
way the app reaches it."""

from __future__ import annotations

import httpx
import orjson
import pytest
from conftest import service_settings

import spard
from spard.service import create_app
from spard.service.http.routes.steps import StepDoorMiddleware
from spard.service.protocol.errors import StoreUnavailableError
from spard.service.protocol.streaming import StreamingConfig
from spard.service.runs.run_service import NoEvents, RunService
from spard.service.runs.step_request import StepCall, StepDoor, step_run_id
from spard.service.runs.store import RunAbsent, RunKey, StoredRun
from spard.service.runs.store.memory import MemoryStore
from spard.service.settings import Settings

pytestmark = pytest.mark.anyio
GOOD = orjson.dumps({"step": 0, "scores": [[[1.0, 0.0], [0.0, 1.0]]]})
KEYS = {"key-a": "alpha"}


class _Counted(NoEvents):
    def __init__(self) -> None:
        self.outages = 0

    def store_unavailable(self) -> None:
        self.outages += 1


class _DownStore(MemoryStore):
    async def load(self, key: RunKey) -> StoredRun | RunAbsent:
        raise StoreUnavailableError("connection refused")


async def _door(store: MemoryStore, events: _Counted | None = None) -> StepDoor:
    settings = Settings.model_validate({"api_keys": KEYS, "max_body_bytes": 4096})
    runs = RunService(store, events=events)
    await runs.create(
        RunKey("alpha", "r"), ["a", "b"], spard.SpardConfig(), None, StreamingConfig()
    )
    return StepDoor(runs, settings)


def test_the_door_routes_only_well_formed_steps():
    assert step_run_id("POST", "/v1/runs/r-1.x/steps") == "r-1.x"
    assert step_run_id("GET", "/v1/runs/r/steps") is None
    assert step_run_id("POST", "/v1/runs/bad id/steps") is None  # the app's 422
    assert step_run_id("POST", "/v1/runs/r/steps/0/commit") is None


async def test_the_door_decides_auth_limits_and_keys_itself():
    door = await _door(MemoryStore())
    key = "Bearer key-a"
    cases = [
        (StepCall("r", GOOD), 401, "Authorization"),
        (StepCall("r", GOOD, authorization="Bearer nope"), 401, "Authorization"),
        (StepCall("r", b" " * 5000, authorization=key), 413, "body"),
        (StepCall("r", GOOD, authorization=key, idempotency_key=""), 422, "Idempotency-Key"),
        (StepCall("r", GOOD, "text/plain", key), 415, "Content-Type"),
        (StepCall("other", GOOD, authorization=key), 404, "run_id"),
    ]
    for call, status, field in cases:
        answer = await door.answer(call)
        assert (answer.status, orjson.loads(answer.body)["field"]) == (status, field), answer
        assert (answer.headers.get("WWW-Authenticate") == "Bearer") is (status == 401)
    answer = await door.answer(StepCall("r", GOOD, authorization=key))
    assert answer.status == 200
    assert orjson.loads(answer.body)["step"] == 0


async def test_a_store_outage_is_a_503_the_run_events_count():
    events = _Counted()
    store = _DownStore()
    door = await _door(store, events)
    answer = await door.answer(StepCall("other", GOOD, authorization="Bearer key-a"))
    assert answer.status == 503
    assert answer.headers["Retry-After"] == "1"
    assert orjson.loads(answer.body)["detail"].startswith("run store unavailable")
    assert events.outages == 1


async def _answers(door_first: bool) -> list[tuple[int, object]]:
    app = create_app(service_settings("memory", None))
    if not door_first:
        app.user_middleware = [m for m in app.user_middleware if m.cls is not StepDoorMiddleware]
    json = {"content-type": "application/json"}
    sent = [
        ("/v1/runs/r/steps", GOOD, json),
        ("/v1/runs/r/steps", GOOD, json),  # the replay
        ("/v1/runs/r/steps", b"a=b", {"content-type": "text/plain"}),
        ("/v1/runs/r/steps", GOOD, {**json, "Idempotency-Key": ""}),
        ("/v1/runs/nope/steps", GOOD, json),
    ]
    answered = []
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            created = {"run_id": "r", "objectives": ["a", "b"]}
            assert (await http.post("/v1/runs", json=created)).status_code == 201
            for path, body, headers in sent:
                response = await http.post(path, content=body, headers=headers)
                answered.append((response.status_code, response.json()))
    return answered


async def test_the_route_answers_as_the_door_ahead_of_it():
    """A step the middleware leaves to the router (none, today) gets the same answers."""
    ahead, routed = await _answers(door_first=True), await _answers(door_first=False)
    assert ahead == routed
    assert [status for status, _ in ahead] == [200, 200, 415, 422, 404]
