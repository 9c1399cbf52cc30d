"""structlog configuration: JSON lines off a terminal, readable console on one, secrets redacted.

Events are stable snake_case names with keyword fields: ``log.info("order_placed", side=...)``.
Per-profile context (``profile``, ``venue``, ``symbol``) is bound through contextvars by the bot.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import orjson
import structlog
from pydantic import SecretStr

_SECRET_KEY = re.compile(r"(api[_-]?key|secret|passphrase|password|signature|token)", re.I)
REDACTED = "**redacted**"


def _redact_value(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return REDACTED
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if isinstance(k, str) and _SECRET_KEY.search(k) else _redact_value(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_redact_value(v) for v in value]
    return value


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: blank every field whose name looks secret, and every SecretStr."""
    for key in list(event_dict):
        if _SECRET_KEY.search(key):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _redact_value(event_dict[key])
    return event_dict


def _orjson_dumps(obj: Any, default: Any = None) -> str:
    return orjson.dumps(obj, default=default or str).decode()


#: Whether the configured output is for people (the console renderer), not JSON for machines.
_console = False


def console_output() -> bool:
    """True when logs go out through the console renderer (a person reads them)."""
    return _console


def configure_logging(fmt: str = "auto", level: str = "info", stream: Any = None) -> None:
    """Configure structlog and route stdlib logging (ccxt, apscheduler, ...) through it.

    :param fmt: ``json``, ``console`` or ``auto`` (console when ``stream`` is a terminal).
    :param level: minimum level name.
    :param stream: where to write (default: stderr).
    """
    global _console
    out = stream if stream is not None else sys.stderr
    as_json = fmt == "json" or (fmt == "auto" and not getattr(out, "isatty", lambda: False)())
    _console = not as_json
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_orjson_dumps, default=str)
        if as_json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    level_no = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level_no),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processor=renderer,
            foreign_pre_chain=[
                *shared,
                structlog.stdlib.add_logger_name,
                structlog.processors.format_exc_info,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(level_no, logging.WARNING))
