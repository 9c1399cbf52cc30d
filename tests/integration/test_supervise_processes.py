"""`kasmm supervise DIR --processes N` as real processes on the simulated venue (loopback only).

One parent, N children (`--shard i/N` each): one /status and /metrics for all, systemd's
notifications from the parent only, signals forwarded, a killed child restarted, children that
die with the parent, and a directory no second supervisor can take. The last tests drive the
parent in-process with stand-in children, for the exits no real shard can be made to produce.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from kasmm.commands.status import fetch_status
from kasmm.daemon import exit_codes
from kasmm.fleet.outcome import Backoff
from kasmm.fleet.parent import Fleet, FleetConfig
from kasmm.fleet.shard import free_loopback_port
from kasmm.obs.notify import Notifier
from kasmm.shard import shard_of
from tests.integration.test_supervise_process import LATENCY_MS
from tests.integration.test_supervise_systemd import Run
from tests.integration.test_supervisor import profile_yaml, write
from tests.support import wait_until
from tests.unit.test_fleet import check_with_promtool

pytestmark = pytest.mark.timeout(120)


def profiles_dir(tmp_path: Path, count: int, n: int, *, latency_ms: int = 0) -> Path:
    """``count`` sim profiles whose names land in every one of ``n`` shards."""
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    names = [f"p{i}" for i in range(count)]
    assert {shard_of(name, n) for name in names} == set(range(n))
    for i, name in enumerate(names):
        text = profile_yaml(name, calm=False, seed=i + 1)
        if latency_ms:
            text = text.replace(f"seed: {i + 1}", f"seed: {i + 1}\n  latency_ms: {latency_ms}")
        write(profiles, name, text)
    return profiles


def status_of(addr: str) -> dict[str, Any] | None:
    try:
        return fetch_status(addr, timeout=2.0)
    except Exception:
        return None


def all_quoting(addr: str, names: set[str]) -> dict[str, Any] | None:
    """The parent's status once every shard is up and every profile quotes, else None."""
    doc = status_of(addr)
    if doc is None or not all(s["state"] == "up" for s in doc["shards"]):
        return None
    rows = {r["name"]: r for r in doc["profiles"]}
    if set(rows) != names or any(r["state"] != "quoting" for r in rows.values()):
        return None
    return doc


def wait_quoting(addr: str, names: set[str], within_s: float = 60) -> dict[str, Any]:
    """Wait until :func:`all_quoting`; return that status."""
    doc = wait_until(lambda: all_quoting(addr, names), within_s=within_s, what="all quoting")
    assert doc is not None
    return doc


def fetch_metrics(addr: str) -> bytes:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://{addr}/metrics", timeout=20) as response:
        body: bytes = response.read()
    return body


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its reaper counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def child_pids(doc: dict[str, Any]) -> list[int]:
    return [s["pid"] for s in doc["shards"]]


class Parent:
    """A `kasmm supervise --processes N` process with its endpoint on a free loopback port."""

    def __init__(self, tmp_path: Path, profiles: Path, n: int, tag: str = "fleet") -> None:
        self.addr = f"127.0.0.1:{free_loopback_port()}"
        self.run = Run(tmp_path, profiles, tag, "--processes", str(n), "--metrics-addr", self.addr)
        self.sup = self.run.sup
        self.proc = self.sup.proc

    def events(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.sup.events() if e["event"] == name]

    def close(self) -> None:
        self.run.close()


@pytest.fixture
def parents() -> Iterator[list[Parent]]:
    made: list[Parent] = []
    yield made
    for parent in made:
        pids = [e["pid"] for e in parent.events("shard_started")]
        parent.close()
        for pid in pids:  # a failed test must not leave shards trading
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_one_address_for_every_shard_and_a_clean_stop(
    tmp_path: Path, parents: list[Parent]
) -> None:
    names = {f"p{i}" for i in range(6)}
    profiles = profiles_dir(tmp_path, 6, 3)
    parent = Parent(tmp_path, profiles, 3)
    parents.append(parent)

    # READY=1 only once every shard is up (and so every profile quotes).
    ready = parent.run.wait_message("READY", timeout=60)
    assert parent.run.systemd.messages()[ready]["STATUS"] == (
        "3/3 shards up; 6 profiles: 6 quoting, 0 halted, 0 failed"
    )
    doc = wait_quoting(parent.addr, names, 30)
    assert {r["name"]: r["shard"] for r in doc["profiles"]} == {
        name: f"{shard_of(name, 3)}/3" for name in names
    }
    assert doc["supervisor"]["pid"] == parent.proc.pid and doc["supervisor"]["healthy"]
    pids = child_pids(doc)
    assert len(set(pids)) == 3 and parent.proc.pid not in pids
    for pid in pids:
        # Only the parent talks to systemd; the children's ports are private loopback ones.
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        assert not any(v.startswith((b"NOTIFY_SOCKET=", b"WATCHDOG_")) for v in environ)

    # `kasmm status` works unchanged against the parent.
    table = subprocess.run(
        [sys.executable, "-m", "kasmm", "status", "--addr", parent.addr],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert table.returncode == 0, table.stderr
    rows = [line.split()[0] for line in table.stdout.splitlines()[2:]]
    assert rows == sorted(names)

    # /metrics: one valid exposition with every shard's samples.
    body = fetch_metrics(parent.addr)
    check_with_promtool(body)
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    up = {s.labels["shard"]: s.value for s in families["kasmm_shard_up"].samples}
    assert up == {"0": 1.0, "1": 1.0, "2": 1.0}
    quoting = {
        s.labels["profile"]: s.labels["shard"]
        for s in families["kasmm_profile_state"].samples
        if s.labels["state"] == "quoting" and s.value == 1.0
    }
    assert quoting == {name: str(shard_of(name, 3)) for name in names}
    assert {s.labels["shard"] for s in families["process_cpu_seconds"].samples} == {"0", "1", "2"}

    # SIGHUP is forwarded: every shard reloads, and systemd sees RELOADING=1 then READY=1.
    parent.proc.send_signal(signal.SIGHUP)
    reloading = parent.run.wait_message("RELOADING", after=ready + 1)
    parent.run.wait_message("READY", after=reloading + 1)
    assert parent.events("reload_forwarded")[-1]["shards"] == ["0/3", "1/3", "2/3"]
    wait_until(lambda: len(parent.events("profiles_reloaded")) == 3, what="3 shards reloaded")

    # SIGTERM: forwarded, every profile cancels its orders, the parent waits and exits 0.
    parent.proc.send_signal(signal.SIGTERM)
    parent.run.wait_message("STOPPING", after=reloading + 1)
    assert parent.proc.wait(timeout=60) == exit_codes.OK
    stopped = parent.events("bot_stopped")
    assert sorted(e["profile"] for e in stopped) == sorted(names)
    assert all(e["orders_left"] == 0 for e in stopped)
    assert [e["exit_code"] for e in parent.events("supervisor_stopped")] == [0, 0, 0]
    assert parent.events("fleet_stopped")[-1]["exit_code"] == 0
    assert not any(alive(pid) for pid in pids)
    assert "Traceback" not in parent.sup.log_path.read_text()


def test_a_killed_shard_is_restarted_and_its_profiles_come_back(
    tmp_path: Path, parents: list[Parent]
) -> None:
    names = {f"p{i}" for i in range(4)}
    parent = Parent(tmp_path, profiles_dir(tmp_path, 4, 2), 2)
    parents.append(parent)
    doc = wait_quoting(parent.addr, names, 60)
    victim = doc["shards"][1]
    os.kill(victim["pid"], signal.SIGKILL)

    crashed = wait_until(lambda: parent.events("shard_crashed"), what="shard_crashed")
    assert crashed[0]["shard"] == "1/2" and crashed[0]["exit_code"] == -signal.SIGKILL

    def back() -> dict[str, Any] | None:
        now = all_quoting(parent.addr, names)
        return now if now is not None and now["shards"][1]["pid"] != victim["pid"] else None

    after = wait_until(back, within_s=60, what="shard 1/2 back")
    assert after is not None
    assert after["shards"][1]["restarts"] == 1 and after["shards"][0]["restarts"] == 0
    assert after["shards"][0]["pid"] == doc["shards"][0]["pid"]  # the other shard untouched
    parent.proc.send_signal(signal.SIGTERM)
    assert parent.proc.wait(timeout=60) == exit_codes.OK


def test_the_shards_stop_when_the_parent_is_killed(tmp_path: Path, parents: list[Parent]) -> None:
    names = {f"p{i}" for i in range(4)}
    parent = Parent(tmp_path, profiles_dir(tmp_path, 4, 2), 2)
    parents.append(parent)
    doc = wait_quoting(parent.addr, names, 60)
    pids = child_pids(doc)
    parent.proc.kill()
    parent.proc.wait(timeout=10)
    wait_until(lambda: not any(alive(pid) for pid in pids), within_s=30, what="children gone")
    # They stopped as on SIGTERM (the kernel's parent-death signal): orders cancelled.
    stopped = parent.events("bot_stopped")
    assert sorted(e["profile"] for e in stopped) == sorted(names)
    assert all(e["orders_left"] == 0 for e in stopped)


def test_no_second_supervisor_may_take_the_directory(tmp_path: Path, parents: list[Parent]) -> None:
    profiles = profiles_dir(tmp_path, 4, 2)
    parent = Parent(tmp_path, profiles, 2)
    parents.append(parent)
    doc = wait_quoting(parent.addr, {f"p{i}" for i in range(4)})
    for extra in ([], ["--shard", "0/2"], ["--shard", "1/3"], ["--processes", "2"]):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "kasmm",
                "supervise",
                str(profiles),
                "--state-dir",
                str(profiles / "state"),
                "--metrics-addr",
                "",
                *extra,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 75, (extra, done.stderr)
        if "--shard" in extra:
            # Refused by whichever overlapping lock it finds first: the parent's or a child's.
            holders = [parent.proc.pid, *child_pids(doc)]
            assert any(f"in use by PID {pid} (kasmm supervise" in done.stderr for pid in holders)
        else:
            expected = f"PID {parent.proc.pid} (kasmm supervise {profiles} --processes 2)"
            assert expected in done.stderr, (extra, done.stderr)
    parent.proc.send_signal(signal.SIGTERM)
    assert parent.proc.wait(timeout=60) == exit_codes.OK


def test_a_second_stop_signal_is_forwarded_and_forces_every_process(
    tmp_path: Path, parents: list[Parent]
) -> None:
    """With a slow venue each shard's stop takes seconds: time for a second SIGTERM."""
    names = {f"p{i}" for i in range(4)}
    parent = Parent(tmp_path, profiles_dir(tmp_path, 4, 2, latency_ms=LATENCY_MS), 2)
    parents.append(parent)
    doc = wait_quoting(parent.addr, names, 90)
    pids = child_pids(doc)
    parent.proc.send_signal(signal.SIGTERM)
    wait_until(lambda: len(parent.events("shutdown_requested")) == 3, what="all stopping")
    parent.proc.send_signal(signal.SIGTERM)
    assert parent.proc.wait(timeout=30) == 143
    wait_until(lambda: not any(alive(pid) for pid in pids), within_s=30, what="children gone")
    forced = parent.events("forced_exit")
    assert len(forced) == 3 and {e["exit_code"] for e in forced} == {143}
    assert not parent.events("fleet_stopped")


# --- the parent with stand-in children -------------------------------------------------------

#: A child that runs until SIGTERM, then exits 0 (it never answers /status: always "starting").
SLEEPER = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))\n"
    "time.sleep(120)\n"
)


class StandIns(FleetConfig):
    """A fleet whose shard ``i`` runs ``scripts[i]`` instead of kasmm."""

    scripts: tuple[str, ...] = ()

    def command(self, index: int, control: str) -> list[str]:
        return [sys.executable, "-c", self.scripts[index]]


def stand_in_fleet(tmp_path: Path, *scripts: str) -> Fleet:
    config = StandIns(tmp_path, tmp_path / "state", len(scripts), None)
    object.__setattr__(config, "scripts", scripts)
    fleet = Fleet(config, Notifier(None))
    for shard in fleet.shards:
        shard.backoff = Backoff(base=0.01, cap=0.05)
    return fleet


@pytest.mark.anyio
@pytest.mark.parametrize("code", [75, exit_codes.USAGE, exit_codes.LEDGER_LOST])
async def test_a_shard_exit_no_restart_can_help_stops_the_fleet_with_it(
    tmp_path: Path, code: int
) -> None:
    fleet = stand_in_fleet(tmp_path, SLEEPER, f"import sys; sys.exit({code})")
    with anyio.fail_after(30):
        assert await fleet.run() == code
    assert [s.outcome for s in fleet.shards] == [exit_codes.OK, code]
    assert [s.restarts for s in fleet.shards] == [0, 0]


@pytest.mark.anyio
async def test_a_crashing_shard_is_restarted_with_backoff_until_the_stop(tmp_path: Path) -> None:
    fleet = stand_in_fleet(tmp_path, SLEEPER, "import os; os.abort()")
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: _stop_after_restarts(fleet, 3))
            code = await fleet.run()
    crashing = fleet.shards[1]
    assert crashing.restarts >= 3 and crashing.last_exit == -signal.SIGABRT
    # Down after a crash when the stop came, or killed by our SIGTERM before its handlers:
    # either may have left orders, and the exit status says so.
    assert crashing.outcome in (exit_codes.ORDERS_LEFT, exit_codes.OK)
    assert code == crashing.outcome and fleet.shards[0].outcome == exit_codes.OK
    status = fleet.status()
    assert [s["restarts"] for s in status["shards"]] == [0, crashing.restarts]
    assert status["supervisor"]["healthy"] is False


async def _stop_after_restarts(fleet: Fleet, restarts: int, index: int = 1) -> None:
    while fleet.shards[index].restarts < restarts:
        await fleet.shards[index].polled()
    fleet.stop(signal.SIGTERM, reason="test")


#: A child that answers /status once, then never again (its event loop "hangs").
ANSWERS_ONCE = """
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
server = socket.create_server((host, int(port)))
client, _ = server.accept()
client.recv(65536)
body = b'{"supervisor": {"healthy": true}, "profiles": []}'
client.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: %d\\r\\n\\r\\n%s" % (len(body), body))
client.close()
time.sleep(120)
"""


class Hangs(FleetConfig):
    def command(self, index: int, control: str) -> list[str]:
        return [sys.executable, "-c", ANSWERS_ONCE, control]


@pytest.mark.anyio
async def test_a_shard_that_stops_answering_is_killed_and_restarted(tmp_path: Path) -> None:
    fleet = Fleet(Hangs(tmp_path, tmp_path / "state", 1, None), Notifier(None))
    shard = fleet.shards[0]
    shard.hang_kill_s = 0.1
    shard.backoff = Backoff(base=0.01, cap=0.05)
    with anyio.fail_after(60), capture_logs() as logs:
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: _stop_after_restarts(fleet, 1, index=0))
            await fleet.run()
    events = {e["event"]: e for e in logs}
    assert {"shard_ready", "shard_unresponsive", "shard_hung"} <= set(events)
    assert events["shard_crashed"]["exit_code"] == -signal.SIGABRT and shard.restarts >= 1
