"""Events as log lines: the one conversion every job package uses for its `events.jsonl`.

Each package (train, export, evaluate, collect) declares its events as frozen dataclasses with a
`type` class variable and lists them in an :class:`EventCodec`, which turns an event into the
JSON object a log line holds and back. The line format is the packages' existing one (`type`
first, then the fields; tuples as lists), so older logs still read; a line of an unknown type or
shape reads as None, which readers skip.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Mapping
from dataclasses import Field, asdict, fields
from typing import Any, ClassVar, Generic, Protocol, TypeVar


class Event(Protocol):
    """What a log event is: a dataclass whose class names its line `type`."""

    type: ClassVar[str]
    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]


E = TypeVar("E", bound=Event)


class EventCodec(Generic[E]):
    """One package's events: their `type` names, and their conversion to and from log lines.

    `null_non_finite` writes NaN and infinity as null (training's losses can blow up; a strict
    JSON reader must still read the log); without it they are written as Python's json module
    writes them (`NaN`, `Infinity`), as these packages always have.
    """

    def __init__(self, *classes: type[E], null_non_finite: bool = False) -> None:
        self.types: dict[str, type[E]] = {cls.type: cls for cls in classes}
        if len(self.types) != len(classes):
            raise ValueError("two event classes share a type name")
        self.null_non_finite = null_non_finite
        self._names = {cls: frozenset(item.name for item in fields(cls)) for cls in classes}
        self._tuples = {cls: _tuple_fields(cls) for cls in classes}

    def to_dict(self, event: E) -> dict[str, Any]:
        """The JSON object for `events.jsonl`: `type`, then the fields."""
        data = asdict(event)
        if self.null_non_finite:
            data = {key: finite_or_none(value) for key, value in data.items()}
        return {"type": event.type, **data}

    def from_dict(self, data: Mapping[str, Any]) -> E | None:
        """The event a log line holds; None for a line of another type or shape."""
        cls = self.types.get(str(data.get("type", "")))
        if cls is None:
            return None
        names, tuples = self._names[cls], self._tuples[cls]
        values = {key: value for key, value in data.items() if key in names}
        for key in tuples & values.keys():
            if isinstance(values[key], list):
                values[key] = tuple(values[key])
        try:
            return cls(**values)
        except TypeError:
            return None


def finite_or_none(value: Any) -> Any:
    """`value`, except None for a float that is NaN or infinite (JSON has no such numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _tuple_fields(cls: type) -> frozenset[str]:
    """Fields declared as tuples: JSON brings them back as lists, the events hold tuples."""
    hints = typing.get_type_hints(cls)
    return frozenset(
        item.name for item in fields(cls) if typing.get_origin(hints[item.name]) is tuple
    )
