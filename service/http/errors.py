"""The handlers that turn every failure into a clear JSON 4xx/503 (statuses from
:data:`spard.service.protocol.errors.STATUS_BY_ERROR`, the one table of them).

Every error body is ``{"detail": "<message>", "field": "<field or null>"}``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

import spard
from spard.errors import did_you_mean
from spard.service.protocol.documents import ValidationIssue
from spard.service.protocol.errors import (
    ErrorDocument,
    ServiceError,
    StoreUnavailableError,
    error_document,
    invalid_json,
)
from spard.service.runs.answers import error_answer
from spard.service.runs.run_service import RunService

# FastAPI's detail for a body it could not decode (fastapi/routing.py).
_BODY_PARSE_ERROR = "There was an error parsing the body"


def error_response(
    status: int,
    message: str,
    field: str | None,
    headers: Mapping[str, str] | None = None,
    errors: list[ValidationIssue] | None = None,
) -> Response:
    """The one shape of every error body (``headers`` such as a 405's ``Allow`` are kept)."""
    return _response(ErrorDocument(status, message, field), headers, errors)


def _response(
    document: ErrorDocument,
    headers: Mapping[str, str] | None = None,
    errors: list[ValidationIssue] | None = None,
) -> Response:
    answer = error_answer(document, headers, errors)
    return Response(
        answer.body,
        status_code=answer.status,
        media_type="application/json",
        headers=dict(answer.headers),
    )


def install_error_handlers(app: FastAPI) -> None:
    """Map engine, store, validation and service errors to their status codes."""

    @app.exception_handler(ServiceError)
    async def _service(_: Request, exc: ServiceError) -> Response:
        return _response(error_document(exc))

    @app.exception_handler(spard.SpardError)
    async def _engine(_: Request, exc: spard.SpardError) -> Response:
        return _response(error_document(exc))

    @app.exception_handler(StoreUnavailableError)
    async def _store(request: Request, exc: StoreUnavailableError) -> Response:
        runs: RunService = request.app.state.runs
        runs.events.store_unavailable()  # as the step's door reports it
        return _response(error_document(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        if errors and errors[0]["type"] == "json_invalid":
            # FastAPI's own JSON parser (a create, a commit, a state): the one message. Its
            # "location" is a character offset, not a field.
            reason = f"{errors[0].get('ctx', {}).get('error')} (char {errors[0]['loc'][-1]})"
            return _response(error_document(invalid_json(reason)))
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        location = [
            str(part) for part in first["loc"] if part not in ("body", "query", "path", "header")
        ]
        field = ".".join(location) or None
        message = f"{field}: {first['msg']}" if field else str(first["msg"])
        if first.get("type") == "extra_forbidden" and len(first["loc"]) == 2 and field:
            message += did_you_mean(field, _body_fields(request))  # a top-level body key
        details: list[ValidationIssue] = [
            {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in errors
        ]
        return error_response(422, message, field, errors=details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400 and exc.detail == _BODY_PARSE_ERROR:
            # A JSON body FastAPI could not decode (not UTF-8): the one invalid-JSON answer,
            # a 422 like every other.
            return _response(error_document(invalid_json(str(exc.__cause__ or exc.detail))))
        if exc.status_code == 400:  # the API has no 400: any other is invalid input too
            return error_response(422, str(exc.detail), None)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(_allowed_methods(request))
        return error_response(exc.status_code, str(exc.detail), None, headers=headers)


def _body_fields(request: Request) -> list[str]:
    """The top-level keys of the matched route's body model (none if it has no model)."""
    route = request.scope.get("route")
    body = getattr(route, "body_field", None)
    model = getattr(getattr(body, "field_info", None), "annotation", None)
    fields = getattr(model, "model_fields", None)
    return list(fields) if isinstance(fields, dict) else []


def _allowed_methods(request: Request) -> list[str]:
    """Every method the API documents at this path (Starlette's 405 names only the first
    route's, and GET and DELETE of a run are two routes)."""
    path = request.url.path
    methods: set[str] = set()
    for template, operations in request.app.openapi()["paths"].items():
        if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), path):
            methods |= {method.upper() for method in operations}
    return sorted(methods)
