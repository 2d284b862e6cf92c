"""spard.client: the Python SDK of the SPARD service, sync and async, plus a local mode.

>>> from spard.client import SpardClient
>>> client = SpardClient("http://127.0.0.1:8000", api_key=None)   # or SpardClient.local()
>>> run = client.create_run(["correctness", "format"], strategy="spard")
>>> outcome = client.step(run.run_id, scores, step=0)            # scores: (N, G, K)
>>> outcome.reward_weights, outcome.sample_weights
"""

from spard.client._async import AsyncSpardClient
from spard.client._streaming import ObserveSummary, RunWeights
from spard.client._sync import SpardClient
from spard.client.errors import (
    AuthenticationError,
    ConflictError,
    InvalidRequestError,
    RunNotFoundError,
    ServiceUnavailableError,
    SpardClientError,
    SpardConnectionError,
    SpardServiceError,
    SpardTimeoutError,
)
from spard.client.local import LocalRuns
from spard.client.models import CommitOutcome, RunInfo, StepOutcome

__all__ = [
    "AsyncSpardClient",
    "AuthenticationError",
    "CommitOutcome",
    "ConflictError",
    "InvalidRequestError",
    "LocalRuns",
    "ObserveSummary",
    "RunInfo",
    "RunNotFoundError",
    "RunWeights",
    "ServiceUnavailableError",
    "SpardClient",
    "SpardClientError",
    "SpardConnectionError",
    "SpardServiceError",
    "SpardTimeoutError",
    "StepOutcome",
]
