"""The Lua scripts of the Redis store: each write is one atomic round trip.

A script's reply starts with a status code; the codes are the enums below, written into the Lua
source (``$NAME``), so the Python side reads names, never bare numbers.
"""

from __future__ import annotations

from enum import IntEnum
from string import Template


class CreateReply(IntEnum):
    """CREATE: ``EXISTS`` (the id is taken) or ``CREATED``."""

    EXISTS = 0
    CREATED = 1


class ReplaceReply(IntEnum):
    """REPLACE: ``MISSING`` or ``REPLACED``."""

    MISSING = 0
    REPLACED = 1


class CommitReply(IntEnum):
    """COMMIT: ``{MISSING}``, ``{STALE}`` (another writer got there first) or ``{APPLIED}``."""

    MISSING = 0
    STALE = 1
    APPLIED = 2


class ObserveReply(IntEnum):
    """OBSERVE: ``{MISSING}``, ``{RECREATED}``, ``{LATE, step}``, ``{FULL, step, open_before}``,
    ``{TOO_LARGE, step, groups, width}`` or
    ``{OK, step, accepted, duplicates, complete, conflicts, overflow, open_before}``."""

    MISSING = 0
    RECREATED = 1
    LATE = 2
    OK = 3
    FULL = 4
    TOO_LARGE = 5


class SealReply(IntEnum):
    """SEAL: ``{MISSING}``, ``{RECREATED}`` or ``{SEALED, last_step, fields, open_before}``."""

    MISSING = 0
    SEALED = 1
    RECREATED = 2


def _lua(source: str, codes: type[IntEnum]) -> str:
    return Template(source).substitute({code.name: int(code) for code in codes})


# Shared by the scripts: a step number as text. Lua writes numbers with %.14g, so steps from
# 1e14 on would print alike ("1e+14") and share one key or member; %d is exact to 2**53.
INTEGER = """
local function int(n) return string.format('%d', n) end
"""

# Shared by the scripts: drop the observation hashes of steps in a score range of KEYS[3].
DROP_OBSERVATIONS = """
local function drop_observations(low, high)
  for _, step in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], low, high)) do
    redis.call('DEL', KEYS[3] .. ':' .. step)
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[3], low, high)
end
"""

CREATE = _lua(
    DROP_OBSERVATIONS
    + """
if redis.call('EXISTS', KEYS[1]) == 1 then return $EXISTS end
redis.call('DEL', KEYS[2])
drop_observations('-inf', '+inf')
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'summary', ARGV[2], 'etag', ARGV[3],
           'updated', ARGV[4], 'last_step', ARGV[6], 'weights', ARGV[7], 'meta', ARGV[8],
           'incarnation', ARGV[9])
if tonumber(ARGV[5]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[5]) end
return $CREATED
""",
    CreateReply,
)

DELETE = (
    DROP_OBSERVATIONS
    + """
drop_observations('-inf', '+inf')
return redis.call('DEL', KEYS[1], KEYS[2])
"""
)

COMMIT = _lua(
    """
local current = redis.call('HGET', KEYS[1], 'etag')
if not current then return {$MISSING} end
if current ~= ARGV[1] then return {$STALE} end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'summary', ARGV[3], 'etag', ARGV[4],
           'updated', ARGV[5], 'last_step', ARGV[6], 'weights', ARGV[10])
redis.call('ZREMRANGEBYSCORE', KEYS[2], ARGV[6], ARGV[6])
redis.call('ZADD', KEYS[2], ARGV[6], ARGV[7])
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[8])
if excess > 0 then redis.call('ZREMRANGEBYRANK', KEYS[2], 0, excess - 1) end
if tonumber(ARGV[9]) > 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[9])
  redis.call('EXPIRE', KEYS[2], ARGV[9])
end
return {$APPLIED}
""",
    CommitReply,
)

# A run written by an earlier version (state, summary, etag, updated only) gets the fields
# this version reads, derived from its state, unless it changed or was upgraded meanwhile.
# ARGV: etag, summary, last_step, weights, meta, incarnation.
UPGRADE = """
if redis.call('HGET', KEYS[1], 'etag') ~= ARGV[1] then return 0 end
if redis.call('HEXISTS', KEYS[1], 'incarnation') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'summary', ARGV[2], 'last_step', ARGV[3], 'weights', ARGV[4],
           'meta', ARGV[5], 'incarnation', ARGV[6])
return 1
"""

REPLACE = _lua(
    DROP_OBSERVATIONS
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return $MISSING end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'summary', ARGV[2], 'etag', ARGV[3],
           'updated', ARGV[4], 'last_step', ARGV[7], 'weights', ARGV[8])
redis.call('ZREMRANGEBYSCORE', KEYS[2], ARGV[5], '+inf')
drop_observations(ARGV[5], '+inf')
if tonumber(ARGV[6]) > 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[6])
  redis.call('EXPIRE', KEYS[2], ARGV[6])
end
return $REPLACED
""",
    ReplaceReply,
)

# KEYS: run, history, obs. ARGV: incarnation, step (-1: the open step), group_size (0: unset),
# ttl, max open steps, max cells (groups x width of the batch), then per observation: group,
# rollout (-1: assign), observation id ('' if none), scores. Replies: ObserveReply.
# Step hash fields: o|<group>|<rollout> = scores, n|<group> = count, k|<group>|<id> = assigned
# rollout, f|<group> = where the next assignment starts probing (indices below it and above the
# count are taken: linear work, as in ObservationLedger), #complete = complete groups,
# #groups = groups stored, #width = largest rollout + 1, #sealed = closed for commit.
# The bound on groups x width is checked before anything is stored (ObservationLedger.observe:
# the same upper bound), so a request is taken or refused whole. Sent without a step, an
# observation whose id is stored in an earlier kept step is a duplicate (see
# spard.service.runs.store.ledger).
OBSERVE = _lua(
    INTEGER
    + """
local run = redis.call('HMGET', KEYS[1], 'incarnation', 'last_step')
if not run[1] then return {$MISSING} end
if run[1] ~= ARGV[1] then return {$RECREATED} end
local last = tonumber(run[2])
local step = tonumber(ARGV[2])
local earlier = {}
if step < 0 then
  step = last + 1
  while redis.call('HEXISTS', KEYS[3] .. ':' .. int(step), '#sealed') == 1 do step = step + 1 end
  earlier = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', '(' .. int(step))
end
local obs = KEYS[3] .. ':' .. int(step)
if step <= last or redis.call('HEXISTS', obs, '#sealed') == 1 then return {$LATE, step} end
if redis.call('EXISTS', obs) == 0
   and redis.call('ZCOUNT', KEYS[3], '(' .. int(last), '+inf') >= tonumber(ARGV[5]) then
  return {$FULL, step, redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. int(last), '(' .. int(step))}
end
local group_size = tonumber(ARGV[3])
local count = (#ARGV - 6) / 4
local stored_width = tonumber(redis.call('HGET', obs, '#width') or '0')
local groups = tonumber(redis.call('HGET', obs, '#groups') or '0')
local width, assigned, most, seen = stored_width, {}, 0, {}
for i = 0, count - 1 do
  local at = 7 + 4 * i
  local group, rollout, id = ARGV[at], tonumber(ARGV[at + 1]), ARGV[at + 2]
  if not seen[group] then
    seen[group] = true
    if redis.call('HEXISTS', obs, 'n|' .. group) == 0 then groups = groups + 1 end
  end
  if rollout >= 0 then
    if rollout + 1 > width then width = rollout + 1 end
  elseif id == '' or redis.call('HEXISTS', obs, 'k|' .. group .. '|' .. id) == 0 then
    assigned[group] = (assigned[group] or 0) + 1
    if assigned[group] > most then most = assigned[group] end
  end
end
if group_size > 0 then width = group_size else width = width + most end
if groups * width > tonumber(ARGV[6]) then return {$TOO_LARGE, step, groups, width} end
local accepted, duplicates, conflicts, overflow = 0, 0, {}, {}
local function stored_earlier(group, id)
  if id == '' then return false end
  for _, before in ipairs(earlier) do
    if redis.call('HEXISTS', KEYS[3] .. ':' .. before, 'k|' .. group .. '|' .. id) == 1 then
      return true
    end
  end
  return false
end
local function store_one(i, group, rollout, id, scores)
  local assign = rollout < 0
  if assign then
    local known = false
    if id ~= '' then known = redis.call('HGET', obs, 'k|' .. group .. '|' .. id) end
    if known then
      rollout = tonumber(known)
    else
      rollout = tonumber(redis.call('HGET', obs, 'n|' .. group) or '0')
      local from = tonumber(redis.call('HGET', obs, 'f|' .. group) or '0')
      if from > rollout then rollout = from end
      while redis.call('HEXISTS', obs, 'o|' .. group .. '|' .. rollout) == 1 do
        rollout = rollout + 1
      end
      redis.call('HSET', obs, 'f|' .. group, rollout)
    end
  end
  local field = 'o|' .. group .. '|' .. rollout
  local previous = redis.call('HGET', obs, field)
  if not previous then
    if group_size > 0 and rollout >= group_size then
      overflow[#overflow + 1] = i
    else
      redis.call('HSET', obs, field, scores)
      if id ~= '' then redis.call('HSET', obs, 'k|' .. group .. '|' .. id, rollout) end
      accepted = accepted + 1
      if rollout + 1 > stored_width then stored_width = rollout + 1 end
      local stored = redis.call('HINCRBY', obs, 'n|' .. group, 1)
      if stored == 1 then redis.call('HINCRBY', obs, '#groups', 1) end
      if group_size > 0 and stored == group_size then redis.call('HINCRBY', obs, '#complete', 1) end
    end
  elseif previous == scores then
    duplicates = duplicates + 1
  else
    conflicts[#conflicts + 1] = i
  end
end
for i = 0, count - 1 do
  local at = 7 + 4 * i
  local group, id = ARGV[at], ARGV[at + 2]
  if stored_earlier(group, id) then
    duplicates = duplicates + 1
  else
    store_one(i, group, tonumber(ARGV[at + 1]), id, ARGV[at + 3])
  end
end
redis.call('HSET', obs, '#width', stored_width)
redis.call('ZADD', KEYS[3], int(step), int(step))
if tonumber(ARGV[4]) > 0 then
  redis.call('EXPIRE', obs, ARGV[4])
  redis.call('EXPIRE', KEYS[3], ARGV[4])
end
local complete = tonumber(redis.call('HGET', obs, '#complete') or '0')
local open = redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. int(last), '(' .. int(step))
return {$OK, step, accepted, duplicates, complete, conflicts, overflow, open}
""",
    ObserveReply,
)

# KEYS: run, history, obs. ARGV: step, retention, incarnation. Replies: SealReply (RECREATED:
# the caller's metadata is stale).
SEAL = _lua(
    INTEGER
    + DROP_OBSERVATIONS
    + """
local run = redis.call('HMGET', KEYS[1], 'last_step', 'incarnation')
if not run[1] then return {$MISSING} end
if run[2] ~= ARGV[3] then return {$RECREATED} end
local last = tonumber(run[1])
local obs = KEYS[3] .. ':' .. ARGV[1]
local fields = {}
if redis.call('EXISTS', obs) == 1 then
  redis.call('HSET', obs, '#sealed', 1)
  fields = redis.call('HGETALL', obs)
end
drop_observations('-inf', int(last - tonumber(ARGV[2])))
local open = redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. int(last), '(' .. ARGV[1])
return {$SEALED, last, fields, open}
""",
    SealReply,
)
