"""The service's lifecycle and concurrency tests, against a real 3-master Redis Cluster."""

from __future__ import annotations

import pytest
import test_service_api as api
import test_service_concurrency as concurrency
import test_streaming as streaming
from conftest import service_client, service_settings

from tests.servers import RedisClusterServers

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    servers = RedisClusterServers(tmp_path_factory.mktemp("cluster"))
    servers.start()
    yield servers
    servers.stop()


@pytest.fixture
async def cluster_client(cluster):
    settings = service_settings("memory", None, redis_url=cluster.url, redis_cluster=True)
    async with service_client(settings) as client:
        yield client


@pytest.mark.parametrize(
    "body",
    [
        api.test_full_run_lifecycle,
        api.test_replay_returns_the_stored_response_and_changes_nothing,
        api.test_conflicting_and_too_old_steps_get_409,
        api.test_history_is_paged_in_step_order,
        api.test_export_import_then_identical_future_steps,
        api.test_importing_an_older_state_rolls_back_history,
        api.test_health_readiness_and_metrics,
        concurrency.test_duplicate_steps_from_many_tasks_apply_once,
        concurrency.test_interleaved_runs_stay_independent,
        streaming.test_committed_steps_equal_batch_steps,
        streaming.test_auto_commit_on_next_step_and_commit_of_open_earlier_steps,
        streaming.test_import_state_drops_later_observations,
        streaming.test_concurrent_writers_with_duplicates_commit_the_batch_step,
    ],
    ids=lambda f: f.__name__,
)
async def test_service_on_redis_cluster(cluster_client, body):
    await body(cluster_client)


def test_every_key_of_a_run_shares_one_slot(cluster):
    import redis as redis_sync

    from spard.service.runs.store import RunKey

    key = RunKey("tenant-a", "run-1")
    names = [f"spard:{key.hash_tag}:{suffix}" for suffix in ("run", "history", "obs", "obs:7")]
    client = redis_sync.Redis(port=cluster.ports[0])
    slots = {client.execute_command("CLUSTER KEYSLOT", k) for k in names}
    assert len(slots) == 1
