"""The sd_notify sender: datagrams on a fake NOTIFY_SOCKET, no-op outside systemd, watchdog."""

from __future__ import annotations

import itertools
import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
import structlog

from kasmm.obs.notify import (
    Notifier,
    monotonic_usec,
    status_line,
    watchdog_interval,
    watchdog_task,
)


class FakeSystemd:
    """A bound AF_UNIX datagram socket standing in for systemd's notification socket.

    A thread receives, so arrival times are real even while the test's event loop is blocked.
    """

    def __init__(self, env_value: str, address: str | bytes) -> None:
        self.env_value = env_value
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(0.05)
        self.received: list[tuple[float, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            fields = dict(line.split("=", 1) for line in data.decode().split("\n"))
            with self._lock:
                self.received.append((time.monotonic(), fields))

    def messages(self) -> list[dict[str, str]]:
        with self._lock:
            return [fields for _, fields in self.received]

    def timed(self) -> list[tuple[float, dict[str, str]]]:
        with self._lock:
            return list(self.received)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict[str, str]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.messages()) >= count:
                return self.messages()
            time.sleep(0.01)
        raise AssertionError(f"expected {count} datagrams, got {self.messages()}")

    def notifier(self) -> Notifier:
        return Notifier.from_env({"NOTIFY_SOCKET": self.env_value})

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


def short_socket_path(tmp_path: Path) -> Path:
    """``tmp_path/notify.sock``, unless that is too long for sun_path (108 bytes)."""
    path = tmp_path / "notify.sock"
    if len(os.fsencode(path)) < 100:
        return path
    return Path(tempfile.mkdtemp(prefix="kasmm-")) / "notify.sock"  # pragma: no cover


@pytest.fixture(params=["path", "abstract"])
def systemd(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FakeSystemd]:
    if request.param == "path":
        path = short_socket_path(tmp_path)
        fake = FakeSystemd(str(path), str(path))
    else:
        name = f"kasmm-test-{os.getpid()}-{time.monotonic_ns()}"
        fake = FakeSystemd(f"@{name}", b"\0" + name.encode())
    yield fake
    fake.close()


# --- without systemd ------------------------------------------------------------------------


def test_without_notify_socket_everything_is_a_no_op() -> None:
    notifier = Notifier.from_env({})
    assert not notifier.enabled
    assert notifier.ready("x") is False
    assert notifier.reloading() is False
    assert notifier.stopping() is False
    assert notifier.watchdog() is False
    assert notifier.status("x") is False
    with notifier.reload(lambda: "x"):
        pass


def test_from_env_reads_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert not Notifier.from_env().enabled
    monkeypatch.setenv("NOTIFY_SOCKET", "/run/systemd/notify")
    assert Notifier.from_env().address == b"/run/systemd/notify"
    monkeypatch.setenv("NOTIFY_SOCKET", "@abstract/name")
    assert Notifier.from_env().address == b"\0abstract/name"


def test_an_unsupported_address_is_a_no_op_with_a_warning() -> None:
    with structlog.testing.capture_logs() as logs:
        notifier = Notifier.from_env({"NOTIFY_SOCKET": "vsock:2:1234"})
    assert not notifier.enabled
    assert notifier.ready() is False
    assert [e["event"] for e in logs] == ["notify_socket_unsupported"]


# --- the messages ---------------------------------------------------------------------------


def test_ready_status_stopping_watchdog(systemd: FakeSystemd) -> None:
    notifier = systemd.notifier()
    assert notifier.enabled
    assert notifier.ready("2 profiles: 2 quoting, 0 halted, 0 failed")
    assert notifier.status("line one\nline two")
    assert notifier.watchdog()
    assert notifier.stopping("stopping")
    assert systemd.wait_for(4) == [
        {"READY": "1", "STATUS": "2 profiles: 2 quoting, 0 halted, 0 failed"},
        {"STATUS": "line one line two"},  # STATUS= is one line
        {"WATCHDOG": "1"},
        {"STOPPING": "1", "STATUS": "stopping"},
    ]


def test_reload_sends_reloading_with_monotonic_usec_then_ready(systemd: FakeSystemd) -> None:
    notifier = systemd.notifier()
    notifier.ready()
    before = monotonic_usec()
    with notifier.reload(lambda: "reloaded"):
        pass
    after = monotonic_usec()
    ready, reloading, ready_again = systemd.wait_for(3)
    assert ready == {"READY": "1"}
    assert reloading.keys() == {"RELOADING", "MONOTONIC_USEC"}
    assert reloading["RELOADING"] == "1"
    assert before <= int(reloading["MONOTONIC_USEC"]) <= after
    # CLOCK_MONOTONIC, in microseconds: what systemd compares it with.
    assert abs(int(reloading["MONOTONIC_USEC"]) - time.monotonic_ns() // 1000) < 5_000_000
    assert ready_again == {"READY": "1", "STATUS": "reloaded"}


def test_reload_sends_ready_even_when_the_reload_fails(systemd: FakeSystemd) -> None:
    notifier = systemd.notifier()
    notifier.ready()

    def broken_status() -> str:
        raise RuntimeError("no status")

    with pytest.raises(ValueError), notifier.reload(broken_status):
        raise ValueError("reload failed")
    messages = systemd.wait_for(3)
    assert [set(m) for m in messages] == [
        {"READY"},
        {"RELOADING", "MONOTONIC_USEC"},
        {"READY"},
    ]


def test_a_reload_before_ready_sends_nothing(systemd: FakeSystemd) -> None:
    notifier = systemd.notifier()
    with notifier.reload(lambda: "x"):
        pass
    notifier.ready()
    assert systemd.wait_for(1) == [{"READY": "1"}]
    time.sleep(0.1)
    assert systemd.messages() == [{"READY": "1"}]


def test_socket_errors_never_raise_and_warn_once(tmp_path: Path) -> None:
    notifier = Notifier.from_env({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens.sock")})
    assert notifier.enabled
    with structlog.testing.capture_logs() as logs:
        assert notifier.ready("x") is False
        assert notifier.watchdog() is False
        assert notifier.stopping() is False
    assert [e["event"] for e in logs] == ["notify_failed"]
    assert logs[0]["log_level"] == "warning"


def test_a_full_receive_queue_drops_instead_of_blocking(tmp_path: Path) -> None:
    path = short_socket_path(tmp_path)
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(path))
    notifier = Notifier.from_env({"NOTIFY_SOCKET": str(path)})
    started = time.monotonic()
    with structlog.testing.capture_logs() as logs:
        results = [notifier.status("x" * 300) for _ in range(5000)]  # nobody reads
    receiver.close()
    assert time.monotonic() - started < 5
    assert results[0] is True and results[-1] is False
    assert [e["event"] for e in logs] == ["notify_failed"]


# --- the watchdog ---------------------------------------------------------------------------


def test_watchdog_interval_is_half_watchdog_usec() -> None:
    assert watchdog_interval({}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}) == (
        15.0
    )
    # Meant for another process (a parent that did not unset them): not ours.
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "soon"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "1000", "WATCHDOG_PID": "me"}) is None


@pytest.mark.anyio
async def test_watchdog_task_returns_at_once_without_systemd() -> None:
    with anyio.fail_after(1):
        await watchdog_task(Notifier(None), lambda: "x", environ={"WATCHDOG_USEC": "1000"})


@pytest.mark.anyio
async def test_watchdog_task_refreshes_status_only_when_it_changes(
    systemd: FakeSystemd,
) -> None:
    states = iter(["1 profile: 0 quoting", "1 profile: 0 quoting", "1 profile: 1 quoting"])
    last = ["1 profile: 1 quoting"]

    def status() -> str:
        last[0] = next(states, last[0])
        return last[0]

    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: watchdog_task(systemd.notifier(), status, status_interval=0.05))
        await anyio.to_thread.run_sync(lambda: systemd.wait_for(2))
        await anyio.sleep(0.2)
        tg.cancel_scope.cancel()
    # No watchdog asked for (no WATCHDOG_USEC): STATUS= lines only, each change once.
    assert systemd.messages() == [
        {"STATUS": "1 profile: 0 quoting"},
        {"STATUS": "1 profile: 1 quoting"},
    ]


@pytest.mark.anyio
async def test_watchdog_pings_stop_while_the_event_loop_is_blocked(
    systemd: FakeSystemd,
) -> None:
    environ = {"WATCHDOG_USEC": "100000", "WATCHDOG_PID": str(os.getpid())}  # ping every 50 ms
    notifier = systemd.notifier()
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: watchdog_task(notifier, lambda: "ok", environ=environ))
        await anyio.to_thread.run_sync(lambda: systemd.wait_for(3))
        block_start = time.monotonic()
        time.sleep(1.0)  # noqa: ASYNC251  (the point: block the loop, so no ping is sent)
        block_end = time.monotonic()
        await anyio.to_thread.run_sync(lambda: systemd.wait_for(len(systemd.messages()) + 3))
        tg.cancel_scope.cancel()
    timed = systemd.timed()
    assert all(fields.get("WATCHDOG") == "1" for _, fields in timed)
    assert timed[0][1] == {"WATCHDOG": "1", "STATUS": "ok"}
    # (a ping sent just before the block may be received a little into it)
    during = [t for t, _ in timed if block_start + 0.2 < t < block_end]
    assert during == [], f"pings while the loop was blocked: {during}"
    after = [t for t, _ in timed if t >= block_end]
    assert len(after) >= 3  # the pings resumed
    before = [t for t, _ in timed if t <= block_start]
    gaps = [b - a for a, b in itertools.pairwise(before)]
    assert gaps and max(gaps) < 0.3  # every 50 ms (half the interval) while healthy


# --- the status line ------------------------------------------------------------------------


def _status(*states: str, errors: int = 0, shard: str | None = None) -> dict[str, object]:
    return {
        "supervisor": {"config_errors": ["e"] * errors, "shard": shard},
        "profiles": [{"name": f"p{i}", "state": s} for i, s in enumerate(states)],
    }


def test_status_line_counts_profiles_by_state() -> None:
    assert status_line(_status()) == "0 profiles: 0 quoting, 0 halted, 0 failed"
    assert status_line(_status("quoting")) == "1 profile: 1 quoting, 0 halted, 0 failed"
    assert (
        status_line(_status("quoting", "halted", "quoting", "restarting", "reduce_only"))
        == "5 profiles: 2 quoting, 1 halted, 0 failed, 1 reduce_only, 1 restarting"
    )
    assert (
        status_line(_status("failed", errors=2, shard="1/4"))
        == "shard 1/4: 1 profile: 0 quoting, 0 halted, 1 failed; 2 config errors"
    )
    assert status_line(_status(errors=1)).endswith("; 1 config error")
