"""Invitation tokens never reach a log: paths and Referers of rater pages are redacted.

A rater's link is ``/r/<token>/...``; whoever reads a log line holding it could act as
that rater. :func:`redact` replaces the token, :class:`RedactInvitationTokens` applies it
to every log record (Django's request and server loggers, the root logger), and
:mod:`ratingstudy.lib.gunicorn_logging` to gunicorn's access and error logs.
"""

from __future__ import annotations

import logging
import re

INVITATION_PATH = re.compile(r"(/r/)[A-Za-z0-9_-]{8,}")
REDACTED = r"\1<token>"


def redact(text: str) -> str:
    """``text`` with every ``/r/<token>`` replaced by ``/r/<token>`` literally."""
    return INVITATION_PATH.sub(REDACTED, text)


def _redacted(value: object) -> object:
    return redact(value) if isinstance(value, str) else value


class RedactInvitationTokens(logging.Filter):
    """A logging filter that redacts invitation tokens in the message and its arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, dict):
            record.args = {key: _redacted(value) for key, value in record.args.items()}
        elif record.args:
            record.args = tuple(_redacted(value) for value in record.args)
        return True
