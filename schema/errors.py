"""Engine errors rewritten so they never carry a client's value, with the right code.

graphql-core and strawberry describe a bad input by quoting it: an unknown input field
comes back with the whole object (`Found: {'name': 'Zhang San', 'phone': ...}`), a bad
date with the date, an enum with the value, a syntax error with the string token. Each
known message shape is rewritten here into one that still names the type, the field and
the position (the error keeps its `locations`) but not the value, and gets its code:

- `GRAPHQL_PARSE_FAILED`: the document does not parse;
- `GRAPHQL_VALIDATION_FAILED`: it does not validate (unknown fields, undefined or unused
  variables, a variable in the wrong position, literals of the wrong kind);
- `BAD_USER_INPUT`: a value is refused (variable values, the input scalars' rules, the
  input guard), with `extensions.field` naming the argument and the path inside it
  (`from`, `input.birthday`, `rows`).

Suggestions ("Did you mean 'name'?") stay only where the setting allows (dev).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from graphql import (
    ArgumentNode,
    DocumentNode,
    GraphQLError,
    ListValueNode,
    ObjectValueNode,
    ValueNode,
    VariableNode,
    Visitor,
    visit,
)
from strawberry.extensions import SchemaExtension

PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
BAD_USER_INPUT = "BAD_USER_INPUT"

_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,63}")
_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")
_VARIABLE_VALUE = re.compile(
    r"^(?P<head>Variable '\$(?P<var>\w+)'(?: defined by fragment '\w+')? has invalid "
    r"(?:default )?value)(?P<at>(?: at [^:]*)?): (?P<inner>.*)$",
    re.DOTALL,
)
_ARGUMENT_VALUE = re.compile(
    r"^(?P<head>Argument '\w+' has invalid (?:default )?value)(?P<at>(?: at [^:]*)?): "
    r"(?P<inner>.*)$",
    re.DOTALL,
)
# Execution-time variable errors that quote nothing but are still about a value.
_VARIABLE_MISSING = re.compile(
    r"^Variable '\$(?P<var>\w+)' of (?:required|non-null) type '[^']+' "
    r"(?:was not provided|must not be null)\."
)
_VARIABLE_LIMITS = ("Variable values are nested too deeply.", "Too many errors processing")
_TOKEN_VALUE = re.compile(r"\b(String|BlockString|Int|Float) (['\"]).*\2(?=\.?$)", re.DOTALL)


def _unknown_field(match: re.Match[str]) -> str:
    name = match["field"]
    named = f"field '{name}'" if _NAME.fullmatch(name) else "field"
    return f"Expected value of type '{match['type']}' not to include unknown {named}."


# (pattern, rewrite) for the inner message of an input error, first match wins.
_INNER: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (
        re.compile(r"^Expected value of type '(?P<type>[^']+)' to be an object\b", re.DOTALL),
        lambda m: f"Expected value of type '{m['type']}' to be an object.",
    ),
    (
        re.compile(
            r"^Expected value of type '(?P<type>[^']+)' to include required field "
            r"'(?P<field>\w+)'",
            re.DOTALL,
        ),
        lambda m: f"Expected value of type '{m['type']}' to include required field '{m['field']}'.",
    ),
    (
        re.compile(
            r"^Expected value of type '(?P<type>[^']+)' not to include unknown field "
            r"'(?P<field>.*?)'(?=[.,])",
            re.DOTALL,
        ),
        _unknown_field,
    ),
    (
        re.compile(r"^Expected value of type '(?P<type>[^']+)'(?!\w)", re.DOTALL),
        lambda m: f"Expected value of type '{m['type']}'.",
    ),
    (
        re.compile(r"^Value .* does not exist in '(?P<enum>\w+)' enum", re.DOTALL),
        lambda m: f"Value does not exist in '{m['enum']}' enum.",
    ),
    (
        re.compile(r"^Enum '(?P<enum>\w+)' cannot represent (?P<what>[^:]*?value)\b", re.DOTALL),
        lambda m: f"Enum '{m['enum']}' cannot represent {m['what']}.",
    ),
    (
        re.compile(r"^(?P<type>\w+) cannot represent (?P<what>[^:]*?value)\s*[:.]", re.DOTALL),
        lambda m: f"{m['type']} cannot represent {m['what']}.",
    ),
    (
        re.compile(r"^Value cannot represent an? (?P<type>\w+)\b", re.DOTALL),
        lambda m: f"Value cannot represent a {m['type']}.",
    ),
)


def _value_free_inner(message: str) -> str:
    for pattern, rewrite in _INNER:
        match = pattern.match(message)
        if match is not None:
            suggestion = _SUGGESTION.search(message)
            rewritten = rewrite(match)
            return rewritten + suggestion.group(0) if suggestion else rewritten
    return message


def value_free(message: str) -> str:
    """The message without any value the client sent (suggestions are left in)."""
    if message.startswith("Syntax Error"):
        return _TOKEN_VALUE.sub(r"\1", message)
    for outer in (_VARIABLE_VALUE, _ARGUMENT_VALUE):
        match = outer.match(message)
        if match is not None:
            return f"{match['head']}{match['at']}: {_value_free_inner(match['inner'])}"
    return _value_free_inner(message)


def without_suggestions(message: str) -> str:
    return _SUGGESTION.sub("", message)


def classify(error: GraphQLError) -> str | None:
    """The code of an engine error by its shape; None leaves it to the HTTP edge."""
    message = error.message
    if message.startswith("Syntax Error"):
        return PARSE_FAILED
    if (
        _VARIABLE_VALUE.match(message)
        or _VARIABLE_MISSING.match(message)
        or message.startswith(_VARIABLE_LIMITS)
        or _ARGUMENT_VALUE.match(message)
    ):
        return BAD_USER_INPUT
    if error.path:
        return None
    return VALIDATION_FAILED


def declared_code(error: GraphQLError | BaseException | None) -> str | None:
    """A code set by whoever raised the error (the input scalars, the input guard)."""
    seen = 0
    while isinstance(error, GraphQLError) and seen < 8:
        code = (error.extensions or {}).get("code")
        if isinstance(code, str):
            return code
        error = error.original_error
        seen += 1
    return None


class ArgumentPaths(Visitor):
    """Where each value in the document's arguments sits: the dotted path from its
    argument (`input.birthday`, `rows.3.name`), by the value's start offset, and where
    each variable is first used."""

    @classmethod
    def of(cls, document: DocumentNode) -> ArgumentPaths:
        paths = cls()
        visit(document, paths)
        return paths

    def __init__(self) -> None:
        super().__init__()
        self.at: dict[int, str] = {}
        self.variables: dict[str, str] = {}

    def enter_argument(self, node: ArgumentNode, *_: Any) -> None:
        for path, value in _values(node.value, (node.name.value,)):
            dotted = ".".join(path)
            if value.loc is not None:
                self.at.setdefault(value.loc.start, dotted)
            if isinstance(value, VariableNode):
                self.variables.setdefault(value.name.value, dotted)


def _values(node: ValueNode, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    stack: list[tuple[tuple[str, ...], Any]] = [(path, node)]
    while stack:
        where, value = stack.pop()
        yield where, value
        if isinstance(value, ObjectValueNode):
            for field in value.fields:
                if field.loc is not None:
                    stack.append(((*where, field.name.value), field))
                stack.append(((*where, field.name.value), field.value))
        elif isinstance(value, ListValueNode):
            stack.extend(((*where, str(i)), item) for i, item in enumerate(value.values))


_PATH_PART = re.compile(r"\.(\w+)|\[(\d+)\]")


def field_of(error: GraphQLError, document: DocumentNode | None) -> str | None:
    """The argument (and path inside it) an input error is about, by its GraphQL names."""
    if document is None:
        return None
    arguments = ArgumentPaths.of(document)
    message = error.message
    match = _VARIABLE_VALUE.match(message) or _VARIABLE_MISSING.match(message)
    if match is not None:
        usage = arguments.variables.get(match["var"], match["var"])
        inside = match.groupdict().get("at") or ""
        parts = [a or b for a, b in _PATH_PART.findall(inside)]
        return ".".join([usage, *parts])
    for position in error.positions or ():
        found = arguments.at.get(position)
        if found is not None:
            return found
    return None


def rewrite(
    error: GraphQLError, document: DocumentNode | None, *, suggestions: bool
) -> GraphQLError:
    """The error as the client may see it: value-free message, code, field."""
    original = error.original_error
    if original is not None and not isinstance(original, GraphQLError):
        return error  # domain errors and unexpected ones are rendered by the HTTP edge
    message = value_free(error.message)
    if not suggestions:
        message = without_suggestions(message)
    extensions = dict(error.extensions or {})
    code = declared_code(error) or classify(error)
    if code is not None:
        extensions["code"] = code
    if code == BAD_USER_INPUT and "field" not in extensions:
        field = field_of(error, document)
        if field is not None:
            extensions["field"] = field
    if message == error.message and extensions == (error.extensions or {}):
        return error
    return GraphQLError(
        message,
        error.nodes,
        error.source,
        error.positions,
        error.path,
        original,
        extensions or None,
    )


class ValueFreeErrors(SchemaExtension):
    """Rewrites every engine error of an operation (see the module docstring)."""

    def __init__(self, *, suggestions: bool) -> None:
        self.suggestions = suggestions

    def on_operation(self) -> Iterator[None]:
        ctx = self.execution_context
        try:
            yield
        except GraphQLError as error:
            # Raised by another extension (the parser cache parses in its hook): the
            # schema turns it into the result after this hook, so it is rewritten here.
            raise rewrite(error, ctx.graphql_document, suggestions=self.suggestions) from None
        result = ctx.result
        if result is None or not result.errors:
            return
        document = ctx.graphql_document
        result.errors = [
            rewrite(error, document, suggestions=self.suggestions) for error in result.errors
        ]
