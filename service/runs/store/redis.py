"""The Redis store: all run state in Redis, so any replica can serve any request.

Keys of a run share the hash tag ``{tenant:run}`` (one Redis Cluster slot)::

    <prefix>:{tenant:run}:run       hash: state, summary, etag, updated, last_step, weights,
                                    meta, incarnation
    <prefix>:{tenant:run}:history   sorted set: history entries scored by step
    <prefix>:{tenant:run}:obs       sorted set: steps holding streamed observations
    <prefix>:{tenant:run}:obs:<s>   hash: step s's observations (fields: see redis_scripts.OBSERVE)
    <prefix>:active                 sorted set: runs by last write time (for per-run metrics)

Writes are Lua scripts that compare the stored etag and write in one round trip. The scripts
build the ``obs:<s>`` key names themselves: they share the run's hash tag, so they live in the
run's Cluster slot like the keys passed in.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from spard.service.protocol.errors import StoreUnavailableError
from spard.service.runs.ledger import (
    ObservationItem,
    ObserveOutcome,
    SealedStep,
    parse_observation_field,
)
from spard.service.runs.store.base import (
    CommitOutcome,
    HistoryEntry,
    RunKey,
    RunRecord,
    RunRecreatedError,
)
from spard.service.runs.store.redis_scripts import (
    COMMIT,
    CREATE,
    DELETE,
    OBSERVE,
    REPLACE,
    SEAL,
    UPGRADE,
)
from spard.service.settings import Settings

_UNAVAILABLE = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.BusyLoadingError,
    redis_errors.ClusterDownError,
    redis_errors.TryAgainError,
    redis_errors.MasterDownError,
    OSError,
)
_INDEX_EVERY_S = 5.0  # how often one replica refreshes a run's entry in the active index


def _step_arg(step: int | None) -> int:
    return -1 if step is None else step


class RedisStore:
    """Run storage in Redis (standalone or Cluster), with the store's exactly-once writes."""

    def __init__(self, settings: Settings) -> None:
        assert settings.redis_url is not None
        options: dict[str, Any] = {
            "socket_timeout": settings.redis_timeout_s,
            "socket_connect_timeout": settings.redis_timeout_s,
            # No retry below the service: a script re-sent after a timeout may already have run,
            # and "the next step" computed again would apply a batch twice. A failed call is a
            # 503 whose retry (same Idempotency-Key) the service answers exactly once. This also
            # keeps the real timeout at redis_timeout_s, not a multiple of it.
            "retry": Retry(NoBackoff(), 0),
        }
        self._client: Redis | RedisCluster
        if settings.redis_cluster:
            self._client = RedisCluster.from_url(settings.redis_url, **options)
        else:
            self._client = Redis.from_url(settings.redis_url, **options)
        self._prefix = settings.key_prefix
        self._active = f"{self._prefix}:active"
        self._history_retention = settings.history_retention
        self._ttl = settings.run_ttl_s
        self._create = self._client.register_script(CREATE)
        self._commit = self._client.register_script(COMMIT)
        self._replace = self._client.register_script(REPLACE)
        self._delete = self._client.register_script(DELETE)
        self._observe = self._client.register_script(OBSERVE)
        self._seal = self._client.register_script(SEAL)
        self._upgrade = self._client.register_script(UPGRADE)
        self._indexed: dict[RunKey, float] = {}

    def _keys(self, key: RunKey) -> list[str]:
        base = f"{self._prefix}:{key.hash_tag}"
        return [f"{base}:run", f"{base}:history", f"{base}:obs"]

    @contextlib.asynccontextmanager
    async def _guard(self, operation: str) -> AsyncIterator[None]:
        try:
            yield
        except _UNAVAILABLE as exc:
            raise StoreUnavailableError(
                f"Redis is unavailable ({operation}: {type(exc).__name__}: {exc})"
            ) from exc

    async def _index(self, key: RunKey, now: float) -> None:
        if now - self._indexed.get(key, 0.0) < _INDEX_EVERY_S:
            return
        self._indexed[key] = now
        member = orjson.dumps([key.tenant, key.run_id])
        await self._client.zadd(self._active, {member: now})

    async def create(self, key: RunKey, record: RunRecord, incarnation: str) -> bool:
        now = time.time()
        args = [record.state, record.summary, record.etag, now, self._ttl]
        args += [_step_arg(record.last_step), record.weights, record.meta, incarnation]
        async with self._guard("create"):
            created = await self._create(keys=self._keys(key), args=args)
            if created:
                self._indexed.pop(key, None)
                await self._index(key, now)
        return bool(created)

    async def load(self, key: RunKey) -> RunRecord | None:
        async with self._guard("load"):
            state, summary, etag, last_step, weights, meta = await self._client.hmget(
                self._keys(key)[0], ["state", "summary", "etag", "last_step", "weights", "meta"]
            )
        if etag is None:
            return None
        if meta is None:  # written by an earlier version: the caller upgrades it
            return RunRecord(state, summary, etag.decode())
        last = int(last_step)
        return RunRecord(state, summary, etag.decode(), None if last < 0 else last, weights, meta)

    async def upgrade(self, key: RunKey, record: RunRecord, incarnation: str) -> bool:
        args = [record.etag, record.summary, _step_arg(record.last_step), record.weights]
        args += [record.meta, incarnation]
        async with self._guard("upgrade"):
            return bool(await self._upgrade(keys=self._keys(key)[:1], args=args))

    async def load_weights(self, key: RunKey) -> tuple[str, bytes] | None:
        async with self._guard("load"):
            etag, weights = await self._client.hmget(self._keys(key)[0], ["etag", "weights"])
        return None if etag is None else (etag.decode(), weights or b"")

    async def observe(
        self,
        key: RunKey,
        incarnation: str,
        step: int,
        items: list[ObservationItem],
        group_size: int,
        max_open_steps: int,
    ) -> ObserveOutcome:
        args: list[Any] = [incarnation, step, group_size, self._ttl, max_open_steps]
        for item in items:
            args += [item.group, item.rollout_index, item.observation_id, item.scores]
        async with self._guard("observe"):
            reply = await self._observe(keys=self._keys(key), args=args)
        if reply[0] < 2:
            return ObserveOutcome("missing" if reply[0] == 0 else "reload")
        if reply[0] in (2, 4):
            return ObserveOutcome("late" if reply[0] == 2 else "full", step=int(reply[1]))
        step, accepted, duplicates, complete, conflicts, overflow, open_before = reply[1:]
        return ObserveOutcome(
            "ok",
            int(step),
            int(accepted),
            int(duplicates),
            int(complete),
            [int(i) for i in conflicts],
            [int(i) for i in overflow],
            [int(s) for s in open_before],
        )

    async def seal(
        self, key: RunKey, incarnation: str, step: int, retention: int
    ) -> SealedStep | None:
        async with self._guard("seal"):
            reply = await self._seal(keys=self._keys(key), args=[step, retention, incarnation])
        if reply[0] == 0:
            return None
        if reply[0] == 2:
            raise RunRecreatedError(key.run_id)
        last, fields, open_before = int(reply[1]), reply[2], reply[3]
        observed: dict[tuple[str, int], bytes] = {}
        for name, value in zip(fields[::2], fields[1::2], strict=True):
            position = parse_observation_field(name.decode())
            if position is not None:
                observed[position] = value
        return SealedStep(observed, None if last < 0 else last, [int(s) for s in open_before])

    async def load_summary(self, key: RunKey) -> bytes | None:
        async with self._guard("load"):
            summary, incarnation = await self._client.hmget(
                self._keys(key)[0], ["summary", "incarnation"]
            )
        if summary is None:
            return None
        summary_bytes: bytes = summary
        return summary_bytes if incarnation is not None else b""

    async def commit(
        self, key: RunKey, expected_etag: str, record: RunRecord, entry: HistoryEntry
    ) -> tuple[CommitOutcome, RunRecord | None]:
        now = time.time()
        args = [expected_etag, record.state, record.summary, record.etag, now, entry.step]
        args += [entry.payload, self._history_retention, self._ttl, record.weights]
        async with self._guard("commit"):
            reply = await self._commit(keys=self._keys(key), args=args)
            if reply[0] == 2:
                await self._index(key, now)
        if reply[0] == 0:
            return CommitOutcome.MISSING, None
        if reply[0] == 1:
            current = RunRecord(state=reply[1], summary=reply[2], etag=reply[3].decode())
            return CommitOutcome.STALE, current
        return CommitOutcome.APPLIED, None

    async def replace(self, key: RunKey, record: RunRecord, last_step: int | None) -> bool:
        drop_from = "-inf" if last_step is None else f"({last_step}"
        args = [record.state, record.summary, record.etag, time.time(), drop_from, self._ttl]
        args += [_step_arg(last_step), record.weights]
        async with self._guard("replace"):
            return bool(await self._replace(keys=self._keys(key), args=args))

    async def delete(self, key: RunKey) -> bool:
        async with self._guard("delete"):
            removed = await self._delete(keys=self._keys(key))
            await self._client.zrem(self._active, orjson.dumps([key.tenant, key.run_id]))
        self._indexed.pop(key, None)
        return bool(removed)

    async def history(self, key: RunKey, after: int | None, limit: int) -> list[bytes] | None:
        run_key, history_key, _ = self._keys(key)
        low = "-inf" if after is None else f"({after}"
        async with self._guard("history"):
            exists = await self._client.exists(run_key)
            if not exists:
                return None
            entries: list[bytes] = await self._client.zrangebyscore(
                history_key, low, "+inf", start=0, num=limit
            )
        return entries

    async def recent_runs(self, since: float, limit: int) -> list[tuple[RunKey, bytes]]:
        if limit <= 0:
            return []
        async with self._guard("recent_runs"):
            members = await self._client.zrevrangebyscore(
                self._active, "+inf", since, start=0, num=limit
            )
            keys = [RunKey(*orjson.loads(member)) for member in members]
            async with self._client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.hget(self._keys(key)[0], "summary")
                summaries = await pipe.execute()
            found: list[tuple[RunKey, bytes]] = []
            gone = []
            for member, key, summary in zip(members, keys, summaries, strict=True):
                if summary is None:
                    gone.append(member)
                else:
                    found.append((key, summary))
            if gone:  # deleted elsewhere or expired: drop them so their series disappear
                await self._client.zrem(self._active, *gone)
            await self._client.zremrangebyscore(self._active, "-inf", since - 86400)
        return found

    async def ping(self) -> None:
        async with self._guard("ping"):
            await self._client.ping()

    async def close(self) -> None:
        await self._client.aclose()
