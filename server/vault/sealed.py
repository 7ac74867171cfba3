"""A plaintext that must not escape by accident: its repr and str print `***`."""

from __future__ import annotations


class Sealed:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Sealed(***)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sealed) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)
