"""The request model shared by the sync and async clients: building requests, reading
responses, retry decisions and the ``hold`` fallback. No I/O here."""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import numpy as np
import orjson

import spard
from spard.advantages import compute_advantages
from spard.client.errors import (
    ServiceUnavailableError,
    SpardClientError,
    SpardConnectionError,
    SpardServiceError,
    SpardTimeoutError,
    error_for_status,
)
from spard.client.models import CommitOutcome, RunInfo, StepOutcome
from spard.scores import batch_statistics, parse_scores
from spard.service.protocol.documents import CommitResponse, StepResponse
from spard.service.protocol.wire import IDEMPOTENCY_HEADER

Fallback = Literal["raise", "hold"]
logger = logging.getLogger("spard.client")
RETRY_STATUSES = frozenset({500, 502, 503, 504})


def encode_json(document: Any) -> bytes:
    """The SDK's one JSON encoder (orjson, as the service's): numpy arrays and scalars as
    lists and numbers, NaN as null (missing), non-string keys as strings.

    What orjson cannot write (an integer beyond 64 bits) goes through the standard library's
    encoder instead, so the service, not a ``TypeError`` here, names the field at fault.
    """
    try:
        return orjson.dumps(document, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        return json.dumps(document, default=_plain).encode()


_ORJSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def _plain(value: Any) -> Any:
    """numpy values as the standard library's encoder can write them."""
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


@dataclass(frozen=True)
class Call:
    """One API call, before it is sent."""

    method: str
    path: str
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] | None = None

    def to_httpx(self, client: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        body = encode_json(self.json) if self.json is not None else self.content
        headers = dict(self.headers)
        if self.json is not None:
            headers["content-type"] = "application/json"
        return client.build_request(
            self.method, self.path, content=body, headers=headers, params=self.params
        )


@dataclass
class _RunMemo:
    objectives: list[str]
    reward_weights: np.ndarray[Any, Any]
    config: dict[str, Any] | None  # None until this client read the run (create or get)


def check_base_url(base_url: str) -> str:
    """The service root; a URL without ``http://`` or ``https://`` (httpx would retry a
    request it can never send) or ending in the API's ``/v1`` prefix (every path would get
    ``/v1/v1/...`` and a puzzling 404) is refused with the fix."""
    scheme = base_url.partition("://")[0].lower() if "://" in base_url else ""
    if scheme not in ("http", "https"):
        raise ValueError(
            f"base_url needs http:// or https://: got {base_url!r} "
            "(for example 'http://127.0.0.1:8000')"
        )
    if base_url.rstrip("/").endswith("/v1"):
        root = base_url.rstrip("/").removesuffix("/v1")
        raise ValueError(f"base_url is the service root, without /v1: use {root!r}")
    return base_url


def _path(response: httpx.Response) -> str:
    try:
        return str(response.request.url)
    except RuntimeError:  # a response built without its request
        return "the path"


def _excerpt(response: httpx.Response, limit: int = 200) -> str:
    """The start of a body, on one line: enough to recognise a page, not the page."""
    text = " ".join(response.text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _not_a_service(
    response: httpx.Response, detail: str | None = None, field_name: str | None = None
) -> SpardServiceError:
    """The error for an answer no SPARD service gives (a 404 of a path it does not have, or
    a body that is not JSON): base_url names some other host or path."""
    if detail is None:
        kind = response.headers.get("content-type", "no content type").split(";")[0]
        detail = f"{kind}, not JSON: {_excerpt(response) or '(empty)'}"
    status = response.status_code
    what = "not found" if status == 404 else f"answered {status}"
    return SpardServiceError(
        status,
        f"{_path(response)} {what} ({detail}): not a path of a SPARD service; "
        "base_url should be the service's root, such as 'http://127.0.0.1:8000'",
        field_name,
    )


def idempotency() -> dict[str, str]:
    # One key per logical call, reused by its retries: the service applies it at most once.
    return {IDEMPOTENCY_HEADER: secrets.token_hex(16)}


@dataclass
class ClientCore:
    """Everything about the API that does not depend on sync or async I/O: building calls,
    reading answers, retry decisions, and the ``hold`` fallback's memory of each run."""

    retries: int
    backoff_s: float
    fallback: Fallback
    binary_threshold: int
    _runs: dict[str, _RunMemo] = field(default_factory=dict)
    _holding: bool = False

    def __post_init__(self) -> None:
        if self.fallback not in ("raise", "hold"):
            raise ValueError("fallback must be 'raise' or 'hold'")

    def commit_outcome(self, run_id: str, data: CommitResponse) -> CommitOutcome:
        memo = self._runs.get(run_id)
        outcome = CommitOutcome.from_commit_json(data, memo.objectives if memo else None)
        self.remember_weights(run_id, outcome.objectives, outcome.reward_weights)
        return outcome

    # Responses ------------------------------------------------------------------------------
    @staticmethod
    def payload(response: httpx.Response, call: Call | None = None, attempt: int = 0) -> Any:
        """The JSON of a successful response; raises the error class of a failed one.

        A DELETE that answers 404 after a retried attempt succeeded: the earlier attempt's
        outcome was unknown, and the run is gone either way."""
        if response.status_code == 404 and attempt > 0 and call and call.method == "DELETE":
            return None
        if response.status_code >= 400:
            try:
                body = orjson.loads(response.content)
                detail, field_name = str(body.get("detail")), body.get("field")
            except (orjson.JSONDecodeError, AttributeError):
                if response.status_code not in RETRY_STATUSES:
                    # Every error of the service is JSON; an HTML 404, 405 or 501 is another
                    # host's (a web server, a proxy's own page, the /docs page).
                    raise _not_a_service(response) from None
                detail, field_name = _excerpt(response) or response.reason_phrase, None
            if response.status_code == 404 and field_name != "run_id":
                # Every "no such run" of the service names run_id; any other 404 is a path
                # the service does not have: base_url is not a SPARD service's root.
                raise _not_a_service(response, detail, field_name)
            raise error_for_status(response.status_code, detail, field_name)
        if response.status_code in (204, 304):
            return None
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise _not_a_service(response) from None

    def remember_weights(
        self, run_id: str, objectives: list[str], reward_weights: np.ndarray[Any, Any]
    ) -> None:
        """The newest weights seen for a run (a step, or ``GET .../weights``): what ``hold``
        falls back to, even for a run this client never created or fetched."""
        memo = self._runs.get(run_id)
        if memo is None:
            self._runs[run_id] = _RunMemo(list(objectives), reward_weights.copy(), None)
        else:
            memo.reward_weights = reward_weights.copy()

    def remember(self, info: RunInfo) -> RunInfo:
        self._runs[info.run_id] = _RunMemo(info.objectives, info.reward_weights, info.config)
        return info

    def step_outcome(self, run_id: str, data: StepResponse) -> StepOutcome:
        memo = self._runs.get(run_id)
        outcome = StepOutcome.from_json(data, memo.objectives if memo else None)
        self.remember_weights(run_id, outcome.objectives, outcome.reward_weights)
        if self._holding:
            logger.warning("SPARD service reachable again: steps are applied again")
            self._holding = False
        return outcome

    # Retries and fallback -------------------------------------------------------------------
    def should_retry(self, attempt: int, error: Exception | None, status: int | None) -> bool:
        if attempt >= self.retries:
            return False
        return error is not None or status in RETRY_STATUSES

    def delay(self, attempt: int) -> float:
        return float(self.backoff_s * (2**attempt))

    @staticmethod
    def transport_error(error: httpx.TransportError) -> SpardConnectionError:
        try:
            where = f" at {error.request.url}"
        except RuntimeError:  # no request attached
            where = ""
        if isinstance(error, httpx.TimeoutException):
            return SpardTimeoutError(f"SPARD service timed out{where}: {error!r}")
        return SpardConnectionError(f"SPARD service unreachable{where}: {error!r}")

    def hold(
        self,
        run_id: str,
        scores: Any,
        step: int | None,
        return_advantages: bool,
        error: SpardClientError,
    ) -> StepOutcome:
        """The ``hold`` answer while the service is down: last weights, uniform data weights."""
        memo = self._runs.get(run_id)
        down = isinstance(error, SpardConnectionError | ServiceUnavailableError)
        if self.fallback != "hold" or not down or memo is None:
            raise error
        if not self._holding:
            logger.warning(
                "SPARD service unavailable (%s); holding the last reward weights and uniform "
                "sample weights until it is back",
                error,
            )
            self._holding = True
        array = parse_scores(scores, len(memo.objectives))
        batch = batch_statistics(array)
        sample_weights = np.ones(array.shape[0])
        advantages = None
        if return_advantages:
            if memo.config is None:  # the advantage rule is unknown: no silent guess
                raise error
            config = spard.SpardConfig.model_validate(memo.config)
            advantages = compute_advantages(batch, memo.reward_weights, sample_weights, config)
        return StepOutcome(
            run_id=run_id,
            step=step,
            objectives=memo.objectives,
            reward_weights=memo.reward_weights.copy(),
            sample_weights=sample_weights,
            zero_signal=(batch.dispersion @ memo.reward_weights) <= 0.0,
            advantages=advantages,
            stats=None,
            replayed=False,
            held=True,
        )
