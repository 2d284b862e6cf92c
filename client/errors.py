"""One exception type per failure class, all under :class:`SpardClientError`."""

from __future__ import annotations


class SpardClientError(Exception):
    """Base of every error the client raises."""


class SpardConnectionError(SpardClientError):
    """The service could not be reached (after the configured retries)."""


class SpardTimeoutError(SpardConnectionError):
    """The service did not answer within the timeout (after the configured retries)."""


class SpardServiceError(SpardClientError):
    """The service answered with an error; ``status_code``, ``detail`` and ``field`` say which."""

    def __init__(self, status_code: int, detail: str, field: str | None = None) -> None:
        where = f" (field: {field})" if field else ""
        super().__init__(f"HTTP {status_code}: {detail}{where}")
        self.status_code = status_code
        self.detail = detail
        self.field = field


class AuthenticationError(SpardServiceError):
    """401: missing or unknown API key."""


class RunNotFoundError(SpardServiceError):
    """404: no such run for this API key's tenant."""


class ConflictError(SpardServiceError):
    """409: the run id exists, a step is too old to replay, or a step was resent with other
    scores."""


class InvalidRequestError(SpardServiceError):
    """413 / 415 / 422: the request is malformed or too large; ``field`` names the culprit."""


class ServiceUnavailableError(SpardServiceError):
    """5xx: the service or its store is down (retried before this is raised)."""


def error_for_status(status_code: int, detail: str, field: str | None) -> SpardServiceError:
    """The exception class for an HTTP error status."""
    kinds: dict[int, type[SpardServiceError]] = {
        401: AuthenticationError,
        404: RunNotFoundError,
        409: ConflictError,
        413: InvalidRequestError,
        415: InvalidRequestError,
        422: InvalidRequestError,
    }
    kind = kinds.get(status_code)
    if kind is None:
        kind = ServiceUnavailableError if status_code >= 500 else SpardServiceError
    return kind(status_code, detail, field)
