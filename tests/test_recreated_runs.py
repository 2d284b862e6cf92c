"""A run deleted and created again through another replica (#13.5): a replica that cached the
earlier run's metadata must commit and step with the new run's, never the old one's."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from conftest import service_settings

import spard
from spard.service.http.app import make_store
from spard.service.protocol.errors import RunChangedError, status_for
from spard.service.protocol.streaming import Observation, StreamingConfig
from spard.service.runs.observation_service import ObservationService
from spard.service.runs.run_service import RunService
from spard.service.runs.store import RunKey

pytestmark = pytest.mark.anyio
KEY = RunKey(tenant="t", run_id="again")


def replicas(store_kind, request):
    redis = request.getfixturevalue("redis_server") if store_kind == "redis" else None
    settings = service_settings(store_kind, redis)
    shared = make_store(settings)
    # Two replicas: on Redis two stores over one server, in memory two services over one store.
    other = make_store(settings) if store_kind == "redis" else shared
    return (RunService(shared), shared), (RunService(other), other)


def observations(step, objectives, group_size):
    return [
        Observation(
            step=step,
            group_id=group,
            rollout_index=rollout,
            scores={name: float((group + rollout + k) % 3) for k, name in enumerate(objectives)},
        )
        for group in range(3)
        for rollout in range(group_size)
    ]


@pytest.mark.parametrize("objectives", [["a", "b"], ["a", "b", "c"]])
async def test_a_replica_with_stale_metadata_commits_with_the_new_runs(
    store_kind, request, objectives
):
    (first, first_store), (second, second_store) = replicas(store_kind, request)
    config = spard.SpardConfig()
    await first.create(KEY, ["a", "b"], config, None, StreamingConfig(group_size=8))
    stale = ObservationService(first_store, first)
    await stale.observe(KEY, observations(0, ["a", "b"], 8))
    await stale.commit(KEY, 0, return_advantages=False)  # the first replica caches the run

    await second.delete(KEY)
    await second.create(KEY, objectives, config, None, StreamingConfig(group_size=2))
    await ObservationService(second_store, second).observe(KEY, observations(0, objectives, 2))

    commit = await stale.commit(KEY, 0, return_advantages=True)
    assert commit.result.objectives == tuple(objectives)
    assert commit.result.advantages.shape == (3, 2)
    expected, _ = spard.step(
        spard.init(objectives, config), commit.batch.scores, step=0, return_advantages=True
    )
    np.testing.assert_array_equal(commit.result.advantages, expected.advantages)
    summary = (await first_store.load_summary(KEY)).decode()
    assert '"group_size":2' in summary
    await first_store.close()
    if second_store is not first_store:
        await second_store.close()


def batch(t, objectives):
    return np.random.default_rng(t).random((3, 2, len(objectives)))


async def test_a_replica_that_cached_a_deleted_run_steps_the_recreated_one(store_kind, request):
    (first, first_store), (second, second_store) = replicas(store_kind, request)
    config = spard.SpardConfig()
    await first.create(KEY, ["a", "b", "c"], config, None, StreamingConfig())
    await first.step(KEY, 0, batch(0, "abc"), False)  # the first replica caches K = 3

    await second.delete(KEY)
    await second.create(KEY, ["a", "b"], config, None, StreamingConfig())
    for t in range(2):  # every valid step of the new run, not only the first
        result = await first.step(KEY, t, batch(t, "ab"), False)
        assert result.objectives == ("a", "b")
        assert not result.replayed
    with pytest.raises(spard.InputError):  # still refused when the stored run refuses it
        await first.step(KEY, 2, batch(2, "abc"), False)
    await first_store.close()
    if second_store is not first_store:
        await second_store.close()


class _RecreatingStore:
    """The real store; right after the first seal, another replica deletes the run and creates
    it again (the race of a commit with delete + create, made deterministic)."""

    def __init__(self, store, other: RunService, objectives):
        self._store, self._other, self._objectives = store, other, objectives
        self.raced = False

    def __getattr__(self, name):
        return getattr(self._store, name)

    async def seal(self, *args, **kwargs):
        sealed = await self._store.seal(*args, **kwargs)
        if not self.raced:
            self.raced = True
            await self._other.delete(KEY)
            await self._other.create(
                KEY, self._objectives, spard.SpardConfig(), None, StreamingConfig()
            )
        return sealed


@pytest.mark.parametrize("open_before", [False, True])
async def test_a_commit_racing_delete_and_create_applies_nothing_to_the_new_run(
    store_kind, request, open_before
):
    (first, first_store), (second, second_store) = replicas(store_kind, request)
    await first.create(KEY, ["a", "b"], spard.SpardConfig(), None, StreamingConfig())
    racing_store = _RecreatingStore(first_store, second, ["a", "b"])
    stale = ObservationService(racing_store, RunService(racing_store))
    await stale.observe(KEY, observations(0, ["a", "b"], 2))
    if open_before:  # an open earlier step: sealed after the race, by the old incarnation
        await stale.observe(KEY, observations(1, ["a", "b"], 2))
    with pytest.raises(RunChangedError) as refused:
        await stale.commit(KEY, 1 if open_before else 0, return_advantages=False)
    assert status_for(refused.value) == 409
    assert orjson.loads(await second.summary(KEY))["last_step"] is None

    # The new run's own step 0 commits normally.
    fresh = ObservationService(second_store, second)
    await fresh.observe(KEY, observations(0, ["a", "b"], 2))
    commit = await fresh.commit(KEY, 0, return_advantages=False)
    assert commit.result.step == 0
    assert not commit.result.replayed
    await first_store.close()
    if second_store is not first_store:
        await second_store.close()
