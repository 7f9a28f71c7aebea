"""Formatting of results numbers: an estimate with its interval, or a dash with the reason."""

from __future__ import annotations

from django import template
from django.utils.html import format_html

register = template.Library()

DASH = "\u2014"


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(value: float | None, digits: int, percent: bool) -> str:
    if value is None:
        return DASH
    return f"{value * 100:.{max(digits - 2, 0)}f}%" if percent else f"{value:.{digits}f}"


@register.filter
def estimate(value: dict | None, digits: int = 2) -> str:
    """``3.51 [3.30, 3.72]`` from an ``Estimate.as_dict()``; a dash with the reason as a tooltip."""
    return _format(value, int(digits), percent=False)


@register.filter
def percent(value: dict | None, digits: int = 3) -> str:
    """``80.0% [70.1%, 87.2%]`` from a share estimate."""
    return _format(value, int(digits), percent=True)


def _format(value: dict | None, digits: int, *, percent: bool) -> str:
    if not value or value.get("value") is None:
        reason = (value or {}).get("reason") or "no data"
        return format_html('<span class="na" title="{}">{}</span>', reason, DASH)
    text = _number(value["value"], digits, percent)
    if value.get("low") is not None and value.get("high") is not None:
        text += f" [{_number(value['low'], digits, percent)}, {_number(value['high'], digits, percent)}]"
    if value.get("reason"):
        return format_html('<span title="{}">{} *</span>', value["reason"], text)
    return text


@register.filter
def number(value: float | int | None, digits: int = 3) -> str:
    """A plain number with ``digits`` significant digits; a dash for ``None``."""
    if value is None or value == "":
        return DASH
    if isinstance(value, bool | str):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.{int(digits)}g}"


@register.filter
def gib(value: float | int | None) -> str:
    """Bytes as GiB with two decimals."""
    return f"{value / 2**30:.2f} GiB" if _is_number(value) else DASH


@register.filter
def hours(value: float | int | None) -> str:
    """Seconds as hours with two decimals."""
    return f"{value / 3600:.2f} h" if _is_number(value) else DASH
