"""Strict parsing of settings from environment variables.

A bad value raises ``ImproperlyConfigured`` naming the variable and the value,
so a typo in a deployment fails at start-up instead of at the first request.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class Env:
    """Reads typed values from a mapping (``os.environ`` by default)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self.environ = os.environ if environ is None else environ

    def _raw(self, name: str) -> str | None:
        value = self.environ.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def str(self, name: str, default: str | None = None, *, required: bool = False) -> str | None:
        value = self._raw(name)
        if value is None:
            if required:
                raise ImproperlyConfigured(f"{name} must be set")
            return default
        return value

    def bool(self, name: str, default: bool) -> bool:
        value = self._raw(name)
        if value is None:
            return default
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise ImproperlyConfigured(
            f"{name}={value!r} is not a boolean; use one of 1/0, true/false, yes/no, on/off"
        )

    def int(self, name: str, default: int, *, minimum: int | None = None) -> int:
        value = self._raw(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise ImproperlyConfigured(f"{name}={value!r} is not an integer") from None
        if minimum is not None and number < minimum:
            raise ImproperlyConfigured(f"{name}={number} must be at least {minimum}")
        return number

    def list(self, name: str, default: list[str]) -> list[str]:
        value = self._raw(name)
        if value is None:
            return list(default)
        items = [item.strip() for item in value.split(",")]
        if any(not item for item in items):
            raise ImproperlyConfigured(f"{name}={value!r} has an empty item; separate with commas")
        return items

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self._raw(name) or default
        if value not in choices:
            raise ImproperlyConfigured(f"{name}={value!r} must be one of {', '.join(choices)}")
        return value

    def path(self, name: str, default: Path) -> Path:
        value = self._raw(name)
        return Path(value).expanduser().resolve() if value else default

    def database(self, name: str, default: str) -> dict:
        import dj_database_url

        value = self._raw(name) or default
        try:
            config = dj_database_url.parse(value, conn_max_age=60, conn_health_checks=True)
        except Exception as exc:  # dj_database_url raises ValueError or UnknownSchemeError
            raise ImproperlyConfigured(
                f"{name}={value!r} is not a valid database URL: {exc}"
            ) from exc
        engine = config.get("ENGINE", "")
        if engine not in (
            "django.db.backends.sqlite3",
            "django.db.backends.postgresql",
        ):
            raise ImproperlyConfigured(
                f"{name}={value!r}: only sqlite:// and postgres:// URLs are supported"
            )
        return config

    def redis_url(self, name: str) -> str | None:
        value = self._raw(name)
        if value is None:
            return None
        if not value.startswith(("redis://", "rediss://", "redis+socket://", "unix://")):
            raise ImproperlyConfigured(
                f"{name}={value!r} must start with redis://, rediss://, redis+socket:// or unix://"
            )
        return value
