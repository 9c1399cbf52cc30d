"""The loopback control endpoint (kasmm.control) and the ``kasmm status`` client."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from functools import partial
from typing import Any

import anyio
import pytest
import structlog

from kasmm.commands.status import render_table, status_command
from kasmm.control import (
    MAX_HEAD_BYTES,
    MetricsFn,
    parse_addr,
    render_status_json,
    serve_control,
)

LONG_ERROR = "venue said: " + "x" * 200

STATUS: dict[str, Any] = {
    "supervisor": {"pid": 4242, "uptime_s": 3723.5, "profiles_total": 2},
    "profiles": [
        {
            "name": "kas-usdt-mexc",
            "state": "running",
            "mode": "live",
            "mid": Decimal("0.1234500"),
            "spread_bps": 42.5,
            "inventory_base": Decimal("1500"),
            "open_orders": 4,
            "net_pnl": Decimal("-1.25"),
            "last_error": LONG_ERROR,
        },
        # Sparse on purpose: every missing column must render as "-".
        {"name": "kas-btc-sim", "state": "starting"},
    ],
}
METRICS = (b"kasmm_up 1\n", "text/plain; version=0.0.4; charset=utf-8")


@asynccontextmanager
async def control_server(
    status: Callable[[], dict[str, Any]] = lambda: STATUS,
    metrics: MetricsFn | None = lambda: METRICS,
    **kwargs: Any,
) -> AsyncIterator[int]:
    """Run serve_control on 127.0.0.1:<free port> for the block; yield the port."""
    async with anyio.create_task_group() as tg:
        port = await tg.start(
            partial(serve_control, "127.0.0.1", 0, status=status, metrics=metrics, **kwargs)
        )
        try:
            yield port
        finally:
            tg.cancel_scope.cancel()


async def raw_request(port: int, data: bytes) -> bytes:
    """Send raw bytes, return everything the server sends until it closes."""
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(data)
        chunks: list[bytes] = []
        with anyio.fail_after(10):
            while True:
                try:
                    chunks.append(await stream.receive())
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    break
        return b"".join(chunks)


async def http_get(port: int, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    raw = await raw_request(port, f"{method} {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    assert status_line.startswith("HTTP/1.1 ")
    assert int(headers["content-length"]) == len(body)
    assert headers["connection"] == "close"
    return int(status_line.split(" ")[1]), headers, body


def closed_port() -> int:
    """A port that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- routes ---------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_status_renders_json_with_decimals_as_strings() -> None:
    async with control_server() as port:
        code, headers, body = await http_get(port, "/status")
    assert code == 200
    assert headers["content-type"] == "application/json"
    doc = json.loads(body)
    first = doc["profiles"][0]
    assert first["mid"] == "0.1234500"
    assert first["net_pnl"] == "-1.25"
    assert first["spread_bps"] == 42.5
    assert first["open_orders"] == 4
    assert doc["supervisor"]["pid"] == 4242


@pytest.mark.anyio
async def test_query_string_is_ignored() -> None:
    async with control_server() as port:
        code, _, _ = await http_get(port, "/status?verbose=1")
    assert code == 200


def test_render_status_json_edge_values() -> None:
    odd: dict[Any, Any] = {
        "tiny": Decimal("1E-7"),
        "nan": float("nan"),
        "tags": {"b", "a"},
        1: "int-key",
    }
    out = json.loads(render_status_json(odd))
    # Fixed-point, not "1E-7"; NaN becomes null so the document stays strict JSON.
    assert out == {"tiny": "0.0000001", "nan": None, "tags": ["a", "b"], "1": "int-key"}


@pytest.mark.anyio
async def test_metrics_body_and_content_type() -> None:
    async with control_server() as port:
        code, headers, body = await http_get(port, "/metrics")
    assert code == 200
    assert body == METRICS[0]
    assert headers["content-type"] == METRICS[1]


@pytest.mark.anyio
async def test_metrics_404_when_disabled() -> None:
    async with control_server(metrics=None) as port:
        code, _, _ = await http_get(port, "/metrics")
    assert code == 404


@pytest.mark.anyio
async def test_healthz() -> None:
    async with control_server() as port:
        code, headers, body = await http_get(port, "/healthz")
    assert (code, body) == (200, b"ok\n")
    assert headers["content-type"].startswith("text/plain")


@pytest.mark.anyio
async def test_unknown_path_404() -> None:
    async with control_server() as port:
        code, _, _ = await http_get(port, "/nope")
    assert code == 404


@pytest.mark.anyio
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "HEAD"])
async def test_non_get_405(method: str) -> None:
    async with control_server() as port:
        code, headers, _ = await http_get(port, "/status", method=method)
    assert code == 405
    assert headers["allow"] == "GET"


@pytest.mark.anyio
async def test_post_with_body_still_gets_405() -> None:
    async with control_server() as port:
        raw = await raw_request(
            port, b"POST /status HTTP/1.1\r\nContent-Length: 5000\r\n\r\n" + b"z" * 5000
        )
        assert raw.startswith(b"HTTP/1.1 405 ")
        assert (await http_get(port, "/healthz"))[0] == 200


@pytest.mark.anyio
@pytest.mark.parametrize("line", [b"GARBAGE", b"GET /status", b"GET /status SPDY/3"])
async def test_malformed_request_line_400(line: bytes) -> None:
    async with control_server() as port:
        raw = await raw_request(port, line + b"\r\n\r\n")
        assert raw.startswith(b"HTTP/1.1 400 ")
        assert (await http_get(port, "/healthz"))[0] == 200


@pytest.mark.anyio
async def test_bare_lf_request_is_accepted() -> None:
    async with control_server() as port:
        raw = await raw_request(port, b"GET /healthz HTTP/1.0\n\n")
    assert raw.startswith(b"HTTP/1.1 200 ")
    assert raw.endswith(b"\r\n\r\nok\n")


@pytest.mark.anyio
async def test_status_callback_failure_is_500_and_server_survives() -> None:
    calls = 0

    def flaky() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        return {"ok": True}

    async with control_server(status=flaky) as port:  # a failure is not kept
        assert (await http_get(port, "/status"))[0] == 500
        code, _, body = await http_get(port, "/status")
    assert (code, json.loads(body)) == (200, {"ok": True})


# --- hostile clients -------------------------------------------------------------------------


@pytest.mark.anyio
async def test_oversized_header_is_refused_and_server_keeps_serving() -> None:
    async with control_server() as port:
        big = b"GET /status HTTP/1.1\r\nX-Junk: " + b"a" * (4 * MAX_HEAD_BYTES) + b"\r\n\r\n"
        raw = await raw_request(port, big)
        # Either the 431 made it through or the connection was simply closed.
        assert raw == b"" or raw.startswith(b"HTTP/1.1 431 ")
        assert (await http_get(port, "/healthz"))[0] == 200


@pytest.mark.anyio
async def test_endless_header_without_terminator_is_cut_off() -> None:
    async with control_server() as port, await anyio.connect_tcp("127.0.0.1", port) as stream:
        # Never sends the blank line; the server must stop reading at the cap.
        with anyio.fail_after(10):
            try:
                for _ in range(64):
                    await stream.send(b"X-Junk: " + b"a" * 1000 + b"\r\n")
            except (anyio.BrokenResourceError, OSError):
                pass
            data = b""
            try:
                while chunk := await stream.receive():
                    data += chunk
            except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                pass
        assert data == b"" or data.startswith(b"HTTP/1.1 431 ")
        assert (await http_get(port, "/healthz"))[0] == 200


@pytest.mark.anyio
async def test_silent_client_does_not_block_others_and_times_out() -> None:
    async with (
        control_server(read_timeout=0.5) as port,
        await anyio.connect_tcp("127.0.0.1", port) as idle,
    ):
        # While the idle connection hangs, other clients are still served.
        assert (await http_get(port, "/healthz"))[0] == 200
        with anyio.fail_after(5):
            with pytest.raises(anyio.EndOfStream):
                await idle.receive()
        assert (await http_get(port, "/status"))[0] == 200


@pytest.mark.anyio
async def test_client_that_leaves_mid_request_is_harmless() -> None:
    async with control_server() as port:
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            await stream.send(b"GET /sta")
        async with await anyio.connect_tcp("127.0.0.1", port):
            pass  # connect and leave at once
        assert (await http_get(port, "/healthz"))[0] == 200


@pytest.mark.anyio
async def test_many_concurrent_clients() -> None:
    codes: list[int] = []

    async with control_server() as port:

        async def one() -> None:
            codes.append((await http_get(port, "/status"))[0])

        async with anyio.create_task_group() as tg:
            for _ in range(100):  # more than MAX_CONNECTIONS: the rest queue, none fail
                tg.start_soon(one)
    assert codes == [200] * 100


# --- binding ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("addr", "expected"),
    [
        ("127.0.0.1:9301", ("127.0.0.1", 9301)),
        ("localhost:80", ("localhost", 80)),
        ("[::1]:9301", ("::1", 9301)),
        ("  127.0.0.1:0  ", ("127.0.0.1", 0)),
        ("0.0.0.0:65535", ("0.0.0.0", 65535)),
    ],
)
def test_parse_addr_valid(addr: str, expected: tuple[str, int]) -> None:
    assert parse_addr(addr) == expected


@pytest.mark.parametrize(
    ("addr", "message"),
    [
        ("127.0.0.1", "expected HOST:PORT"),
        ("", "expected HOST:PORT"),
        (":9301", "missing or malformed host"),
        ("127.0.0.1:", "is not a number"),
        ("127.0.0.1:http", "is not a number"),
        ("127.0.0.1:+80", "is not a number"),
        ("127.0.0.1:65536", "out of range"),
        ("::1:9301", "brackets"),
        ("[::1]9301", "expected [IPV6]:PORT"),
        ("[::1:9301", "expected [IPV6]:PORT"),
        ("[nope]:9301", "not an IPv6 address"),
        ("my host:1", "missing or malformed host"),
    ],
)
def test_parse_addr_invalid(addr: str, message: str) -> None:
    with pytest.raises(ValueError, match="invalid address") as info:
        parse_addr(addr)
    assert message in str(info.value)
    assert repr(addr) in str(info.value)


@pytest.mark.anyio
@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.com", ""])
async def test_non_loopback_bind_is_refused(host: str) -> None:
    with pytest.raises(ValueError, match="non-loopback") as info:
        await serve_control(host, 0, status=lambda: {})
    assert repr(host) in str(info.value)


@pytest.mark.anyio
async def test_out_of_range_port_is_refused() -> None:
    with pytest.raises(ValueError, match="out of range"):
        await serve_control("127.0.0.1", 70000, status=lambda: {})


@pytest.mark.anyio
async def test_allow_remote_opts_in() -> None:
    async with anyio.create_task_group() as tg:
        port = await tg.start(
            partial(serve_control, "0.0.0.0", 0, status=lambda: {}, allow_remote=True)
        )
        assert (await http_get(port, "/healthz"))[0] == 200
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_localhost_name_is_loopback() -> None:
    async with anyio.create_task_group() as tg:
        port = await tg.start(partial(serve_control, "localhost", 0, status=lambda: {}))
        assert port > 0
        tg.cancel_scope.cancel()


# --- kasmm status ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_status_command_table(capsys: pytest.CaptureFixture[str]) -> None:
    async with control_server() as port:
        capsys.readouterr()  # drop the server's startup log line
        rc = await anyio.to_thread.run_sync(status_command, f"127.0.0.1:{port}", False)
    out, err = capsys.readouterr()
    assert (rc, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "supervisor pid=4242 uptime=1h02m03s profiles=2"
    assert lines[1].split() == [
        "PROFILE", "STATE", "MODE", "MID", "BID", "ASK", "SPREAD_BPS", "INVENTORY", "OPEN",
        "FILLS", "PNL", "WHY", "LAST_ERROR",
    ]  # fmt: skip
    full = lines[2].split()
    # Without a tick, prices at 10^-4 of their level (0.12345: tick 0.00001), money to cents.
    assert full[:11] == [
        "kas-usdt-mexc",
        "running",
        "live",
        "0.12345",
        "-",
        "-",
        "-",
        "1500",
        "4",
        "-",
        "-1.25",
    ]
    error_cell = lines[2][lines[1].index("LAST_ERROR") :]
    assert error_cell.startswith("venue said: xxx") and error_cell.endswith("...")
    assert len(error_cell) == 60
    assert lines[3].split() == ["kas-btc-sim", "starting"] + ["-"] * 11
    assert len(lines) == 4


@pytest.mark.anyio
async def test_status_command_json(capsys: pytest.CaptureFixture[str]) -> None:
    async with control_server() as port:
        capsys.readouterr()
        rc = await anyio.to_thread.run_sync(status_command, f"127.0.0.1:{port}", True)
    out, err = capsys.readouterr()
    assert (rc, err) == (0, "")
    doc = json.loads(out)
    assert doc == json.loads(render_status_json(STATUS))
    assert doc["profiles"][0]["last_error"] == LONG_ERROR  # JSON is never truncated


@pytest.mark.anyio
async def test_status_command_http_error(capsys: pytest.CaptureFixture[str]) -> None:
    def broken() -> dict[str, Any]:
        raise RuntimeError("boom")

    async with control_server(status=broken) as port:
        capsys.readouterr()
        rc = await anyio.to_thread.run_sync(status_command, f"127.0.0.1:{port}", False)
    _, err = capsys.readouterr()
    assert rc == 1
    assert (
        err.strip()
        == f"kasmm status: supervisor at 127.0.0.1:{port} answered HTTP 500 Internal Server Error"
    )


def test_status_command_unreachable(capsys: pytest.CaptureFixture[str]) -> None:
    addr = f"127.0.0.1:{closed_port()}"
    assert status_command(addr, False) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"kasmm status: cannot reach supervisor at {addr}: Connection refused\n"


def test_status_command_bad_address(capsys: pytest.CaptureFixture[str]) -> None:
    assert status_command("nonsense", True) == 2
    assert "invalid address 'nonsense'" in capsys.readouterr().err


def test_render_table_sanitises_cells() -> None:
    table = render_table(
        {
            "profiles": [
                {"name": "p", "last_error": "line one\nline two\x1b[31m red", "mid": 0.1 + 0.2},
                "not-a-dict",
            ]
        }
    )
    lines = table.splitlines()
    assert lines[0] == "supervisor pid=- uptime=- profiles=-"
    assert len(lines) == 4  # summary, header, two rows: newlines never split a row
    assert "line one line two [31m red" in lines[2]
    assert "0.30000" in lines[2].split()  # 0.1 + 0.2 at its precision, not 0.30000000000000004
    assert "\x1b" not in table
    assert lines[3].split() == ["-"] * 13


def test_render_table_says_why_a_profile_does_not_quote_and_what_is_unhealthy() -> None:
    table = render_table(
        {
            "supervisor": {"healthy": False, "health": "failed profiles: b", "ledger_lost": False},
            "profiles": [
                {"name": "a", "state": "quoting", "idle_reason": "no_size"},
                {"name": "b", "state": "halted", "halt_reason": "max_drawdown: 6 > 5"},
            ],
        }
    )
    lines = table.splitlines()
    assert lines[0].endswith("UNHEALTHY: failed profiles: b")
    why = lines[1].index("WHY")
    assert lines[2][why:].startswith("no_size")
    assert lines[3][why:].startswith("max_drawdown: 6 > 5")


def test_render_table_shows_own_quotes_rounded_money_disabled_profiles_and_config_errors() -> None:
    table = render_table(
        {
            "supervisor": {"profiles_total": 2, "config_errors": ["/p/x.yaml:3:5: x: bad"]},
            "profiles": [
                {
                    "name": "a",
                    "state": "paused",
                    "paused_by": "alice",
                    "mid": "0.0800125",
                    "own_bid": "0.079900",
                    "own_ask": "0.080100",
                    "own_spread_bps": 25.0,
                    "tick": "0.000001",
                    "lot": "0.01",
                    "inventory_base": "51334.0800000000",
                    "fills": 3,
                    "pnl": {"net": "5.920788990000000000000000772", "fees": "0E-7"},
                },
                {"name": "b", "state": "disabled", "file": "/p/b.yaml"},
            ],
        }
    )
    lines = table.splitlines()
    assert lines[2].split()[:11] == [
        "a", "paused", "-", "0.080012", "0.079900", "0.080100", "25.0", "51334.08", "-", "3",
        "+5.92",
    ]  # fmt: skip
    assert lines[2][lines[1].index("WHY") :].startswith("paused by alice")
    assert lines[3].split() == ["b", "disabled"] + ["-"] * 11
    assert lines[4:] == [
        "",
        "config errors (1; the last good version of each keeps running):",
        "  /p/x.yaml:3:5: x: bad",
    ]


def test_status_watch_reprints_plainly_into_a_pipe_until_ctrl_c() -> None:
    import signal
    import subprocess
    import sys

    with _static_status_server() as addr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kasmm", "status", "--addr", addr, "--watch", "0.1"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        seen = 0
        for line in proc.stdout:
            seen += line.startswith("supervisor pid=4242")
            if seen == 2:
                break
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=10)
    assert seen == 2 and proc.returncode == 0
    assert "\x1b" not in rest  # not a terminal: no screen clearing


@contextlib.contextmanager
def _static_status_server() -> Iterator[str]:
    """A thread serving STATUS on /status (the watch loop is a blocking subprocess)."""
    import http.server
    import threading

    body = render_status_json(STATUS)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# --- health, connection bounds and log flooding (issue 13, items 8, 17) ----------------------


def control_warnings(logs: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [e for e in logs if e["log_level"] == "warning"]


@pytest.mark.anyio
async def test_healthz_is_503_with_the_reason_while_unhealthy() -> None:
    verdict = (False, "profile p1 failed: venue said no\nsecond line")
    async with control_server(health=lambda: verdict) as port:
        code, headers, body = await http_get(port, "/healthz")
        assert code == 503
        assert headers["content-type"].startswith("text/plain")
        # One line: a multi-line reason must not turn into extra lines for a probe's log.
        assert body == b"profile p1 failed: venue said no second line\n"
        verdict = (True, "")
        assert (await http_get(port, "/healthz"))[:3:2] == (200, b"ok\n")
        verdict = (True, "ok; warning: profile directory is missing")
        assert (await http_get(port, "/healthz"))[:3:2] == (
            200,
            b"ok; warning: profile directory is missing\n",
        )


@pytest.mark.anyio
async def test_failing_health_check_is_an_error_not_a_crash() -> None:
    def broken() -> tuple[bool, str]:
        raise RuntimeError("boom")

    async with control_server(health=broken) as port:
        code, _, body = await http_get(port, "/healthz")
        assert (code, body) == (500, b"internal error\n")
        assert (await http_get(port, "/status"))[0] == 200


@pytest.mark.anyio
async def test_idle_sockets_neither_delay_healthz_nor_flood_the_log() -> None:
    """500 clients that connect and send nothing: /healthz still answers at once (issue 13.17).

    Before: at most 64 connections were served and each idle one held its slot for 5 s, so a
    health check waited behind the whole queue (9.5 s measured), and every idle client logged
    its own warning.
    """
    with structlog.testing.capture_logs() as logs:
        async with control_server() as port, contextlib.AsyncExitStack() as idle:
            with anyio.fail_after(30):
                for _ in range(500):
                    await idle.enter_async_context(await anyio.connect_tcp("127.0.0.1", port))
            began = time.perf_counter()
            with anyio.fail_after(10):
                code, _, body = await http_get(port, "/healthz")
            elapsed = time.perf_counter() - began
    assert (code, body) == (200, b"ok\n")
    assert elapsed < 1.0, f"/healthz took {elapsed:.2f} s behind 500 idle sockets"
    warnings = control_warnings(logs)
    assert 1 <= len(warnings) <= 5, warnings


@pytest.mark.anyio
async def test_when_full_the_idle_connection_goes_and_the_busy_one_is_answered() -> None:
    """At the cap a newcomer evicts a connection waiting on its client, never one being served."""
    release = anyio.Event()
    rendering = anyio.Event()

    async def slow_metrics() -> tuple[bytes, str]:
        rendering.set()
        await release.wait()
        return METRICS

    busy_reply: list[tuple[int, dict[str, str], bytes]] = []
    with structlog.testing.capture_logs() as logs:
        async with (
            control_server(metrics=slow_metrics, max_connections=2) as port,
            anyio.create_task_group() as tg,
        ):

            async def busy() -> None:
                busy_reply.append(await http_get(port, "/metrics"))

            tg.start_soon(busy)
            with anyio.fail_after(5):
                await rendering.wait()
            async with await anyio.connect_tcp("127.0.0.1", port) as idle:
                # The cap is reached; the next client evicts the idle one, not the busy one.
                with anyio.fail_after(5):
                    assert (await http_get(port, "/healthz"))[0] == 200
                    with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                        await idle.receive()
            release.set()
    assert [r[0] for r in busy_reply] == [200]
    assert busy_reply[0][2] == METRICS[0]
    assert [e["reason"] for e in control_warnings(logs)] == ["evicted"]


@pytest.mark.anyio
async def test_a_slow_reader_gets_the_whole_of_a_large_body() -> None:
    """A body many times the kernel's socket buffers, sent in pieces to a client that reads
    slower than the server writes, arrives whole before the server closes."""
    body = bytes(range(256)) * (16 * 4096)  # 16 MB: more than the kernel's socket buffers

    async def large() -> tuple[list[bytes], str]:
        return [body[i : i + 300_000] for i in range(0, len(body), 300_000)], "text/plain"

    async with (
        control_server(metrics=large) as port,
        await anyio.connect_tcp("127.0.0.1", port) as stream,
    ):
        await stream.send(b"GET /metrics HTTP/1.1\r\n\r\n")
        received = bytearray()
        with anyio.fail_after(30):
            while True:
                try:
                    received += await stream.receive(64 * 1024)
                except anyio.EndOfStream:
                    break
                await anyio.sleep(0.002)  # slower than the server writes
    head, _, got = bytes(received).partition(b"\r\n\r\n")
    assert f"Content-Length: {len(body)}\r\n".encode() in head
    assert len(got) == len(body) and got == body


@pytest.mark.anyio
async def test_status_is_computed_at_most_once_per_max_age() -> None:
    """status() walks every profile on the loop: clients asking in a loop share one answer."""
    calls = 0

    def counted() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        return {"n": calls}

    async with control_server(status=counted, status_max_age_s=60) as port:
        bodies = [json.loads((await http_get(port, "/status"))[2]) for _ in range(5)]
    assert calls == 1 and bodies == [{"n": 1}] * 5
    async with control_server(status=counted, status_max_age_s=0) as port:
        assert json.loads((await http_get(port, "/status"))[2]) == {"n": 2}
        assert json.loads((await http_get(port, "/status"))[2]) == {"n": 3}
