"""Plain checks of what a client sends, before anything converts or stores it.

Text that no database column can hold is refused at the edge on both databases alike:
a NUL character (PostgreSQL's text types cannot store it; SQLite would) and a code point
that is not a Unicode scalar value (an unpaired surrogate cannot be encoded as UTF-8).
Sizes are checked before content: the longest string and list a request may carry are
settings (`CUSTOS_MAX_INPUT_STRING`, `CUSTOS_MAX_INPUT_LIST`).

Every answer names where the problem is (a path of keys and indexes) and what kind of
problem it is, never the value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Path = tuple[str | int, ...]


def text_problem(value: str) -> str | None:
    """Why this text cannot be taken, or None: a NUL character or an invalid code point."""
    if "\x00" in value:
        return "a NUL character"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "an invalid code point (an unpaired surrogate)"
    return None


@dataclass(frozen=True, slots=True)
class InputProblem:
    """What is wrong (no value) and where: keys and list indexes from the top."""

    path: Path
    problem: str

    def dotted(self, *prefix: str | int) -> str:
        return ".".join(str(part) for part in (*prefix, *self.path))


def value_problem(value: Any, *, max_string: int, max_list: int) -> InputProblem | None:
    """The first problem in a JSON-like value (strings, numbers, lists, objects), or None.

    Iterative, so a deeply nested value costs no recursion; every string and object key is
    measured before its characters are read.
    """
    stack: list[tuple[Path, Any]] = [((), value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            found = _string_problem(item, max_string)
            if found is not None:
                return InputProblem(path, found)
        elif isinstance(item, Mapping):
            if len(item) > max_list:
                return InputProblem(path, f"an object with more than {max_list} keys")
            for key, child in reversed(list(item.items())):
                key_text = str(key)
                found = _string_problem(key_text, 256)
                if found is not None:
                    return InputProblem(path, f"a key with {found}")
                stack.append(((*path, key_text), child))
        elif isinstance(item, list | tuple):
            if len(item) > max_list:
                return InputProblem(path, f"a list longer than {max_list} items")
            for index in range(len(item) - 1, -1, -1):
                stack.append(((*path, index), item[index]))
    return None


def _string_problem(value: str, max_string: int) -> str | None:
    if len(value) > max_string:
        return f"a string longer than {max_string} characters"
    found = text_problem(value)
    return None if found is None else found
