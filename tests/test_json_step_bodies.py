"""JSON step bodies: the codec's shortcut for plain bodies (scores read straight into an
array) decodes exactly what the general reader (orjson, then numpy) decodes, and refuses
exactly what it refuses, with the same message; only the plain bodies take it."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spard.client._core import encode_json
from spard.service.protocol import codec
from spard.service.protocol.errors import API_ERRORS

MAX_SCORES = 20  # some drawn bodies are over it


def general(body: bytes, max_scores: int = MAX_SCORES) -> codec.StepInput:
    """The reader every body had before the shortcut, and the one it defers to."""
    return codec._from_mapping(codec.read_json(body), max_scores, binary_scores=False, body=body)


def outcome(decode: Any, body: bytes) -> tuple[Any, ...]:
    """What a decoder makes of a body: the input, bit for bit, or the error it raises."""
    try:
        got = decode(body)
    except API_ERRORS as error:
        return ("error", type(error).__name__, str(error), error.field)
    scores = got.scores
    bits = (scores.dtype.str, scores.shape, scores.tobytes())
    return ("input", got.step, got.return_advantages, got.prompt_ids, bits)


def decoded(body: bytes, max_scores: int = MAX_SCORES) -> tuple[Any, ...]:
    return outcome(lambda b: codec._decode("application/json", b, max_scores), body)


# Number texts as clients write them, with the cases where readers part ways: -0 (an integer,
# so +0.0) against -0.0, integers past 2**53 and past 64 bits, exponents, out of range.
NUMBER_TEXTS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(["-0", "-0.0", "0", "1E+2", "1e-400", "1e400", "5e-324", "0.1", "-1.5e3"]),
)
LEAF_TEXTS = st.one_of(
    NUMBER_TEXTS,
    NUMBER_TEXTS,
    st.sampled_from(["null", "true", "false", '"1.0"', "[]", "[1]", "{}"]),
)


@st.composite
def score_texts(draw: st.DrawFn) -> str:
    """An (N, G, K) array's text, sometimes made ragged, deeper or shallower somewhere."""
    n, g, k = (draw(st.integers(1, 3)) for _ in range(3))
    leaves = draw(st.sampled_from([NUMBER_TEXTS, LEAF_TEXTS]))  # often all numbers: plain
    rows = [[[draw(leaves) for _ in range(k)] for _ in range(g)] for _ in range(n)]
    change = draw(st.sampled_from(["none", "none", "drop", "add", "move", "flatten"]))
    i, j = draw(st.integers(0, n - 1)), draw(st.integers(0, g - 1))
    if change == "drop":
        rows[i][j].pop()
    elif change == "add":
        rows[i][j].append(draw(NUMBER_TEXTS))
    elif change == "move" and n * g > 1:  # ragged with the total kept: one cell's leaf moves
        src, dst = divmod(0, g), divmod(n * g - 1, g)
        rows[dst[0]][dst[1]].append(rows[src[0]][src[1]].pop())
    elif change == "flatten":
        rows[i][j] = rows[i][j][0]  # a leaf where a list was
    space = draw(st.sampled_from(["", " ", "\n  "]))

    def text(item: Any) -> str:
        if isinstance(item, list):
            return "[" + f",{space}".join(text(x) for x in item) + "]"
        return str(item)

    return text(rows)


FIELD_NAMES = ["step", "return_advantages", "prompt_ids", "extra", "scores", "st\\u0065p"]
OTHER_FIELDS = st.lists(
    st.tuples(
        st.sampled_from(FIELD_NAMES),
        st.sampled_from(["0", "3", "-1", "1.5", '"2"', "true", "false", "null", "[0]", "{}"]),
    ),
    max_size=3,
)


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    members = [("scores", draw(score_texts())), *draw(OTHER_FIELDS)]
    order = draw(st.permutations(range(len(members))))
    inner = ", ".join(f'"{members[i][0]}": {members[i][1]}' for i in order)
    return ("{" + inner + "}").encode()


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies())
def test_a_body_decodes_as_the_general_reader_decodes_it(body):
    assert decoded(body) == outcome(general, body)


@pytest.mark.parametrize(
    "body",
    [
        b'{"scores": [[[1, 2], [3]], [[4], [5, 6]]]}',  # ragged, the count of an (2, 2, 2)
        b'{"scores": [[[1, 2], [3, 4]], [[5, 6], 7]]}',
        b'{"scores": [[[1, 2], [3, [4]]]]}',
        b'{"scores": [[[1, 2], [3, 4]]], "scores": [[[5, 6], [7, 8]]]}',  # orjson: the last
        b'{"scores": [[[1, 2], [3, 4]]], "step": "1"}',
        b'{"scores": [[[1, 2], [3, 4]]], "step": {}}',
        b'{"scores": [[[1, 2], [3, 4]]], "return_advantages": [true]}',
        b'{"scores": [[[1, null], [3, 4]]]}',
        b'{"scores": [[[1, true], [3, 4]]]}',
        b'{"scores": [[[1, 1e400], [3, 4]]]}',
        b'{"scores": [[[1, 123456789012345678901234], [3, 4]]]}',
        b'{"scores": [[[1, 2], [3, 4]]], "prompt_ids": ["a]"]}',
        b'{"scores": [[[1, 2], [3, 4]]], "st\\u0065p": 1}',
        b'{"scores": [[[1, 2], [3, 4]]]} trailing',
        b"[[[1, 2], [3, 4]]]",
        b'\xef\xbb\xbf{"scores": [[[1, 2], [3, 4]]]}',  # simdjson skips the mark, orjson not
        b'\xef\xbb\xbf {"scores": [[[1, 2], [3, 4]]]}',
        # 21 scores, one over MAX_SCORES: refused by the general reader's size rule
        b'{"scores": [[[1, 2, 3, 4, 5, 6, 7], [1, 2, 3, 4, 5, 6, 7], [0, 0, 0, 0, 0, 0, 0]]]}',
    ],
)
def test_bodies_the_shortcut_leaves_to_the_general_reader(body):
    assert codec._plain_step_json(body, MAX_SCORES) is None
    assert decoded(body) == outcome(general, body)


def test_what_the_sdk_sends_takes_the_shortcut_and_reads_the_same_numbers():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(16, 8, 4)) * 10.0 ** rng.integers(-300, 300, size=(16, 8, 4))
    scores[0, 0, 0], scores[0, 0, 1] = -0.0, 5e-324
    for step in (None, 7):
        document: dict[str, Any] = {"scores": scores, "return_advantages": True}
        if step is not None:
            document["step"] = step
        body = encode_json(document)
        plain = codec._plain_step_json(body, 512)
        assert plain is not None
        assert plain["scores"].tobytes() == scores.tobytes()  # -0.0 and subnormals kept
        assert decoded(body, 512) == outcome(lambda b: general(b, 512), body)
    listed = json.dumps({"step": 1, "scores": scores.tolist()}, indent=2).encode()
    assert codec._plain_step_json(listed, 512) is not None


# Plain bodies: numbers a double holds, only the step's flags beside the scores, valid or not;
# every one of them must take the shortcut, so the flags' checks are compared on it.
PLAIN_NUMBERS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.integers(-(2**63), 2**64 - 1).map(str),
    st.sampled_from(["-0", "-0.0", "1E+2", "1e-400", "5e-324", "2.5e-308"]),
)
FLAG_TEXTS = st.sampled_from(
    [
        *["0", "1", "3", "-0", "-1", "3.0", "1e2", "-0.0", "true", "false", "null"],
        *["18446744073709551615", "9223372036854775808"],  # past int64, within uint64
    ]
)


@st.composite
def plain_bodies(draw: st.DrawFn) -> bytes:
    n, g, k = (draw(st.integers(1, 3)) for _ in range(3))
    space = draw(st.sampled_from(["", " ", "\n\t", "\r\n  "]))
    rows = [
        "["
        + f",{space}".join(
            "[" + f",{space}".join(draw(PLAIN_NUMBERS) for _ in range(k)) + "]" for _ in range(g)
        )
        + "]"
        for _ in range(n)
    ]
    flags = draw(st.lists(st.sampled_from(["step", "return_advantages"]), unique=True))
    members = [("scores", "[" + f",{space}".join(rows) + "]")]
    members += [(name, draw(FLAG_TEXTS)) for name in flags]
    order = draw(st.permutations(range(len(members))))
    inner = f",{space}".join(f'"{members[i][0]}"{space}:{space}{members[i][1]}' for i in order)
    return (space + "{" + space + inner + space + "}" + space).encode()


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plain_bodies())
def test_a_plain_body_takes_the_shortcut_to_the_general_readers_answer(body):
    assert codec._plain_step_json(body, 27) is not None
    assert decoded(body, 27) == outcome(lambda b: general(b, 27), body)


def test_a_body_over_the_limit_is_refused_before_its_skeleton_is_built_or_kept():
    codec._cached_skeleton.cache_clear()
    body = encode_json({"scores": np.zeros((4, 4, 4))})
    assert codec._plain_step_json(body, 63) is None
    assert decoded(body, 63) == outcome(lambda b: general(b, 63), body)
    assert decoded(body, 63)[1] == "PayloadTooLargeError"
    assert codec._cached_skeleton.cache_info().currsize == 0
    big = encode_json({"scores": np.zeros((2, 2, codec._CACHED_SCORES))})
    assert codec._plain_step_json(big, 1 << 20) is not None  # read, its skeleton not kept
    assert codec._cached_skeleton.cache_info().currsize == 0
    assert codec._plain_step_json(body, 64) is not None
    assert codec._cached_skeleton.cache_info().currsize == 1
