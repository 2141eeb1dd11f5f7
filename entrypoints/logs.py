"""Logging: configured once per process at start-up, human-readable lines or JSON lines.

Records logged while a request is handled carry its request id (see `request_id_var`), and its
trace id when tracing is on (`trace_id_var`). The request log's own line (see `access_log`) is
written straight to the configured stream, in the same format.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import logging
import sys
import time
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any, Literal

# Libraries that log statements with their parameters, or request bodies (password hashes, post
# texts, passwords) below these levels; they stay at least this quiet whatever the level.
QUIET_LOGGERS = {
    "sqlalchemy": logging.WARNING,
    "aiosqlite": logging.INFO,
    "asyncmy": logging.INFO,
    "multipart": logging.INFO,
    "python_multipart": logging.INFO,
}

request_id_var: ContextVar[str | None] = ContextVar("hexpost_request_id", default=None)
trace_id_var: ContextVar[str | None] = ContextVar("hexpost_trace_id", default=None)

# Attributes every LogRecord has; anything else was passed with `extra=` and belongs in the line.
# (uvicorn adds `color_message`, its message with terminal colour codes.)
_STANDARD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {key: value for key, value in vars(record).items() if key not in _STANDARD_ATTRIBUTES}


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            request_id = request_id_var.get()
            if request_id is not None:
                record.request_id = request_id
        if getattr(record, "trace_id", None) is None:
            trace_id = trace_id_var.get()
            if trace_id is not None:
                record.trace_id = trace_id
        return True


ACCESS_LOGGER = "hexpost.access"


class TextFormatter(logging.Formatter):
    """`<time> <LEVEL> <logger>: <message> key=value ...`, tracebacks on the lines below.

    Extra fields that the request log's message already shows are not repeated.
    """

    SHOWN_IN_MESSAGE = frozenset({"method", "path", "status", "duration_ms"})

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        fields = [
            f"{key}={_text(value)}"
            for key, value in extra_fields(record).items()
            if key not in self.SHOWN_IN_MESSAGE
        ]
        if fields:
            line += " " + " ".join(fields)
        return line


def _text(value: Any) -> str:
    if value is None:
        return "-"
    text = str(value)
    return json.dumps(text) if not text or any(c.isspace() or c in '"=' for c in text) else text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the record's extra fields, and
    the traceback (as one escaped string) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(extra_fields(record))
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def formatter(log_format: Literal["text", "json"]) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else TextFormatter()


class _HexpostHandler(logging.StreamHandler[IO[str]]):
    """Marks the handler this module installed, so that configuring again replaces it. Request
    lines still waiting to be written go first, so that the stream keeps the order of events."""

    def emit(self, record: logging.LogRecord) -> None:
        access_log.flush()
        super().emit(record)


class AccessLog:
    """The request log: one line per request, as `TextFormatter` or `JsonFormatter` would write it.

    Building a LogRecord, finding its caller and running it through a formatter cost more than a
    cached get-posts itself; this writes the finished line to the stream of the handler that
    `configure_logging` installed, under that handler's lock. Until that handler is installed (or
    once it is removed: tests, an application that configures logging itself) the line goes through
    `logging` like any other record.

    Inside an event loop, the lines of the requests that end in one turn of the loop are written
    together at its end: one write instead of one per request (a write is a system call, as long as
    the rest of the line's cost). Any other record written through the handler, and the end of the
    process, write the waiting lines first.
    """

    def __init__(self) -> None:
        self._logger = logging.getLogger(ACCESS_LOGGER)
        self._handler: logging.StreamHandler[IO[str]] | None = None
        self._json = False
        self._second = -1
        self._second_text = ""
        self._waiting: list[str] = []
        atexit.register(self.flush)

    def write_to(self, handler: logging.StreamHandler[IO[str]], log_format: Literal["text", "json"]) -> None:
        self.flush()
        self._handler = handler
        self._json = log_format == "json"

    def log(
        self,
        level: int,
        method: str,
        path: str,
        status: int | None,
        duration_ms: float,
        user_id: Any,
        request_id: str,
        trace_id: str | None = None,
    ) -> None:
        if not self._logger.isEnabledFor(level):
            return
        message = f"{method} {path} {status if status is not None else '-'} {duration_ms:.1f}ms"
        handler = self._handler
        if handler is None or handler not in logging.getLogger().handlers:
            fields = {
                "method": method,
                "path": path,
                "status": status,
                "duration_ms": duration_ms,
                "user_id": user_id,
                "request_id": request_id,
            }
            if trace_id is not None:
                fields["trace_id"] = trace_id
            self._logger.log(level, "%s", message, extra=fields)
            return
        now = time.time()
        level_name = logging.getLevelName(level)
        if self._json:
            entry = {
                "time": datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds"),
                "level": level_name,
                "logger": ACCESS_LOGGER,
                "message": message,
                "method": method,
                "path": path,
                "status": status,
                "duration_ms": duration_ms,
                "user_id": user_id,
                "request_id": request_id,
            }
            if trace_id is not None:
                entry["trace_id"] = trace_id
            line = json.dumps(entry, default=str, ensure_ascii=False)
        else:
            # Generated request ids are alphanumeric and user ids numbers: neither needs quoting.
            shown_id = request_id if request_id.isalnum() else _text(request_id)
            shown_user = "-" if user_id is None else str(user_id)
            line = (
                f"{self._asctime(now)} {level_name} {ACCESS_LOGGER}: {message} "
                f"user_id={shown_user} request_id={shown_id}"
            )
            if trace_id is not None:
                line += f" trace_id={trace_id}"
        self._waiting.append(line + handler.terminator)
        if len(self._waiting) == 1:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:
                self.flush()

    def flush(self) -> None:
        """Writes the lines waiting for the end of the loop's turn."""
        lines, handler = self._waiting, self._handler
        if not lines or handler is None:
            return
        self._waiting = []
        with handler.lock or _NO_LOCK:
            handler.stream.write("".join(lines))
            handler.flush()

    def _asctime(self, now: float) -> str:
        """`logging.Formatter.formatTime`'s default form, the date part made once a second."""
        second = int(now)
        if second != self._second:
            self._second = second
            self._second_text = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        return f"{self._second_text},{int((now - second) * 1000):03d}"


_NO_LOCK = contextlib.nullcontext()
access_log = AccessLog()


def configure_logging(level: str, log_format: Literal["text", "json"], stream: IO[str] | None = None) -> None:
    """Sends every logger's records (uvicorn's included) through one handler on the root logger.

    Idempotent: the CLI and the ASGI factory may both call it in one process.
    """
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _HexpostHandler)]:
        root.removeHandler(old)
    handler = _HexpostHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter(log_format))
    handler.addFilter(_RequestIdFilter())
    root.addHandler(handler)
    access_log.write_to(handler, log_format)
    root.setLevel(level)
    for name, floor in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(max(floor, root.level))
    # uvicorn's loggers propagate to the root once it no longer configures them itself.
    for name in ("uvicorn", "uvicorn.error"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
