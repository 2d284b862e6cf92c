"""What the API answers, framework-free: a status, a body and the headers that go with them.

Error rendering lives here once: the HTTP app's exception handlers and request gate and the
step's front door (:mod:`spard.service.runs.step_request`) all answer an error with
:func:`error_answer`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from spard.service.protocol.documents import ValidationIssue
from spard.service.protocol.errors import ErrorDocument

JSON_MEDIA_TYPE = "application/json"
RETRY_AFTER_S = "1"  # every 503 is "try again soon": the store or a run is busy


@dataclass(frozen=True)
class Answer:
    """A response: ``headers`` besides ``content-type``, which is always JSON here."""

    status: int
    body: bytes
    headers: Mapping[str, str]


def error_answer(
    document: ErrorDocument,
    headers: Mapping[str, str] | None = None,
    errors: list[ValidationIssue] | None = None,
) -> Answer:
    """The one rendering of an error: ``{"detail", "field"}`` plus a request validation's
    ``errors`` when given, with ``WWW-Authenticate`` on a 401 and ``Retry-After`` on a 503
    (``headers`` are kept)."""
    status = document.status
    merged = dict(headers or {})
    if status == 401:
        merged["WWW-Authenticate"] = "Bearer"
    if status == 503:
        merged.setdefault("Retry-After", RETRY_AFTER_S)
    return Answer(status, document.to_json(errors), merged)
