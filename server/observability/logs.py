"""Log output: one JSON object per line (`CUSTOS_LOG_FORMAT=json`, the default in prod)
or readable text. Fields a record carries under `extra={"custos": {...}}` become keys of
its JSON line (or `key=value` pairs of its text line)."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

_ATTRIBUTE = "custos"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        extra = getattr(record, _ATTRIBUTE, None)
        if isinstance(extra, dict):
            line.update(extra)
        if record.exc_info and record.exc_info[0] is not None:
            # The type only: an exception's message may quote a value.
            line["exception"] = record.exc_info[0].__name__
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extra = getattr(record, _ATTRIBUTE, None)
        if isinstance(extra, dict):
            text += "".join(f" {key}={value}" for key, value in extra.items())
        return text

    def formatException(self, ei: Any) -> str:
        return f"{ei[0].__name__}" if ei and ei[0] is not None else ""


def configure_logging(*, json: bool, level: str = "info") -> None:
    """Route Custos's loggers (and uvicorn's) through one handler on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json else TextFormatter())
    for name in ("custos", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.propagate = False
        logger.setLevel(level.upper())
    # uvicorn's access log repeats our request line without the request id.
    logging.getLogger("uvicorn.access").disabled = True


def uvicorn_log_config(*, json: bool, level: str) -> dict[str, Any]:
    """uvicorn's `log_config` in the same format (its workers configure logging anew)."""
    formatter = {"()": f"{__name__}.JsonFormatter"} if json else {"()": f"{__name__}.TextFormatter"}
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "custos",
        "stream": "ext://sys.stderr",
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"custos": formatter},
        "handlers": {"custos": handler},
        "loggers": {
            name: {"handlers": ["custos"], "level": level.upper(), "propagate": False}
            for name in ("custos", "uvicorn", "uvicorn.error")
        }
        | {"uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False}},
    }
