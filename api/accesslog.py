"""The server's access log names the path of each request, never its query string: a query may carry a search
term, a filter or a token, and the log is read by people who may not see case data."""

from __future__ import annotations

import logging

ACCESS_LOGGER = "uvicorn.access"


class WithoutQuery(logging.Filter):
    """Cut the query string off uvicorn's access record (its arguments: client, method, path, HTTP version,
    status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) == 5:
            client, method, path, version, status = record.args
            if isinstance(path, str):
                record.args = (client, method, path.split("?", 1)[0], version, status)
        return True


def install() -> None:
    """Filter this process's access log (once; every worker builds the app and so calls this)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, WithoutQuery) for f in logger.filters):
        logger.addFilter(WithoutQuery())
