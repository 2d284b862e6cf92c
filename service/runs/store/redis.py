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
from spard.service.runs.store.redis_scripts import (
    COMMIT,
    CREATE,
    DELETE,
    OBSERVE,
    REPLACE,
    SEAL,
    UPGRADE,
    CommitReply,
    CreateReply,
    ObserveReply,
    ReplaceReply,
    SealReply,
)
from spard.service.runs.store.types import (
    CurrentWeights,
    HistoryRecord,
    LegacyRun,
    LegacyUpgrade,
    ObservationItem,
    ObserveLimits,
    ObserveOutcome,
    ObserveStatus,
    RecentRun,
    RunAbsent,
    RunKey,
    RunMeta,
    RunRecord,
    SealedStep,
    StoredRun,
    StoreOptions,
    WriteOutcome,
)

_UNAVAILABLE = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.BusyLoadingError,
    redis_errors.ClusterDownError,
    redis_errors.TryAgainError,
    redis_errors.MasterDownError,
    redis_errors.OutOfMemoryError,  # maxmemory reached: a write is refused before it starts
    redis_errors.ReadOnlyError,  # a replica promoted or demoted under us
    OSError,
)
# Error replies redis-py has no class for that say "not now" rather than "wrong request": a
# script running past busy-reply-threshold, a primary without enough replicas or unable to
# persist. Any other error reply is a bug here, and stays a 500.
_TRANSIENT_REPLIES = ("BUSY ", "NOREPLICAS ", "MISCONF ")
_INDEX_EVERY_S = 5.0  # how often one replica refreshes a run's entry in the active index
_UPGRADE_TRIES = 16
_RUN_FIELDS = ["state", "summary", "etag", "last_step", "weights", "meta"]
_COMMIT_OUTCOMES = {
    CommitReply.MISSING: WriteOutcome.MISSING,
    CommitReply.STALE: WriteOutcome.STALE,
    CommitReply.APPLIED: WriteOutcome.APPLIED,
}


# What a Lua script takes as ARGV.
ScriptArgs = list[bytes | str | int | float]


def _step_arg(step: int | None) -> int:
    return -1 if step is None else step


def _blob(reply: object) -> bytes:
    """A stored value as this client returns it (bytes: the client never decodes replies)."""
    if not isinstance(reply, bytes):
        raise StoreUnavailableError(f"unexpected reply from Redis: {type(reply).__name__}")
    return reply


def _maybe_blob(reply: object) -> bytes | None:
    return None if reply is None else _blob(reply)


def _observation_field(name: str) -> tuple[str, int] | None:
    """``o|<group>|<rollout>`` -> (group, rollout); None for bookkeeping fields."""
    if not name.startswith("o|"):
        return None
    group, _, rollout = name[2:].rpartition("|")
    return group, int(rollout)


class RedisStore:
    """Run storage in Redis (standalone or Cluster), with the store's exactly-once writes.

    ``upgrade`` turns a run written by the first releases into this version's (see
    :class:`~spard.service.runs.store.types.LegacyRun`); the store applies it where every read
    starts, :meth:`_fields`.
    """

    def __init__(
        self,
        url: str,
        options: StoreOptions | None = None,
        *,
        upgrade: LegacyUpgrade,
        cluster: bool = False,
        timeout_s: float = 2.0,
        key_prefix: str = "spard",
        password: str | None = None,
    ) -> None:
        options = options or StoreOptions()
        connection: dict[str, Any] = {
            "socket_timeout": timeout_s,
            "socket_connect_timeout": timeout_s,
            # No retry below the service: a script re-sent after a timeout may already have run,
            # and "the next step" computed again would apply a batch twice. A failed call is a
            # 503 whose retry (same Idempotency-Key) the service answers exactly once. This also
            # keeps the real timeout at redis_timeout_s, not a multiple of it.
            "retry": Retry(NoBackoff(), 0),
        }
        if password is not None:
            # Beside the URL, not in it: a mounted Secret needs no URL escaping.
            connection["password"] = password
        self._client: Redis | RedisCluster
        if cluster:
            self._client = RedisCluster.from_url(url, **connection)
        else:
            self._client = Redis.from_url(url, **connection)
        self._prefix = key_prefix
        self._active = f"{self._prefix}:active"
        self._history_retention = options.history_retention
        self._ttl = options.run_ttl_s
        self._create = self._client.register_script(CREATE)
        self._commit = self._client.register_script(COMMIT)
        self._replace = self._client.register_script(REPLACE)
        self._delete = self._client.register_script(DELETE)
        self._observe = self._client.register_script(OBSERVE)
        self._seal = self._client.register_script(SEAL)
        self._upgrade = self._client.register_script(UPGRADE)
        self._upgrade_legacy = upgrade
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
        except redis_errors.ResponseError as exc:
            if not str(exc).startswith(_TRANSIENT_REPLIES):
                raise
            raise StoreUnavailableError(f"Redis is unavailable ({operation}: {exc})") from exc

    async def _index(self, key: RunKey, now: float) -> None:
        if now - self._indexed.get(key, 0.0) < _INDEX_EVERY_S:
            return
        self._indexed[key] = now
        member = orjson.dumps([key.tenant, key.run_id])
        await self._client.zadd(self._active, {member: now})

    async def create(self, key: RunKey, record: RunRecord, meta: RunMeta) -> WriteOutcome:
        now = time.time()
        args: ScriptArgs = [record.state, record.summary, record.etag, now, self._ttl]
        args += [_step_arg(record.last_step), record.weights, meta.to_json(), meta.incarnation]
        async with self._guard("create"):
            reply = CreateReply(await self._create(keys=self._keys(key), args=args))
            if reply is CreateReply.EXISTS:
                return WriteOutcome.EXISTS
            self._indexed.pop(key, None)
            await self._index(key, now)
        return WriteOutcome.APPLIED

    async def load(self, key: RunKey) -> StoredRun | RunAbsent:
        found = await self._fields(key, _RUN_FIELDS)
        if isinstance(found, RunAbsent):
            return found
        state, summary, etag, last_step, weights, meta = found
        last = int(last_step)
        record = RunRecord(state, summary, etag.decode(), None if last < 0 else last, weights)
        return StoredRun(record, RunMeta.from_json(meta))

    async def load_summary(self, key: RunKey) -> bytes | RunAbsent:
        found = await self._fields(key, ["summary"])
        return found if isinstance(found, RunAbsent) else found[0]

    async def load_weights(self, key: RunKey) -> CurrentWeights | RunAbsent:
        found = await self._fields(key, ["etag", "weights"])
        if isinstance(found, RunAbsent):
            return found
        etag, weights = found
        return CurrentWeights(etag.decode(), weights)

    async def _fields(self, key: RunKey, names: list[str]) -> list[bytes] | RunAbsent:
        """Fields of a run's hash in one round trip (the first one is always set in a run).
        Every read starts here: a run written by an earlier version (no incarnation yet) is
        upgraded first, once, whichever read finds it."""
        for _ in range(_UPGRADE_TRIES):
            async with self._guard("load"):
                replies = await self._client.hmget(self._keys(key)[0], [*names, "incarnation"])
            *values, incarnation = map(_maybe_blob, replies)
            if values[0] is None:
                return RunAbsent.MISSING
            if incarnation is not None:
                return [_blob(value) for value in values]
            await self._upgrade_run(key)
        raise StoreUnavailableError(f"run {key.run_id!r} changed during {_UPGRADE_TRIES} reads")

    async def _upgrade_run(self, key: RunKey) -> None:
        """Give a run written by an earlier version (state, summary, etag, updated only) the
        fields this one reads, keeping its etag so that writers holding it are not disturbed.
        A run deleted, written or upgraded meanwhile is left as it is: the caller reads again."""
        async with self._guard("upgrade"):
            fields = await self._client.hmget(self._keys(key)[0], ["state", "summary", "etag"])
        state, summary, etag = map(_maybe_blob, fields)
        if state is None or summary is None or etag is None:
            return
        upgraded = self._upgrade_legacy(key, LegacyRun(state, summary, etag.decode()))
        record, meta = upgraded.record, upgraded.meta
        args: ScriptArgs = [etag, record.summary, _step_arg(record.last_step), record.weights]
        args += [meta.to_json(), meta.incarnation]
        async with self._guard("upgrade"):
            await self._upgrade(keys=self._keys(key)[:1], args=args)

    async def observe(
        self,
        key: RunKey,
        incarnation: str,
        step: int | None,
        items: list[ObservationItem],
        limits: ObserveLimits,
    ) -> ObserveOutcome | RunAbsent:
        # The script's ARGV has no null: -1 stands for "the open step" / "assign an index".
        args: ScriptArgs = [incarnation, _step_arg(step), limits.group_size, self._ttl]
        args += [limits.max_open_steps, limits.max_cells]
        for item in items:
            rollout = -1 if item.rollout_index is None else item.rollout_index
            args += [item.group, rollout, item.observation_id or "", item.scores]
        async with self._guard("observe"):
            reply = await self._observe(keys=self._keys(key), args=args)
        status = ObserveReply(reply[0])
        if status is ObserveReply.MISSING:
            return RunAbsent.MISSING
        if status is ObserveReply.RECREATED:
            return RunAbsent.RECREATED
        if status is ObserveReply.LATE:
            return ObserveOutcome(ObserveStatus.LATE, step=int(reply[1]))
        if status is ObserveReply.FULL:
            open_steps = [int(s) for s in reply[2]]
            return ObserveOutcome(ObserveStatus.FULL, step=int(reply[1]), open_before=open_steps)
        if status is ObserveReply.TOO_LARGE:
            groups, width = int(reply[2]), int(reply[3])
            return ObserveOutcome(
                ObserveStatus.TOO_LARGE, step=int(reply[1]), groups=groups, width=width
            )
        step, accepted, duplicates, complete, conflicts, overflow, open_before = reply[1:]
        return ObserveOutcome(
            ObserveStatus.OK,
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
    ) -> SealedStep | RunAbsent:
        async with self._guard("seal"):
            reply = await self._seal(keys=self._keys(key), args=[step, retention, incarnation])
        status = SealReply(reply[0])
        if status is SealReply.MISSING:
            return RunAbsent.MISSING
        if status is SealReply.RECREATED:
            return RunAbsent.RECREATED
        last, fields, open_before = int(reply[1]), reply[2], reply[3]
        observed: dict[tuple[str, int], bytes] = {}
        for name, value in zip(fields[::2], fields[1::2], strict=True):
            position = _observation_field(name.decode())
            if position is not None:
                observed[position] = value
        return SealedStep(observed, None if last < 0 else last, [int(s) for s in open_before])

    async def commit(
        self, key: RunKey, expected_etag: str, record: RunRecord, entry: HistoryRecord
    ) -> WriteOutcome:
        now = time.time()
        args: ScriptArgs = [expected_etag, record.state, record.summary, record.etag, now]
        args += [entry.step]
        args += [entry.payload, self._history_retention, self._ttl, record.weights]
        async with self._guard("commit"):
            reply = await self._commit(keys=self._keys(key), args=args)
            status = CommitReply(reply[0])
            if status is CommitReply.APPLIED:
                await self._index(key, now)
        return _COMMIT_OUTCOMES[status]

    async def replace(self, key: RunKey, record: RunRecord) -> WriteOutcome:
        last_step = record.last_step
        drop_from = "-inf" if last_step is None else f"({last_step}"
        args: ScriptArgs = [record.state, record.summary, record.etag, time.time(), drop_from]
        args += [self._ttl]
        args += [_step_arg(last_step), record.weights]
        async with self._guard("replace"):
            reply = ReplaceReply(await self._replace(keys=self._keys(key), args=args))
        return WriteOutcome.APPLIED if reply is ReplaceReply.REPLACED else WriteOutcome.MISSING

    async def delete(self, key: RunKey) -> WriteOutcome:
        async with self._guard("delete"):
            removed = await self._delete(keys=self._keys(key))
            await self._client.zrem(self._active, orjson.dumps([key.tenant, key.run_id]))
        self._indexed.pop(key, None)
        # DEL's count of the keys removed: the run's hash, its history, or both.
        return WriteOutcome.APPLIED if removed else WriteOutcome.MISSING

    async def history(
        self, key: RunKey, after: int | None, limit: int
    ) -> list[HistoryRecord] | RunAbsent:
        run_key, history_key, _ = self._keys(key)
        low = "-inf" if after is None else f"({after}"
        async with self._guard("history"):
            exists = await self._client.exists(run_key)
            if not exists:
                return RunAbsent.MISSING
            entries: list[tuple[bytes, float]] = await self._client.zrangebyscore(
                history_key, low, "+inf", start=0, num=limit, withscores=True
            )  # type: ignore[assignment]  # redis-py types withscores replies loosely
        return [HistoryRecord(int(step), _blob(payload)) for payload, step in entries]

    async def recent_runs(
        self, since: float, limit: int, tenant: str | None = None
    ) -> list[RecentRun]:
        if limit <= 0:
            return []
        async with self._guard("recent_runs"):
            # One index for every tenant: a tenant's runs are picked from all the members (a
            # few per active run), so that other tenants' newer runs cannot crowd them out.
            replies = await self._client.zrevrangebyscore(
                self._active, "+inf", since, start=0, num=limit if tenant is None else -1
            )
            members = [_blob(member) for member in replies]
            keys = [RunKey(*orjson.loads(member)) for member in members]
            if tenant is not None:
                chosen = [i for i, key in enumerate(keys) if key.tenant == tenant][:limit]
                members = [members[i] for i in chosen]
                keys = [keys[i] for i in chosen]
            async with self._client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.hmget(self._keys(key)[0], ["summary", "incarnation"])
                replies = await pipe.execute()
            found: list[RecentRun] = []
            gone, earlier = [], []
            for member, key, reply in zip(members, keys, replies, strict=True):
                summary, incarnation = map(_maybe_blob, reply)
                if summary is None:
                    gone.append(member)
                    continue
                if incarnation is None:  # an earlier version's run: upgraded below
                    earlier.append(len(found))
                found.append(RecentRun(key, summary))
            if gone:  # deleted elsewhere or expired: drop them so their series disappear
                await self._client.zrem(self._active, *gone)
            await self._client.zremrangebyscore(self._active, "-inf", since - 86400)
        deleted = set()
        for index in earlier:  # rare: one upgrade each, through the one read that upgrades
            key = found[index].key
            upgraded = await self._fields(key, ["summary"])
            if isinstance(upgraded, RunAbsent):
                deleted.add(index)
            else:
                found[index] = RecentRun(key, upgraded[0])
        return [run for index, run in enumerate(found) if index not in deleted]

    async def ping(self) -> None:
        async with self._guard("ping"):
            await self._client.ping()

    async def close(self) -> None:
        await self._client.aclose()
