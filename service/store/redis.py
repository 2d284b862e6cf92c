"""The Redis store: all run state in Redis, so any replica can serve any request.

Keys of a run share the hash tag ``{tenant:run}`` (one Redis Cluster slot)::

    <prefix>:{tenant:run}:run       hash: state, summary, etag, updated
    <prefix>:{tenant:run}:history   sorted set: history entries scored by step
    <prefix>:active                 sorted set: runs by last write time (for per-run metrics)

Writes are Lua scripts that compare the stored etag and write in one round trip.
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
from redis.backoff import ExponentialBackoff

from spard.service.settings import Settings
from spard.service.store.base import (
    CommitOutcome,
    HistoryEntry,
    RunKey,
    RunRecord,
    StoreUnavailableError,
)

_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'summary', ARGV[2], 'etag', ARGV[3],
           'updated', ARGV[4])
if tonumber(ARGV[5]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[5]) end
return 1
"""

_COMMIT = """
local current = redis.call('HGET', KEYS[1], 'etag')
if not current then return {0} end
if current ~= ARGV[1] then
  local record = redis.call('HMGET', KEYS[1], 'state', 'summary', 'etag')
  return {1, record[1], record[2], record[3]}
end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'summary', ARGV[3], 'etag', ARGV[4],
           'updated', ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[2], ARGV[6], ARGV[6])
redis.call('ZADD', KEYS[2], ARGV[6], ARGV[7])
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[8])
if excess > 0 then redis.call('ZREMRANGEBYRANK', KEYS[2], 0, excess - 1) end
if tonumber(ARGV[9]) > 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[9])
  redis.call('EXPIRE', KEYS[2], ARGV[9])
end
return {2}
"""

_REPLACE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'summary', ARGV[2], 'etag', ARGV[3],
           'updated', ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[2], ARGV[5], '+inf')
if tonumber(ARGV[6]) > 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[6])
  redis.call('EXPIRE', KEYS[2], ARGV[6])
end
return 1
"""

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


class RedisStore:
    """Run storage in Redis (standalone or Cluster), with the store's exactly-once writes."""

    def __init__(self, settings: Settings) -> None:
        assert settings.redis_url is not None
        options: dict[str, Any] = {
            "socket_timeout": settings.redis_timeout_s,
            "socket_connect_timeout": settings.redis_timeout_s,
            # One quick retry on a dropped connection (e.g. Redis restarted between requests);
            # a retried script is harmless: its etag check turns a duplicate into STALE.
            "retry": Retry(ExponentialBackoff(cap=0.05, base=0.01), 1),
            "retry_on_error": [redis_errors.ConnectionError],
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
        self._create = self._client.register_script(_CREATE)
        self._commit = self._client.register_script(_COMMIT)
        self._replace = self._client.register_script(_REPLACE)
        self._indexed: dict[RunKey, float] = {}

    def _keys(self, key: RunKey) -> list[str]:
        base = f"{self._prefix}:{key.hash_tag}"
        return [f"{base}:run", f"{base}:history"]

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

    async def create(self, key: RunKey, record: RunRecord) -> bool:
        now = time.time()
        async with self._guard("create"):
            created = await self._create(
                keys=self._keys(key),
                args=[record.state, record.summary, record.etag, now, self._ttl],
            )
            if created:
                self._indexed.pop(key, None)
                await self._index(key, now)
        return bool(created)

    async def load(self, key: RunKey) -> RunRecord | None:
        async with self._guard("load"):
            state, summary, etag = await self._client.hmget(
                self._keys(key)[0], ["state", "summary", "etag"]
            )
        if etag is None:
            return None
        return RunRecord(state=state, summary=summary, etag=etag.decode())

    async def load_summary(self, key: RunKey) -> bytes | None:
        async with self._guard("load"):
            summary: bytes | None = await self._client.hget(self._keys(key)[0], "summary")
        return summary

    async def commit(
        self, key: RunKey, expected_etag: str, record: RunRecord, entry: HistoryEntry
    ) -> tuple[CommitOutcome, RunRecord | None]:
        now = time.time()
        args = [expected_etag, record.state, record.summary, record.etag, now, entry.step]
        args += [entry.payload, self._history_retention, self._ttl]
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
        async with self._guard("replace"):
            return bool(await self._replace(keys=self._keys(key), args=args))

    async def delete(self, key: RunKey) -> bool:
        async with self._guard("delete"):
            removed = await self._client.delete(*self._keys(key))
            await self._client.zrem(self._active, orjson.dumps([key.tenant, key.run_id]))
        self._indexed.pop(key, None)
        return bool(removed)

    async def history(self, key: RunKey, after: int | None, limit: int) -> list[bytes] | None:
        run_key, history_key = self._keys(key)
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
