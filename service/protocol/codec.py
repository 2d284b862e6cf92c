"""Decoding of step bodies: JSON, the binary format of :mod:`spard.service.protocol.wire`,
and msgpack."""

from __future__ import annotations

import codecs
import functools
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np
import orjson
import simdjson

from spard.errors import InputError
from spard.scores import parse_scores, scores_array
from spard.service.protocol.errors import (
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
    invalid_json,
)
from spard.service.protocol.wire import OCTET_STREAM, decode_step
from spard.types import FloatArray

JSON = "application/json"
MSGPACK_TYPES = ("application/msgpack", "application/x-msgpack", "application/vnd.msgpack")
_STEP_FIELDS = {"step", "scores", "prompt_ids", "return_advantages"}


@dataclass(frozen=True)
class StepInput:
    """A decoded step request: its scores converted, not checked (the step checks them, with
    :func:`spard.scores.parse_scores`, where the run's K is known)."""

    step: int | None
    scores: FloatArray  # (N, G, K) when valid
    return_advantages: bool
    prompt_ids: list[str | int] | None


def decode_step_body(content_type: str | None, body: bytes, max_scores: int) -> StepInput:
    """Decode a step body of any supported media type and check its scores by the engine's
    one rule (:func:`spard.scores.parse_scores`) in all but the run's K, which needs the run:
    a malformed batch is refused before the run is read (422 even for a missing run, no
    store read, no rejected step counted)."""
    decoded = _decode(content_type, body, max_scores)
    parse_scores(decoded.scores, None)
    return decoded


def _decode(content_type: str | None, body: bytes, max_scores: int) -> StepInput:
    media_type = (content_type or JSON).split(";", 1)[0].strip().lower()
    if media_type == OCTET_STREAM:
        decoded = decode_step(body)
        _check_size(decoded.scores.size, max_scores)
        return StepInput(decoded.step, decoded.scores, decoded.return_advantages, None)
    if media_type == JSON or media_type.endswith("+json"):
        plain = _plain_step_json(body, max_scores)
        if plain is not None:  # numbers only: nothing for the boolean scan to find
            return _from_mapping(plain, max_scores, binary_scores=False)
        return _from_mapping(read_json(body), max_scores, binary_scores=False, body=body)
    if media_type in MSGPACK_TYPES:
        try:
            payload = msgpack.unpackb(body, raw=False, strict_map_key=True)
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            raise InputError(f"body is not valid msgpack: {exc}", field="body") from None
        return _from_mapping(payload, max_scores, binary_scores=True)
    raise UnsupportedMediaTypeError(
        f"unsupported Content-Type {media_type!r}: use {JSON}, {OCTET_STREAM} or "
        f"{MSGPACK_TYPES[0]}",
        field="Content-Type",
    )


def _from_mapping(
    payload: Any, max_scores: int, *, binary_scores: bool, body: bytes | None = None
) -> StepInput:
    if not isinstance(payload, dict):
        raise InputError("body must be an object with 'step' and 'scores'", field="body")
    allowed = _STEP_FIELDS | {"shape"} if binary_scores else _STEP_FIELDS
    unknown = sorted(str(name) for name in set(payload) - allowed)
    if unknown:
        raise InputError(f"unknown field(s) {unknown}", field=unknown[0])
    step = payload.get("step")
    if step is not None and (isinstance(step, bool) or not isinstance(step, int) or step < 0):
        raise InputError(f"step must be a non-negative integer; got {step!r}", field="step")
    return_advantages = payload.get("return_advantages", False)
    if not isinstance(return_advantages, bool):
        raise InputError("return_advantages must be true or false", field="return_advantages")
    if "scores" not in payload:
        raise InputError("scores is required", field="scores")
    raw = _binary_scores(payload) if binary_scores else payload["scores"]
    _check_size(_nested_size(raw), max_scores)
    booleans = body is not None and _may_hold_booleans(body, payload)
    scores = scores_array(raw, may_hold_booleans=booleans)
    prompt_ids = payload.get("prompt_ids")
    if prompt_ids is not None and scores.ndim == 3:  # other shapes: the step refuses them
        valid = isinstance(prompt_ids, list) and all(
            isinstance(p, str | int) and not isinstance(p, bool) for p in prompt_ids
        )
        if not valid or len(prompt_ids) != scores.shape[0]:
            raise InputError(
                f"prompt_ids must be a list of {scores.shape[0]} strings or integers (one per "
                "prompt)",
                field="prompt_ids",
            )
    return StepInput(step, scores, return_advantages, prompt_ids)


def _may_hold_booleans(body: bytes, payload: dict[str, Any]) -> bool:
    """Whether the JSON body has more true/false tokens than its top-level flags: a byte
    count, so the exact scan of the scores runs only when a boolean may be among them."""
    tokens = body.count(b"true") + body.count(b"false")
    return tokens > sum(isinstance(value, bool) for value in payload.values())


def read_json(body: bytes) -> Any:
    """A JSON body, decoded; the one error for one that is not JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise invalid_json(str(exc)) from None


def _plain_step_json(body: bytes, max_scores: int) -> dict[str, Any] | None:
    """The usual JSON step body, read without building a Python float per score: an object of
    distinct step fields whose only string is their names and only container ``scores``, an
    (N, G, K) array of at most ``max_scores`` numbers, which comes back as a float64 array.
    None for any other body, which :func:`read_json` reads: a shortcut to the same values,
    never another rule (2048 scores read this way take a third of ``orjson.loads`` plus
    ``np.asarray``).
    """
    # Without escapes, quotes delimit strings; with as many quotes as the names need, every
    # bracket and comma is JSON structure, which _has_shape reads off the bytes. simdjson
    # skips a leading byte order mark that orjson refuses.
    if b"\\" in body or body.startswith(codecs.BOM_UTF8):
        return None
    try:
        document = simdjson.Parser().parse(body)
    except _SIMDJSON_ERRORS:
        return None  # not JSON, or a number no double holds: read_json names the problem
    if not isinstance(document, simdjson.Object):
        return None
    names = list(document.keys())
    # A repeated name: orjson keeps the last value, simdjson finds the first.
    if len(set(names)) != len(names) or not set(names) <= _PLAIN_FIELDS:
        return None
    if body.count(b'"') != 2 * len(names):
        return None
    fields = {name: document[name] for name in names}
    scores = fields.pop("scores", None)
    if not isinstance(scores, simdjson.Array) or any(map(_is_container, fields.values())):
        return None
    shape = _leading_shape(scores)
    if shape is None or shape[0] * shape[1] * shape[2] > max_scores:
        return None  # too many: the general reader refuses it by the same rule
    try:
        flat = np.frombuffer(scores.as_buffer(of_type="d"), dtype=np.float64)
    except _SIMDJSON_ERRORS:
        return None  # null, true, false or a string among the scores
    if not _has_shape(body, shape, flat.size):
        return None  # ragged, or deeper than (N, G, K)
    return {**fields, "scores": flat.reshape(shape)}


_PLAIN_FIELDS = frozenset(_STEP_FIELDS - {"prompt_ids"})
_SIMDJSON_ERRORS = (ValueError, TypeError, RuntimeError)
_NOT_STRUCTURE = bytes(sorted(set(range(256)) - set(b"[],")))


def _is_container(value: object) -> bool:
    return isinstance(value, simdjson.Array | simdjson.Object)


def _leading_shape(scores: simdjson.Array) -> tuple[int, int, int] | None:
    """(N, G, K) read off the first row of an array nested three deep; None if it is not."""
    sizes = []
    level: object = scores
    for _ in range(3):
        if not isinstance(level, simdjson.Array) or len(level) == 0:
            return None
        sizes.append(len(level))
        level = level[0]
    return sizes[0], sizes[1], sizes[2]


def _has_shape(body: bytes, shape: tuple[int, int, int], size: int) -> bool:
    """Whether the body's one array (a body of no other container and no string values) is
    ``shape`` throughout: its brackets and commas are exactly those of an (N, G, K) array."""
    if size != shape[0] * shape[1] * shape[2]:
        return False
    structure = body.translate(None, _NOT_STRUCTURE)
    skeleton = _cached_skeleton(*shape) if size <= _CACHED_SCORES else _skeleton(*shape)
    return structure[structure.find(b"[") : structure.rfind(b"]") + 1] == skeleton


_CACHED_SCORES = 1 << 17  # the cache holds at most 64 skeletons of 256 KiB


def _skeleton(n_prompts: int, n_rollouts: int, n_objectives: int) -> bytes:
    """The brackets and commas of an (N, G, K) JSON array of numbers, without the numbers."""
    group = b"[" + b",".join([b"[" + b"," * (n_objectives - 1) + b"]"] * n_rollouts) + b"]"
    return b"[" + b",".join([group] * n_prompts) + b"]"


_cached_skeleton = functools.lru_cache(maxsize=64)(_skeleton)


def _binary_scores(payload: dict[str, Any]) -> FloatArray:
    shape, data = payload.get("shape"), payload["scores"]
    if not (
        isinstance(shape, list)
        and len(shape) == 3
        and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)
    ):
        raise InputError("shape must be [N, G, K] (non-negative integers)", field="shape")
    if not isinstance(data, bytes):
        raise InputError("scores must be bytes: little-endian float32, (N, G, K)", field="scores")
    count = shape[0] * shape[1] * shape[2]
    if len(data) != 4 * count:
        raise InputError(
            f"scores holds {len(data)} bytes; shape {shape} needs {4 * count}", field="scores"
        )
    return np.frombuffer(data, dtype="<f4").astype(np.float64).reshape(shape)


def _nested_size(scores: Any) -> int:
    """N * G * K read off the first row, to refuse huge bodies before converting them."""
    size, level = 1, scores
    for _ in range(3):
        if isinstance(level, np.ndarray):
            return int(level.size)
        if not isinstance(level, list) or not level:
            return 0
        size *= len(level)
        level = level[0]
    return size


def _check_size(size: int, max_scores: int) -> None:
    if size > max_scores:
        raise PayloadTooLargeError(
            f"scores has {size} entries (N*G*K); the limit is {max_scores}", field="scores"
        )
