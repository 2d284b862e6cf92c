"""Many writers (threads and processes) on two service replicas sharing one Redis: duplicates,
late arrivals and a commit racing them; the committed step equals the batch step computed
from the observations that made it in."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import stream_writer

import spard
import spard.client
from spard.client import SpardClient
from tests.servers import ServiceProcess

pytestmark = pytest.mark.slow
OBJECTIVES = ["a", "b", "c"]
PROMPTS, ROLLOUTS = 24, 4


@pytest.fixture(scope="module")
def replicas(redis_server):
    env = {"SPARD_REDIS_URL": redis_server.url, "SPARD_AUTH_DISABLED": "true"}
    env["SPARD_KEY_PREFIX"] = "replicas"
    servers = [ServiceProcess(env=env).start() for _ in range(2)]
    yield [server.url for server in servers]
    for server in servers:
        server.stop()


def observations(step: int) -> list[dict]:
    rng = np.random.default_rng(step)
    scores = np.round(rng.random((PROMPTS, ROLLOUTS, 3)) * 4) / 4
    return [
        {
            "step": step,
            "group_id": n,
            "rollout_index": g,
            "scores": dict(zip(OBJECTIVES, scores[n, g].tolist(), strict=True)),
        }
        for n in range(PROMPTS)
        for g in range(ROLLOUTS)
    ]


def write_concurrently(urls, run_id, shares, tmp_path: Path) -> list[dict]:
    """Half the shares from threads, half from processes, alternating replicas; the late ones."""
    late: list[dict] = []
    threads, processes = [], []
    for i, share in enumerate(shares):
        url = urls[i % 2]
        if i % 2 == 0:
            thread = threading.Thread(
                target=lambda u=url, s=share: late.extend(stream_writer.send(u, run_id, s))
            )
            thread.start()
            threads.append(thread)
        else:
            path = tmp_path / f"share-{i}.json"
            path.write_text(json.dumps(share))
            script = Path(stream_writer.__file__)
            command = [sys.executable, str(script), url, run_id, str(path)]
            processes.append(subprocess.Popen(command, stdout=subprocess.PIPE))
    for thread in threads:
        thread.join()
    for process in processes:
        out, _ = process.communicate(timeout=120)
        assert process.returncode == 0
        late += json.loads(out)
    return late


def expected_step(state, step: int, kept: list[dict]):
    scores = np.full((PROMPTS, ROLLOUTS, 3), np.nan)
    for item in kept:
        scores[item["group_id"], item["rollout_index"]] = [item["scores"][k] for k in OBJECTIVES]
    groups = [n for n in range(PROMPTS) if not np.isnan(scores[n]).all()]
    return spard.step(state, scores[groups], step=step), groups


def key(item: dict) -> tuple:
    return (item["step"], item["group_id"], item["rollout_index"])


def test_writers_on_two_replicas_commit_the_batch_step(replicas, tmp_path):
    commit_client = SpardClient(replicas[1])
    run = SpardClient(replicas[0]).create_run(
        OBJECTIVES, config={"warmup": 2}, streaming={"group_size": ROLLOUTS}
    )
    state = spard.init(OBJECTIVES, spard.SpardConfig(warmup=2))
    for step in range(3):
        sent = observations(step)
        copies = sent + random.Random(step).sample(sent, len(sent) // 5)  # resends
        random.Random(step + 10).shuffle(copies)
        late = write_concurrently(replicas, run.run_id, [copies[i::8] for i in range(8)], tmp_path)
        assert late == []
        outcome = commit_client.commit(run.run_id, step)
        (expected, state), groups = expected_step(state, step, sent)
        assert outcome.group_ids == groups
        np.testing.assert_array_equal(outcome.sample_weights, expected.sample_weights)
        np.testing.assert_array_equal(outcome.reward_weights, expected.reward_weights)
        # Late arrivals after the commit: reported, never merged into a later step.
        again = write_concurrently(replicas, run.run_id, [sent[:5], sent[5:9]], tmp_path)
        assert sorted(map(key, again)) == sorted(map(key, sent[:9]))
    assert SpardClient(replicas[0]).get_run(run.run_id).steps_applied == 3


def test_a_commit_racing_writers_is_well_defined(replicas, tmp_path):
    client = SpardClient(replicas[0])
    run = client.create_run(OBJECTIVES, config={"warmup": 2}, streaming={"group_size": ROLLOUTS})
    sent = observations(0)
    random.Random(7).shuffle(sent)
    late: list[dict] = []
    writers = threading.Thread(
        target=lambda: late.extend(
            write_concurrently(replicas, run.run_id, [sent[i::6] for i in range(6)], tmp_path)
        )
    )
    writers.start()
    outcome = None
    while outcome is None:  # commit as soon as anything is there, while writers still write
        try:
            outcome = SpardClient(replicas[1]).commit(run.run_id, 0)
        except spard.client.ConflictError:
            continue
    writers.join()
    late_keys = {key(item) for item in late}
    kept = [item for item in sent if key(item) not in late_keys]
    print(f"race: {len(kept)} in the step, {len(late_keys)} late")
    assert outcome.observations == len(kept)  # every observation: in the step, or late
    (expected, _), groups = expected_step(
        spard.init(OBJECTIVES, spard.SpardConfig(warmup=2)), 0, kept
    )
    assert outcome.group_ids == groups
    np.testing.assert_array_equal(outcome.sample_weights, expected.sample_weights)
    assert client.commit(run.run_id, 0).replayed
