"""GraphQL over HTTP: request parsing, media-type negotiation, status codes, error shape.

Follows the GraphQL-over-HTTP specification: POST with `application/json` bodies;
responses in `application/graphql-response+json` when the client accepts it (request
errors then get 4xx) or `application/json` (always 200 for well-formed requests).
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from graphql import GraphQLError
from starlette.requests import Request
from strawberry.utils.str_converters import to_camel_case

from server.errors import CustosError, ValidationError

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"


class HttpProblem(Exception):
    """A request that never reaches GraphQL execution, with its HTTP status."""

    def __init__(self, status: int, message: str, code: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers or {}


@dataclass(frozen=True, slots=True)
class GraphQLRequest:
    query: str
    variables: dict[str, Any] | None
    operation_name: str | None
    extensions: dict[str, Any] | None


def negotiate(accept: str | None) -> str:
    """Pick the response media type from the Accept header, or refuse with 406."""
    if accept is None or not accept.strip():
        return JSON
    ranges = []
    for part in accept.split(","):
        media, _, params = part.strip().partition(";")
        q = 1.0
        match = re.search(r"q=([0-9.]+)", params)
        if match:
            try:
                q = float(match.group(1))
            except ValueError:
                q = 0.0
        ranges.append((media.strip().lower(), q))
    best: tuple[float, int, str] | None = None
    for media, q in ranges:
        if q <= 0:
            continue
        if media == GRAPHQL_RESPONSE:
            candidate = (q, 2, GRAPHQL_RESPONSE)
        elif media == JSON:
            candidate = (q, 1, JSON)
        elif media in ("*/*", "application/*"):
            # The spec: a wildcard gets the legacy type, which every client understands.
            candidate = (q, 0, JSON)
        else:
            continue
        if best is None or candidate[:2] > best[:2]:
            best = candidate
    if best is None:
        raise HttpProblem(406, f"responses are {GRAPHQL_RESPONSE} or {JSON}", "NOT_ACCEPTABLE")
    return best[2]


def check_content_type(content_type: str | None) -> None:
    if not content_type:
        raise HttpProblem(415, "Content-Type must be application/json", "UNSUPPORTED_MEDIA_TYPE")
    media, _, params = content_type.partition(";")
    if media.strip().lower() != JSON:
        raise HttpProblem(415, "Content-Type must be application/json", "UNSUPPORTED_MEDIA_TYPE")
    charset = re.search(r"charset=([^;\s]+)", params, re.IGNORECASE)
    if charset and charset.group(1).strip('"').lower() not in ("utf-8", "utf8"):
        raise HttpProblem(415, "request bodies must be UTF-8", "UNSUPPORTED_MEDIA_TYPE")


def parse_body(body: bytes) -> GraphQLRequest:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise HttpProblem(400, "request body is not valid JSON", "BAD_REQUEST") from None
    if not isinstance(payload, dict):
        raise HttpProblem(400, "request body must be a JSON object", "BAD_REQUEST")
    query = payload.get("query")
    variables = payload.get("variables")
    operation_name = payload.get("operationName")
    extensions = payload.get("extensions")
    if query is None and isinstance(extensions, dict) and "persistedQuery" in extensions:
        query = ""  # a persisted document's hash instead of its text (server/documents/)
    elif not isinstance(query, str) or not query.strip():
        raise HttpProblem(400, "'query' must be a non-empty string", "BAD_REQUEST")
    if variables is not None and not isinstance(variables, dict):
        raise HttpProblem(400, "'variables' must be an object or null", "BAD_REQUEST")
    if operation_name is not None and not isinstance(operation_name, str):
        raise HttpProblem(400, "'operationName' must be a string or null", "BAD_REQUEST")
    if extensions is not None and not isinstance(extensions, dict):
        raise HttpProblem(400, "'extensions' must be an object or null", "BAD_REQUEST")
    return GraphQLRequest(query, variables, operation_name, extensions)


def is_persisted_get(params: Mapping[str, str]) -> bool:
    """A GET that names a persisted document by its hash: the one GET that runs (text,
    and so any value written into it, never travels in a URL)."""
    return "extensions" in params and "query" not in params


def parse_query_params(params: Mapping[str, str]) -> GraphQLRequest:
    """A persisted-document GET: `extensions` and `variables` as JSON, `operationName`."""

    def json_object(name: str) -> dict[str, Any] | None:
        raw = params.get(name)
        if raw is None:
            return None
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise HttpProblem(400, f"'{name}' must be JSON", "BAD_REQUEST") from None
        if value is not None and not isinstance(value, dict):
            raise HttpProblem(400, f"'{name}' must be an object or null", "BAD_REQUEST")
        return value

    extensions = json_object("extensions")
    if extensions is None or "persistedQuery" not in extensions:
        raise HttpProblem(400, "a GET names a persisted document", "BAD_REQUEST")
    return GraphQLRequest("", json_object("variables"), params.get("operationName"), extensions)


_VALUE_ECHO = (
    (re.compile(r"(got invalid value) .*?(;|$)"), r"\1\2"),
    (re.compile(r"(cannot represent [^:]*value)\s*:.*$", re.IGNORECASE), r"\1."),
    (re.compile(r"(Expected value of type [^,]+), found .*?([;.]|$)"), r"\1\2"),
)


def sanitize_message(message: str) -> str:
    """Strip values a client sent from engine messages, so none lands in logs or proxies."""
    for pattern, replacement in _VALUE_ECHO:
        message = pattern.sub(replacement, message)
    return message


def error_code(error: GraphQLError) -> str:
    original = error.original_error
    if isinstance(original, CustosError):
        return original.code
    if original is not None and not isinstance(original, GraphQLError):
        return "INTERNAL_SERVER_ERROR"
    declared = (error.extensions or {}).get("code")
    if isinstance(declared, str):
        # Set by the schema's input checks and error rewriting (schema/errors.py).
        return declared
    if error.message.startswith("Syntax Error"):
        return "GRAPHQL_PARSE_FAILED"
    if error.message.startswith("Variable '$"):
        return "BAD_USER_INPUT"
    return "GRAPHQL_VALIDATION_FAILED"


def describe_unexpected(error: BaseException) -> str:
    """Type and frames of an unexpected exception, without its message (which may hold
    a value) — what the log gets."""
    frames = traceback.extract_tb(error.__traceback__)[-5:]
    where = " <- ".join(
        f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno}:{f.name}" for f in reversed(frames)
    )
    return f"{type(error).__name__} at {where}"


def format_error(error: GraphQLError) -> dict[str, Any]:
    code = error_code(error)
    original = error.original_error
    if isinstance(original, CustosError):
        message = original.message
    elif code == "INTERNAL_SERVER_ERROR":
        message = "Internal server error"
    else:
        message = sanitize_message(error.message)
    formatted: dict[str, Any] = {"message": message}
    if error.locations:
        formatted["locations"] = [
            {"line": loc.line, "column": loc.column} for loc in error.locations
        ]
    if error.path:
        formatted["path"] = list(error.path)
    formatted["extensions"] = {"code": code}
    details = getattr(original, "details", None)
    if isinstance(details, dict):
        # Facts about the refusal a client acts on (e.g. a query's cost and the limit).
        formatted["extensions"].update(details)
    if isinstance(original, ValidationError) and original.field is not None:
        # The argument or input field concerned, by its GraphQL name (as UserError.field).
        formatted["extensions"]["field"] = to_camel_case(original.field)
    elif isinstance((error.extensions or {}).get("field"), str):
        formatted["extensions"]["field"] = error.extensions["field"]  # type: ignore[index]
    return formatted


def is_request_error(data: Mapping[str, Any] | None, errors: list[GraphQLError]) -> bool:
    """No execution happened: parse, validation or variable errors (no data, no paths)."""
    return data is None and bool(errors) and all(not e.path for e in errors)


def problem_body(message: str, code: str) -> bytes:
    return orjson.dumps({"errors": [{"message": message, "extensions": {"code": code}}]})


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 once it passes `limit` bytes (declared or sent)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HttpProblem(413, f"request body exceeds {limit} bytes", "PAYLOAD_TOO_LARGE")
    chunks = bytearray()
    async for chunk in request.stream():
        chunks.extend(chunk)
        if len(chunks) > limit:
            raise HttpProblem(413, f"request body exceeds {limit} bytes", "PAYLOAD_TOO_LARGE")
    return bytes(chunks)
