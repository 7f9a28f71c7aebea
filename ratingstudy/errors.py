"""The one application error type; views and commands turn it into responses/messages."""

from __future__ import annotations


class ApplicationError(Exception):
    """A request that cannot be carried out, with a message fit to show the user.

    ``extra`` carries structured details (e.g. the list of bad files).
    """

    def __init__(self, message: str, *, extra: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra or {}
