"""Logging: JSON lines with ISO UTC timestamps, contextvars, stdlib routing, secret redaction."""

from __future__ import annotations

import io
import json
import logging
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import PurePosixPath
from typing import Any

import pytest
import structlog
from pydantic import SecretStr

from kasmm.core.types import Side
from kasmm.obs.logs import REDACTED, configure_logging, redact_secrets


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    text = stream.getvalue()
    assert text.endswith("\n")
    lines = text.splitlines()
    records = [json.loads(line) for line in lines]
    assert all(isinstance(r, dict) for r in records)
    return records


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


# --- JSON format -----------------------------------------------------------------------------


def test_json_line_has_event_level_and_utc_timestamp() -> None:
    out = io.StringIO()
    configure_logging(fmt="json", stream=out)
    before = datetime.now().astimezone()
    structlog.get_logger().info("order_placed", side="buy", price=Decimal("0.0125"), level_no=3)
    after = datetime.now().astimezone()
    [record] = json_lines(out)
    assert record["event"] == "order_placed"
    assert record["level"] == "info"
    assert record["side"] == "buy"
    assert record["price"] == "0.0125"  # Decimal serialized as its exact string
    assert record["level_no"] == 3
    ts = record["timestamp"]
    assert isinstance(ts, str)
    assert ts.endswith("Z")
    parsed = datetime.fromisoformat(ts)
    assert parsed.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= parsed <= after + timedelta(seconds=1)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("0.0125"), "0.0125"),
        (Decimal("1E+3"), "1E+3"),
        (PurePosixPath("/etc/kasmm/p.yaml"), "/etc/kasmm/p.yaml"),
        (Side.BUY, "buy"),
        ({"k": Decimal("2")}, {"k": "2"}),
    ],
)
def test_non_json_values_render_as_str_not_repr(value: object, expected: object) -> None:
    # Regression: structlog's JSONRenderer passed its repr() fallback to the orjson serializer,
    # so a Decimal rendered as "Decimal('0.0125')".
    out = io.StringIO()
    configure_logging(fmt="json", stream=out)
    structlog.get_logger().info("e", value=value)
    assert json_lines(out)[0]["value"] == expected


@pytest.mark.parametrize(
    ("method", "level"),
    [("info", "info"), ("warning", "warning"), ("error", "error"), ("critical", "critical")],
)
def test_each_event_is_one_json_line(method: str, level: str) -> None:
    out = io.StringIO()
    configure_logging(fmt="json", stream=out)
    log = structlog.get_logger()
    for i in range(3):
        getattr(log, method)("tick", i=i, text="multi\nline")
    records = json_lines(out)
    assert [r["i"] for r in records] == [0, 1, 2]
    assert {r["level"] for r in records} == {level}
    assert records[0]["text"] == "multi\nline"  # escaped, still one line per event


@pytest.mark.parametrize(
    ("level", "logged"),
    [
        ("debug", ["debug", "info", "warning", "error"]),
        ("info", ["info", "warning", "error"]),
        ("warning", ["warning", "error"]),
        ("error", ["error"]),
        ("bogus", ["info", "warning", "error"]),  # unknown names fall back to info
    ],
)
def test_level_filter(level: str, logged: list[str]) -> None:
    out = io.StringIO()
    configure_logging(fmt="json", level=level, stream=out)
    log = structlog.get_logger()
    log.debug("e")
    log.info("e")
    log.warning("e")
    log.error("e")
    assert [r["level"] for r in json_lines(out)] == logged


# --- redaction -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"api_key": "CANARY"},
        {"apikey": "CANARY"},
        {"apiKey": "CANARY"},
        {"API_KEY": "CANARY"},
        {"x-api-key": "CANARY"},  # HTTP header spelling
        {"secret": "CANARY"},
        {"api_secret": "CANARY"},
        {"passphrase": "CANARY"},
        {"password": "CANARY"},
        {"signature": "CANARY"},
        {"token": "CANARY"},
        {"access_token": "CANARY"},
        {"key": SecretStr("CANARY")},  # any SecretStr, whatever the field name
        {"nested": {"secret": "CANARY"}},
        {"nested": {"deeper": {"apiKey": "CANARY", "ok": 1}}},
        {"headers": [{"X-API-KEY": "CANARY"}]},
        {"items": ("fine", SecretStr("CANARY"))},
        {"creds": {"key": SecretStr("CANARY")}},
    ],
)
def test_secrets_never_reach_the_output(fields: dict[str, Any]) -> None:
    out = io.StringIO()
    configure_logging(fmt="json", stream=out)
    structlog.get_logger().info("connect", venue="mexc", **fields)
    text = out.getvalue()
    assert "CANARY" not in text
    assert REDACTED in text
    [record] = json_lines(out)
    assert record["venue"] == "mexc"  # ordinary fields are untouched


def test_brief_example_redacts_all_canaries() -> None:
    out = io.StringIO()
    configure_logging(fmt="json", stream=out)
    structlog.get_logger().info(
        "order_placed",
        side="buy",
        api_key="CANARY",
        nested={"secret": "CANARY2", "size": "5"},
        token=SecretStr("CANARY3"),
    )
    assert "CANARY" not in out.getvalue()
    [record] = json_lines(out)
    assert record["event"] == "order_placed"
    assert record["side"] == "buy"
    assert record["api_key"] == REDACTED
    assert record["nested"] == {"secret": REDACTED, "size": "5"}
    assert record["token"] == REDACTED


@pytest.mark.parametrize(
    ("event_dict", "expected"),
    [
        ({"event": "e", "side": "buy"}, {"event": "e", "side": "buy"}),
        ({"event": "e", "secret_ref": "x"}, {"event": "e", "secret_ref": REDACTED}),
        ({"event": "e", "m": {1: "a"}}, {"event": "e", "m": {1: "a"}}),  # non-str keys kept
        ({"event": "e", "l": [1, {"token": 2}]}, {"event": "e", "l": [1, {"token": REDACTED}]}),
        ({"event": "e", "s": SecretStr("x")}, {"event": "e", "s": REDACTED}),
    ],
)
def test_redact_secrets_processor(event_dict: dict[str, Any], expected: dict[str, Any]) -> None:
    assert redact_secrets(None, "info", dict(event_dict)) == expected


# --- contextvars -----------------------------------------------------------------------------


def test_bound_contextvars_appear_and_go_away() -> None:
    out = io.StringIO()
    configure_logging(fmt="json", stream=out)
    log = structlog.get_logger()
    with structlog.contextvars.bound_contextvars(profile="p1", venue="sim"):
        log.info("inside", symbol="KAS/USDT")
        logging.getLogger("ccxt").warning("stdlib inside")
    log.info("outside")
    inside, stdlib_inside, outside = json_lines(out)
    assert (inside["profile"], inside["venue"], inside["symbol"]) == ("p1", "sim", "KAS/USDT")
    assert (stdlib_inside["profile"], stdlib_inside["venue"]) == ("p1", "sim")
    assert "profile" not in outside
    assert "venue" not in outside


def test_bound_secret_contextvar_is_redacted() -> None:
    out = io.StringIO()
    configure_logging(fmt="json", stream=out)
    with structlog.contextvars.bound_contextvars(api_key="CANARY"):
        structlog.get_logger().info("e")
        logging.getLogger("ccxt").warning("w")
    assert "CANARY" not in out.getvalue()


# --- stdlib routing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("logger_name", "method", "level"),
    [
        ("ccxt", "warning", "warning"),
        ("ccxt.base.exchange", "error", "error"),
        ("apscheduler.scheduler", "critical", "critical"),
    ],
)
def test_stdlib_logging_renders_through_the_json_pipeline(
    logger_name: str, method: str, level: str
) -> None:
    out = io.StringIO()
    configure_logging(fmt="json", stream=out)
    getattr(logging.getLogger(logger_name), method)("rate limit %s", "hit")
    [record] = json_lines(out)
    assert record["event"] == "rate limit hit"
    assert record["level"] == level
    assert record["logger"] == logger_name
    assert record["timestamp"].endswith("Z")
    assert not any(k.startswith("_") for k in record)  # no ProcessorFormatter internals


def test_stdlib_below_warning_is_dropped_even_at_debug() -> None:
    out = io.StringIO()
    configure_logging(fmt="json", level="debug", stream=out)
    logging.getLogger("ccxt").info("chatty")
    logging.getLogger("ccxt").debug("chattier")
    logging.getLogger("ccxt").warning("kept")
    assert [r["event"] for r in json_lines(out)] == ["kept"]


def test_configure_twice_keeps_one_root_handler() -> None:
    out = io.StringIO()
    configure_logging(fmt="json", stream=io.StringIO())
    configure_logging(fmt="json", stream=out)
    assert len(logging.getLogger().handlers) == 1
    logging.getLogger("ccxt").warning("once")
    assert len(json_lines(out)) == 1


@pytest.mark.parametrize("source", ["structlog", "stdlib"])
def test_exceptions_render_their_traceback(source: str) -> None:
    # Regression (stdlib): the foreign chain lacked format_exc_info, so an exception logged by
    # ccxt or apscheduler rendered as a useless repr of the exc_info tuple, no traceback.
    out = io.StringIO()
    configure_logging(fmt="json", stream=out)
    try:
        raise ZeroDivisionError("CANARY_EXC")
    except ZeroDivisionError:
        if source == "structlog":
            structlog.get_logger().exception("boom")
        else:
            logging.getLogger("apscheduler.executors").exception("boom")
    [record] = json_lines(out)
    assert record["event"] == "boom"
    assert record["level"] == "error"
    assert "exc_info" not in record
    assert "Traceback (most recent call last)" in record["exception"]
    assert "ZeroDivisionError: CANARY_EXC" in record["exception"]


# --- console format --------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "stream_cls"), [("console", io.StringIO), ("auto", FakeTTY)])
def test_console_format_is_human_text(fmt: str, stream_cls: type[io.StringIO]) -> None:
    out = stream_cls()
    configure_logging(fmt=fmt, stream=out)
    structlog.get_logger().info("order_placed", side="buy", api_key="CANARY")
    logging.getLogger("ccxt").warning("stdlib says hi")
    text = out.getvalue()
    lines = text.splitlines()
    assert len(lines) == 2
    for line in lines:
        with pytest.raises(json.JSONDecodeError):
            json.loads(line)
    assert "order_placed" in lines[0]
    assert "side=buy" in lines[0]
    assert "info" in lines[0]
    assert "stdlib says hi" in lines[1]
    assert "ccxt" in lines[1]
    assert "CANARY" not in text
    assert "\x1b[" not in text  # no colour codes


def test_auto_format_is_json_off_a_terminal() -> None:
    out = io.StringIO()
    configure_logging(fmt="auto", stream=out)
    structlog.get_logger().info("e")
    assert json_lines(out)[0]["event"] == "e"


def test_console_exception_has_traceback() -> None:
    out = io.StringIO()
    configure_logging(fmt="console", stream=out)
    try:
        raise ValueError("bad")
    except ValueError:
        logging.getLogger("ccxt").exception("boom")
        structlog.get_logger().exception("boom2")
    text = out.getvalue()
    assert text.count("Traceback (most recent call last)") == 2
    assert "ValueError: bad" in text
