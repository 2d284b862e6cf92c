"""The compact binary body of a step, shared by the service and the client.

``application/octet-stream`` layout (all little-endian)::

    offset  size  field
    0       4     magic b"SPRD"
    4       1     format version (1)
    5       1     flags: bit 0 = return_advantages
    6       2     reserved, 0
    8       8     step, int64 (-1: the run's next step)
    16      4     N, uint32 (prompts)
    20      4     G, uint32 (rollouts per prompt)
    24      4     K, uint32 (objectives)
    28      4     reserved, 0
    32      4*N*G*K  scores, float32, C order (N, G, K); NaN = missing

Scores travel as float32: a step replayed must be sent in the same format it was applied with,
or its scores differ by float32 rounding and the replay is refused as a conflict.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from spard.errors import InputError
from spard.types import FloatArray

MAGIC = b"SPRD"
FORMAT_VERSION = 1
OCTET_STREAM = "application/octet-stream"
_HEADER = struct.Struct("<4sBBHqIIII")
HEADER_SIZE = _HEADER.size  # 32
# A request's idempotency key: a step or create sent again with the same key (any replica,
# any body encoding) is answered from what the first one did, never applied twice.
IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_REQUEST_ID = 128


def validate_request_id(request_id: Any, field: str = "request_id") -> str:
    """``request_id`` if it is 1-128 printable characters; else :class:`InputError` naming
    ``field``."""
    if (
        not isinstance(request_id, str)
        or not 1 <= len(request_id) <= MAX_REQUEST_ID
        or not request_id.isprintable()
    ):
        raise InputError(
            f"{field} must be 1-{MAX_REQUEST_ID} printable characters; got {request_id!r}",
            field=field,
        )
    return request_id


def request_id_from_header(value: str | None) -> str | None:
    """The validated request id an ``Idempotency-Key`` header carries, None without one;
    :class:`~spard.errors.InputError` naming the header otherwise."""
    return None if value is None else validate_request_id(value, field=IDEMPOTENCY_HEADER)


_FLAG_ADVANTAGES = 1


@dataclass(frozen=True)
class BinaryStep:
    """A decoded binary step body."""

    step: int | None
    scores: FloatArray  # (N, G, K) float64, NaN = missing
    return_advantages: bool


def encode_step(scores: FloatArray, step: int | None, *, return_advantages: bool) -> bytes:
    """Encode a ``(N, G, K)`` score array and its step index as a binary step body."""
    array = np.asarray(scores)
    if array.ndim != 3:
        raise InputError(f"scores must have shape (N, G, K); got {array.shape}", field="scores")
    n_prompts, n_rollouts, n_objectives = array.shape
    flags = _FLAG_ADVANTAGES if return_advantages else 0
    header = _HEADER.pack(
        MAGIC,
        FORMAT_VERSION,
        flags,
        0,
        -1 if step is None else step,
        n_prompts,
        n_rollouts,
        n_objectives,
        0,
    )
    return header + np.ascontiguousarray(array, dtype="<f4").tobytes()


def decode_step(body: bytes) -> BinaryStep:
    """Decode a binary step body; raises :class:`InputError` naming what is malformed."""
    if len(body) < HEADER_SIZE:
        raise InputError(
            f"binary body is {len(body)} bytes, shorter than its {HEADER_SIZE}-byte header",
            field="body",
        )
    magic, version, flags, _, step, n_prompts, n_rollouts, n_objectives, _ = _HEADER.unpack_from(
        body
    )
    if magic != MAGIC:
        raise InputError("binary body does not start with the magic b'SPRD'", field="body")
    if version != FORMAT_VERSION:
        raise InputError(
            f"binary format version {version} is not supported (expected {FORMAT_VERSION})",
            field="body",
        )
    if step < -1:
        raise InputError(f"step must be a non-negative integer; got {step}", field="step")
    count = n_prompts * n_rollouts * n_objectives
    expected = HEADER_SIZE + 4 * count
    if len(body) != expected:
        raise InputError(
            f"binary body holds {len(body) - HEADER_SIZE} bytes of scores; shape "
            f"({n_prompts}, {n_rollouts}, {n_objectives}) needs {4 * count}",
            field="scores",
        )
    scores = np.frombuffer(body, dtype="<f4", count=count, offset=HEADER_SIZE)
    return BinaryStep(
        step=None if step == -1 else int(step),
        scores=scores.astype(np.float64).reshape(n_prompts, n_rollouts, n_objectives),
        return_advantages=bool(flags & _FLAG_ADVANTAGES),
    )
