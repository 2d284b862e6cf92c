"""Runs written by the first releases (before streaming), brought to this version's schema.

Such a run holds its state, summary and etag only. This is the one rule that upgrades it; a
store that may hold such runs (Redis) is given it and applies it where its reads start, once
per run, so no read path knows about the old schema.
"""

from __future__ import annotations

import secrets
from dataclasses import replace

import orjson

import spard
from spard.service.protocol.streaming import StreamingConfig
from spard.service.runs.records import created_at_of, run_record
from spard.service.runs.store import LegacyRun, RunKey, RunMeta, StoredRun


def upgrade_legacy_run(key: RunKey, legacy: LegacyRun) -> StoredRun:
    """This version's record of ``legacy``: the same state and etag (writers holding it are
    not disturbed), the documents derived from the state, and a new incarnation with the
    default streaming settings (the old schema had none)."""
    state = spard.State.from_dict(orjson.loads(legacy.state))
    meta = RunMeta(secrets.token_hex(12), state.objectives, StreamingConfig())
    created_at = created_at_of(legacy.summary)
    record = run_record(key.run_id, state, meta, created_at=created_at, etag=legacy.etag)
    # The stored bytes, not a re-encoding: the upgrade adds fields and rewrites no state.
    return StoredRun(replace(record, state=legacy.state), meta)
