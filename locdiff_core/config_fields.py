"""Typed, bounded fields of the config dataclasses a checkpoint carries.

A config read from a file is untrusted: a float where an integer belongs, a string for a
number, ``true`` for a count, or a width of a billion (which would try to allocate without
bound when the model is built). Each config class lists its fields with a spec (:class:`Int`,
:class:`Real`, :class:`Ints`, :class:`Choice`, :class:`Flag`); :func:`from_fields` builds the
dataclass from a JSON object and :func:`check_fields` checks an instance, both raising
``ValueError`` that names the field and what it must be, e.g. ``locdiff_config.model.degree
must be an integer in 0..200, got 12.5``. ``bool`` is never taken for a number.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass

_SHOWN = 60  # characters of a rejected value in a message (a file may hold megabytes)


class _RejectedError(Exception):
    """A value outside its spec (turned into a ValueError naming the field)."""


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


@dataclass(frozen=True)
class Int:
    """An integer in ``lo..hi`` (both included)."""

    lo: int
    hi: int

    def parse(self, value: object) -> int:
        if not _is_int(value) or not self.lo <= value <= self.hi:
            raise _RejectedError
        return int(value)

    def describe(self) -> str:
        return f"an integer in {self.lo}..{self.hi}"


@dataclass(frozen=True)
class Real:
    """A finite number between ``lo`` and ``hi``; ``open_lo``/``open_hi`` exclude the ends."""

    lo: float
    hi: float
    open_lo: bool = False
    open_hi: bool = False

    def parse(self, value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise _RejectedError
        x = float(value)
        above = x > self.lo if self.open_lo else x >= self.lo
        below = x < self.hi if self.open_hi else x <= self.hi
        if not (math.isfinite(x) and above and below):
            raise _RejectedError
        return x

    def describe(self) -> str:
        left, right = "(" if self.open_lo else "[", ")" if self.open_hi else "]"
        return f"a number in {left}{self.lo:g}, {self.hi:g}{right}"


@dataclass(frozen=True)
class Ints:
    """A list (a tuple in the dataclass) of ``min_len..max_len`` integers, each in ``item``."""

    item: Int
    min_len: int
    max_len: int

    def parse(self, value: object) -> tuple[int, ...]:
        if not isinstance(value, list | tuple) or not self.min_len <= len(value) <= self.max_len:
            raise _RejectedError
        return tuple(self.item.parse(v) for v in value)

    def describe(self) -> str:
        return (
            f"a list of {self.min_len}..{self.max_len} integers, each in "
            f"{self.item.lo}..{self.item.hi}"
        )


@dataclass(frozen=True)
class Choice:
    """A member of ``kind`` (an enum), given as the member or its value."""

    kind: type[enum.Enum]

    def parse(self, value: object) -> enum.Enum:
        if isinstance(value, self.kind):
            return value
        if not isinstance(value, str):
            raise _RejectedError
        try:
            return self.kind(value)
        except ValueError:
            raise _RejectedError from None

    def describe(self) -> str:
        return "one of " + ", ".join(repr(m.value) for m in self.kind)


@dataclass(frozen=True)
class Flag:
    """``true`` or ``false`` (not 0 or 1)."""

    def parse(self, value: object) -> bool:
        if not isinstance(value, bool):
            raise _RejectedError
        return value

    def describe(self) -> str:
        return "true or false"


Spec = Int | Real | Ints | Choice | Flag


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def parse_field(name: str, value: object, spec: Spec) -> object:
    """``value`` as the field ``name`` holds it; ``ValueError`` naming the field otherwise."""
    try:
        return spec.parse(value)
    except _RejectedError:
        raise ValueError(f"{name} must be {spec.describe()}, got {_shown(value)}") from None


def require_object(value: object, where: str) -> Mapping:
    """``value`` when it is a JSON object (a mapping); ``ValueError`` naming ``where`` else."""
    if not isinstance(value, Mapping):
        raise ValueError(f"{where} must be a JSON object, got {_shown(value)}")
    return value


def refuse_unknown(raw: Mapping, known: set[str], where: str) -> None:
    """Refuse keys of ``raw`` outside ``known``: a file from another version, or a typo."""
    unknown = sorted(str(k) for k in raw.keys() - known)
    if unknown:
        raise ValueError(
            f"{where} has unknown fields {unknown} (known: {sorted(known)}); the file was "
            "written by another version of locdiff, so upgrade locdiff or retrain"
        )


def from_fields(cls: type, raw: object, specs: Mapping[str, Spec], where: str):
    """An instance of the dataclass ``cls`` from the JSON object ``raw``.

    Every key must be a field of ``specs``; a missing field takes the dataclass default and is
    refused where there is none. Messages name the field as ``where.name``.
    """
    raw = require_object(raw, where)
    refuse_unknown(raw, set(specs), where)
    missing = dataclasses.MISSING
    required = {
        f.name
        for f in dataclasses.fields(cls)
        if f.default is missing and f.default_factory is missing
    }
    values = {}
    for name, spec in specs.items():
        if name in raw:
            values[name] = parse_field(f"{where}.{name}", raw[name], spec)
        elif name in required:
            raise ValueError(f"{where}.{name} is missing; it must be {spec.describe()}")
    return cls(**values)


def check_fields(obj: object, specs: Mapping[str, Spec]) -> None:
    """Refuse an instance whose fields are outside ``specs``, or of another type than the
    parsed form (a string where an enum member belongs, a list for a tuple)."""
    for name, spec in specs.items():
        value = getattr(obj, name)
        parsed = parse_field(name, value, spec)
        # The JSON forms parse too; the instance must hold the dataclass's own types.
        if isinstance(spec, Ints | Choice) and type(parsed) is not type(value):
            raise ValueError(
                f"{name} must be a {type(parsed).__name__} ({spec.describe()}), got {_shown(value)}"
            )
