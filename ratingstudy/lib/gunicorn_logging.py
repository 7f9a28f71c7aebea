"""gunicorn's logger with invitation tokens redacted (``--logger-class ratingstudy.lib.gunicorn_logging.Logger``).

The access log's request line, path and Referer atoms, and every error-log record, go
through :func:`ratingstudy.lib.redact.redact`.
"""

from __future__ import annotations

from gunicorn import glogging

from ratingstudy.lib.redact import RedactInvitationTokens, redact


class Logger(glogging.Logger):
    def setup(self, cfg) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            log.addFilter(RedactInvitationTokens())

    def atoms(self, resp, req, environ, request_time) -> dict:
        return {key: redact(value) if isinstance(value, str) else value for key, value in super().atoms(resp, req, environ, request_time).items()}
