"""The errors of the API and the one table of their HTTP statuses.

Every error body is ``{"detail": "<message>", "field": "<field or null>"}``. The run layer
raises these (and the engine's :class:`spard.SpardError`); the HTTP shell only looks their
status up here.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

import spard
from spard.service.protocol.documents import ErrorBody, ValidationIssue


class ServiceError(Exception):
    """An error of the API, with the field at fault; its status is in :data:`STATUS_BY_ERROR`."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class RunNotFoundError(ServiceError):
    """No such run (in the caller's tenant)."""


class RunExistsError(ServiceError):
    """The run id is taken."""


class IdempotencyKeyReusedError(ServiceError):
    """An idempotency key sent again with a request that asks for something else."""


class RunChangedError(ServiceError):
    """The run was deleted and created again while the request worked on it: nothing was
    applied to the new run."""


class StepNotCommittableError(ServiceError):
    """Nothing to commit: no observations arrived, or they are no longer kept."""


class TooManyOpenStepsError(ServiceError):
    """A new step would exceed the run's bound on steps not yet applied."""


class PayloadTooLargeError(ServiceError):
    """A body, or N*G*K, over the configured limit."""


class UnsupportedMediaTypeError(ServiceError):
    """A Content-Type the endpoint does not read."""


class UnauthorizedError(ServiceError):
    """A missing or unknown API key."""


class ServiceUnavailableError(ServiceError):
    """The store is down, or a run too contended to write: retry later."""


class BadRequestError(ServiceError):
    """A request that is well-formed but not acceptable."""


def invalid_json(reason: str) -> spard.InputError:
    """The one error for a body that is not JSON, whichever route and parser found it."""
    return spard.InputError(f"body is not valid JSON: {reason}", field="body")


class StoreUnavailableError(Exception):
    """The store cannot be reached or did not answer in time."""


STATUS_BY_ERROR: dict[type[Exception], int] = {
    RunNotFoundError: 404,
    RunExistsError: 409,
    RunChangedError: 409,
    IdempotencyKeyReusedError: 409,
    StepNotCommittableError: 409,
    TooManyOpenStepsError: 409,
    PayloadTooLargeError: 413,
    UnsupportedMediaTypeError: 415,
    UnauthorizedError: 401,
    ServiceUnavailableError: 503,
    StoreUnavailableError: 503,
    BadRequestError: 422,
    spard.StepOrderError: 409,
    spard.StepConflictError: 409,
    spard.SpardError: 422,
    ServiceError: 422,  # the API documents no 400: a request it cannot take is invalid input
}


def status_for(error: Exception) -> int:
    """The HTTP status of ``error`` (the most specific entry of :data:`STATUS_BY_ERROR`)."""
    for kind in type(error).__mro__:
        status = STATUS_BY_ERROR.get(kind)
        if status is not None:
            return status
    raise TypeError(f"{type(error).__name__} is not an API error")


API_ERRORS = (ServiceError, spard.SpardError, StoreUnavailableError)
"""Every error the API answers with a status of :data:`STATUS_BY_ERROR` (not a 500)."""


@dataclass(frozen=True)
class ErrorDocument:
    """An error's status and the one shape of its body."""

    status: int
    detail: str
    field: str | None

    def to_json(self, errors: list[ValidationIssue] | None = None) -> bytes:
        """The body (:class:`~spard.service.protocol.documents.ErrorBody`); ``errors``: a
        request validation's findings, all of them."""
        body: ErrorBody = {"detail": self.detail, "field": self.field}
        if errors is not None:
            body["errors"] = errors
        return orjson.dumps(body)


def error_document(error: ServiceError | spard.SpardError | StoreUnavailableError) -> ErrorDocument:
    """What the API answers for ``error`` (one of :data:`API_ERRORS`)."""
    if isinstance(error, StoreUnavailableError):
        message = f"run store unavailable, retry later: {error}"
        return ErrorDocument(status_for(error), message, None)
    return ErrorDocument(status_for(error), error.message, error.field)
