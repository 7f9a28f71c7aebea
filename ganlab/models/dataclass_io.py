"""Validation and JSON round-trips for the typed config dataclasses.

Configs are built at the edge (a JSON file, an admin form, a checkpoint) and must fail
there with a message naming the field, not deep inside training.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any


def _matches(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(hint))
    if origin is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list) and all(_matches(v, item) for v in value)
    if origin is dict:
        key, item = typing.get_args(hint)
        return isinstance(value, dict) and all(
            _matches(k, key) and _matches(v, item) for k, v in value.items()
        )
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def check_field_types(config: Any) -> None:
    """Raise ``ValueError('<Class>.<field>: expected <type>, got <value>')`` on a type mismatch."""
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if not _matches(value, hints[field.name]):
            raise ValueError(
                f"{type(config).__name__}.{field.name}: expected {hints[field.name]}, got {value!r}"
            )


def require(condition: bool, config: Any, field: str, message: str) -> None:
    """Raise ``ValueError('<Class>.<field>: <message>')`` unless ``condition``."""
    if not condition:
        raise ValueError(f"{type(config).__name__}.{field}: {message}")


def known_fields(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` after checking that every key is a field of ``cls``."""
    if not isinstance(data, dict):
        raise ValueError(f"{cls.__name__}: expected a JSON object, got {type(data).__name__}")
    names = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(
            f"{cls.__name__}: unknown field(s) {unknown}; known fields: {sorted(names)}"
        )
    return dict(data)
