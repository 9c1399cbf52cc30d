"""The pure parts of ``kasmm supervise --processes N``: merging the shards' expositions and status
documents, exit-status aggregation, the restart backoff, the arguments, the directory lock that
lets only the parent's own children in, and the parent's HTTP client."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from kasmm.cli import main
from kasmm.commands.status import render_table
from kasmm.control import serve_control
from kasmm.daemon import exit_codes
from kasmm.fleet.http import FetchError, http_get
from kasmm.fleet.outcome import Backoff, fleet_exit_code, stopped_outcome
from kasmm.fleet.parent import FleetConfig, child_env
from kasmm.fleet.status import ShardState, ShardView, merge_status
from kasmm.obs.exposition import TextBackend
from kasmm.obs.merge import merge_expositions
from kasmm.shard import MAX_SHARDS, ShardError, parse_processes
from kasmm.store.state_dir import LockBusy, lock_supervisor, prepare_state_dir

PROMTOOL = shutil.which("promtool")


# --- merging expositions ---------------------------------------------------------------------


def shard_body(profiles: list[str], fills: float) -> bytes:
    """An exposition as a shard writes it: kasmm's families, then the library's."""
    backend = TextBackend()
    backend.gauge("kasmm_profiles", "Profiles the supervisor runs.", []).add_metric(
        [], float(len(profiles))
    )
    counter = backend.counter("kasmm_fills", "Fills per side.", ["profile", "side"])
    hist = backend.histogram("kasmm_venue_request_duration_seconds", "Latency.", ["profile"])
    for name in profiles:
        counter.add_metric([name, "buy"], fills)
        hist.add_metric([name], [("0.1", 1.0), ("+Inf", 2.0)], 0.3)
    registry = CollectorRegistry()
    Gauge("process_open_fds", "Open fds.", registry=registry).set(7)
    Counter("python_gc_collections", "GCs.", ["generation"], registry=registry).labels("0").inc()
    Histogram("lib_latency_seconds", "Lib.", registry=registry, buckets=(1.0,)).observe(0.5)
    return b"".join(backend.pieces()) + generate_latest(registry)


def parse(body: bytes) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(body.decode())}


def check_with_promtool(body: bytes) -> None:
    if PROMTOOL is None:
        return
    done = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=body, capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_merged_exposition_has_each_family_once_and_every_sample_labelled() -> None:
    tail = TextBackend()
    tail.gauge("kasmm_shard_up", "Up.", ["shard"]).add_metric(["0"], 1.0)
    merged = merge_expositions(
        [("0", shard_body(["a", "b"], 3.0)), ("1", shard_body(["c"], 5.0))],
        tail=b"".join(tail.pieces()),
    )
    body = b"".join(merged.pieces)
    assert merged.conflicts == {}
    check_with_promtool(body)
    text = body.decode()
    for name in ("kasmm_profiles", "kasmm_fills_total", "process_open_fds"):
        assert text.count(f"# TYPE {name} ") == 1, name
    families = parse(body)
    fills = {
        (s.labels["shard"], s.labels["profile"]): s.value for s in families["kasmm_fills"].samples
    }
    assert fills == {("0", "a"): 3.0, ("0", "b"): 3.0, ("1", "c"): 5.0}
    profiles = {s.labels["shard"]: s.value for s in families["kasmm_profiles"].samples}
    assert profiles == {"0": 2.0, "1": 1.0}
    buckets = [s for s in families["kasmm_venue_request_duration_seconds"].samples]
    assert {s.labels["shard"] for s in buckets} == {"0", "1"} and len(buckets) == 3 * 4
    for family in families.values():
        for sample in family.samples:
            assert "shard" in sample.labels, sample
    assert [s.value for s in families["kasmm_shard_up"].samples] == [1.0]


def test_a_family_whose_type_differs_is_dropped_for_that_shard_and_named() -> None:
    first = b"# HELP x_seconds X.\n# TYPE x_seconds gauge\nx_seconds 1.0\n"
    other = (
        b"# HELP x_seconds X.\n# TYPE x_seconds counter\nx_seconds 2.0\n"
        b"# HELP y Y.\n# TYPE y gauge\ny{} 3\n"
    )
    merged = merge_expositions([("0", first), ("1", other)])
    body = b"".join(merged.pieces)
    check_with_promtool(body)
    assert merged.conflicts == {"1": ["x_seconds"]}
    families = parse(body)
    assert [(s.labels, s.value) for s in families["x_seconds"].samples] == [({"shard": "0"}, 1.0)]
    assert [(s.labels, s.value) for s in families["y"].samples] == [({"shard": "1"}, 3.0)]


def test_samples_of_an_untyped_source_and_no_trailing_newline_are_kept() -> None:
    merged = merge_expositions([("0", b"loose 1"), ("1", b"loose 2\n")])
    body = b"".join(merged.pieces)
    assert body == b'loose{shard="0"} 1\nloose{shard="1"} 2\n'


def test_a_label_value_that_needs_escaping_is_refused() -> None:
    with pytest.raises(ValueError, match="escaping"):
        merge_expositions([('0"', b"x 1\n")])


# --- merging status documents ----------------------------------------------------------------


def child_status(names: list[str], shard: str, **supervisor: Any) -> dict[str, Any]:
    return {
        "supervisor": {
            "pid": 100,
            "shard": shard,
            "profiles_total": len(names),
            "reloads": 2,
            "config_errors": ["broken.yaml:1:1: bad"],
            "directory_missing": False,
            "ledger_lost": None,
            "healthy": True,
            "health": "ok",
            **supervisor,
        },
        "profiles": [{"name": n, "state": "quoting", "open_orders": 4} for n in names],
    }


def view(index: int, state: ShardState, status: dict[str, Any] | None, **kw: Any) -> ShardView:
    return ShardView(index, 3, state, status=status, **kw)


def merged(*views: ShardView) -> dict[str, Any]:
    return merge_status(list(views), pid=7, directory="/p", uptime_s=12.34)


def test_status_of_healthy_shards_lists_every_profile_with_its_shard() -> None:
    doc = merged(
        view(0, ShardState.UP, child_status(["b", "a"], "0/3"), pid=11),
        view(1, ShardState.UP, child_status(["c"], "1/3"), pid=12),
        view(2, ShardState.UP, child_status([], "2/3"), pid=13),
    )
    assert [(r["name"], r["shard"]) for r in doc["profiles"]] == [
        ("a", "0/3"),
        ("b", "0/3"),
        ("c", "1/3"),
    ]
    assert not any("stale" in r for r in doc["profiles"])
    sup = doc["supervisor"]
    assert sup["pid"] == 7 and sup["processes"] == 3 and sup["profiles_total"] == 3
    assert sup["healthy"] is True and sup["health"] == "ok" and sup["uptime_s"] == 12.3
    # Every shard reports an invalid file: shown once.
    assert sup["config_errors"] == ["broken.yaml:1:1: bad"]
    assert [(s["shard"], s["state"], s["pid"]) for s in doc["shards"]] == [
        ("0/3", "up", 11),
        ("1/3", "up", 12),
        ("2/3", "up", 13),
    ]
    assert render_table(doc).splitlines()[0] == "supervisor pid=7 uptime=12s profiles=3"


def test_a_shard_that_is_down_or_never_answered_is_shown_never_missing() -> None:
    doc = merged(
        view(0, ShardState.RESTARTING, child_status(["a"], "0/3"), last_exit=-9, restarts=1),
        view(1, ShardState.STARTING, None),
        view(2, ShardState.UNRESPONSIVE, child_status(["c"], "2/3"), status_age_s=4.26),
    )
    rows = {r["name"]: r for r in doc["profiles"]}
    assert rows["a"]["state"] == "restarting" and rows["a"]["stale"] is True
    assert rows["c"]["state"] == "quoting" and rows["c"]["stale"] is True  # last known
    sup = doc["supervisor"]
    assert sup["healthy"] is False
    assert sup["health"] == (
        "shard 0/3 restarting (exit -9); shard 1/3 starting; shard 2/3 unresponsive"
    )
    shards = {s["shard"]: s for s in doc["shards"]}
    assert shards["1/3"]["state"] == "starting" and shards["1/3"]["profiles_total"] is None
    assert shards["0/3"]["restarts"] == 1 and shards["2/3"]["status_age_s"] == 4.3
    table = render_table(doc)
    assert "UNHEALTHY: shard 0/3 restarting" in table and "restarting" in table.splitlines()[2]


def test_an_unhealthy_shard_and_a_lost_ledger_reach_the_whole() -> None:
    doc = merged(
        view(0, ShardState.UP, child_status(["a"], "0/3")),
        view(
            1,
            ShardState.UP,
            child_status(["b"], "1/3", healthy=False, health="failed profiles: b"),
        ),
        view(2, ShardState.UP, child_status([], "2/3", ledger_lost="deleted")),
    )
    sup = doc["supervisor"]
    assert sup["healthy"] is False and sup["health"] == "shard 1/3: failed profiles: b"
    assert sup["ledger_lost"] == "deleted"


# --- exit status and backoff -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("returncode", "sent", "outcome"),
    [
        (0, signal.SIGTERM, exit_codes.OK),
        (1, signal.SIGTERM, exit_codes.ORDERS_LEFT),
        (3, signal.SIGTERM, exit_codes.PROFILES_FAILED),
        (4, signal.SIGTERM, exit_codes.LEDGER_LOST),
        (143, signal.SIGTERM, exit_codes.ORDERS_LEFT),  # forced by someone else
        (-signal.SIGTERM, signal.SIGTERM, exit_codes.OK),  # before its handlers: nothing traded
        (-signal.SIGINT, signal.SIGINT, exit_codes.OK),
        (-signal.SIGTERM, None, exit_codes.ORDERS_LEFT),  # not our stop
        (-signal.SIGKILL, signal.SIGTERM, exit_codes.ORDERS_LEFT),
        (None, None, exit_codes.ORDERS_LEFT),  # down after a crash when the stop came
        (99, signal.SIGTERM, exit_codes.ORDERS_LEFT),
    ],
)
def test_outcome_of_a_stopped_shard(
    returncode: int | None, sent: signal.Signals | None, outcome: int
) -> None:
    assert stopped_outcome(returncode, sent) == outcome


@pytest.mark.parametrize(
    ("outcomes", "code"),
    [
        ([], 0),
        ([0, 0, 0], 0),
        ([0, 3, 0], 3),
        ([2, 3], 3),
        ([3, 1], 1),
        ([1, 4, 3], 4),
        ([0, 75], 75),
        ([75, 1], 1),
        ([2, 75], 75),
        ([2, 0], 2),
    ],
)
def test_the_parent_exits_with_the_most_urgent_outcome(outcomes: list[int], code: int) -> None:
    assert fleet_exit_code(outcomes) == code


def test_backoff_doubles_to_its_cap_and_starts_over_after_a_stable_run() -> None:
    backoff = Backoff(base=1.0, cap=8.0, stable_s=60.0)
    delays = [backoff.after_crash(started_at=100.0, crashed_at=101.0) for _ in range(6)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert backoff.after_crash(started_at=100.0, crashed_at=160.0) == 1.0
    assert backoff.after_crash(started_at=200.0, crashed_at=200.5) == 2.0


# --- arguments and command line --------------------------------------------------------------


def test_processes_argument() -> None:
    assert parse_processes("3") == 3
    assert parse_processes("auto", cpus=6) == 6
    assert parse_processes("auto", cpus=0) == 1
    assert parse_processes("auto", cpus=5000) == MAX_SHARDS
    assert parse_processes("auto") >= 1
    for bad in ("0", "-1", "1001", "two", "", "+2", "٣"):
        with pytest.raises(ShardError, match="--processes"):
            parse_processes(bad)


def test_processes_and_shard_together_are_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["supervise", str(tmp_path), "--processes", "2", "--shard", "0/2"])
    assert exc.value.code == 2
    assert "pick one" in capsys.readouterr().err


def test_children_get_no_systemd_variables_and_the_same_options() -> None:
    env = child_env({"PATH": "/bin", "NOTIFY_SOCKET": "/run/n", "WATCHDOG_USEC": "1", "X": "y"})
    assert env == {"PATH": "/bin", "X": "y"}
    config = FleetConfig(
        Path("profiles"), Path("state"), 4, "127.0.0.1:9301", watch=False, log_format="json"
    )
    argv = config.command(2, "127.0.0.1:4000")
    assert argv[1:3] == ["-m", "kasmm.fleet.child"]
    assert argv[argv.index("--shard") + 1] == "2/4"
    assert argv[argv.index("--metrics-addr") + 1] == "127.0.0.1:4000"
    assert argv[argv.index("--log-format") + 1] == "json"
    assert Path(argv[argv.index("supervise") + 1]).is_absolute()
    assert Path(argv[argv.index("--state-dir") + 1]).is_absolute()
    assert argv[-1] == "--no-watch" and "--duration" not in argv


# --- the directory lock ----------------------------------------------------------------------

CHILD_LOCK = """
import sys
from pathlib import Path
from kasmm.store.state_dir import LockBusy, lock_supervisor
try:
    lock_supervisor(Path(sys.argv[1]), Path(sys.argv[2]), (int(sys.argv[3]), int(sys.argv[4])))
except LockBusy as exc:
    print(exc)
    sys.exit(75)
"""


def lock_in_child(
    state: Path, profiles: Path, shard: tuple[int, int]
) -> subprocess.CompletedProcess[str]:
    """``lock_supervisor`` for ``shard`` in a child process of this one."""
    return subprocess.run(
        [sys.executable, "-c", CHILD_LOCK, str(state), str(profiles), *map(str, shard)],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_the_parents_lock_keeps_every_other_supervisor_out_but_its_own_children(
    tmp_path: Path,
) -> None:
    state = prepare_state_dir(tmp_path / "state")
    profiles = tmp_path / "profiles"
    with lock_supervisor(state, profiles, None, processes=2) as held:
        assert held.path.name.count("-") == 1  # the unsharded lock: it overlaps every shard
        for shard in (None, (0, 2), (1, 4)):
            with pytest.raises(LockBusy, match=r"--processes 2\)"):
                lock_supervisor(state, profiles, shard)
        with pytest.raises(LockBusy):
            lock_supervisor(state, profiles, None, processes=3)
        # Its children (this process is their parent) pass, with its N only.
        assert lock_in_child(state, profiles, (1, 2)).returncode == 0
        other_n = lock_in_child(state, profiles, (1, 3))
        assert other_n.returncode == 75 and "--processes 2" in other_n.stdout
    # A plain supervisor's lock held by the parent of a shard does not let it in.
    with lock_supervisor(state, profiles, None):
        assert lock_in_child(state, profiles, (0, 2)).returncode == 75
    with pytest.raises(ValueError):
        lock_supervisor(state, profiles, (0, 2), processes=2)


# --- the HTTP client -------------------------------------------------------------------------


@pytest.mark.anyio
async def test_http_get_reads_a_control_endpoint_and_names_each_failure() -> None:
    async with anyio.create_task_group() as tg:
        port = await tg.start(
            lambda *, task_status: serve_control(
                "127.0.0.1", 0, status=lambda: {"ok": 1}, task_status=task_status
            )
        )
        assert await http_get("127.0.0.1", port, "/status", 5.0) == b'{"ok":1}'
        with pytest.raises(FetchError, match="HTTP 404"):
            await http_get("127.0.0.1", port, "/metrics", 5.0)
        tg.cancel_scope.cancel()
    with pytest.raises(FetchError, match="/status: "):
        await http_get("127.0.0.1", port, "/status", 5.0)  # nobody listens now
    silent = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    async with silent:
        quiet_port = silent.extra(anyio.abc.SocketAttribute.local_port)
        with pytest.raises(FetchError, match=r"no answer within 0\.2 s"):
            await http_get("127.0.0.1", quiet_port, "/status", 0.2)


def test_the_shards_markets_are_listed_once_with_the_freshest_book() -> None:
    def market(age: float | None, readers: int) -> dict[str, Any]:
        return {"source": "websocket" if age is not None else None, "age_s": age,
                "subscribers": readers, "feed": "running", "books": 5, "failures": 1,
                "last_error": None}  # fmt: skip

    first = child_status(["a"], "0/3")
    first["markets"] = {"mexc:KAS/USDT": market(2.0, 2), "gate:KAS/USDT": market(None, 1)}
    second = child_status(["b"], "1/3")
    second["markets"] = {"mexc:KAS/USDT": market(0.5, 1)}
    doc = merged(view(0, ShardState.UP, first), view(1, ShardState.UP, second))
    assert list(doc["markets"]) == ["gate:KAS/USDT", "mexc:KAS/USDT"]
    mexc = doc["markets"]["mexc:KAS/USDT"]
    assert (mexc["age_s"], mexc["subscribers"], mexc["failures"], mexc["shards"]) == (0.5, 3, 2, 2)
    assert doc["markets"]["gate:KAS/USDT"]["shards"] == 1


def test_portfolio_rows_of_every_shard_are_merged_with_their_shard() -> None:
    first = {**child_status(["a"], "0/3"), "portfolios": [{"name": "kas", "state": "active"}]}
    third = {**child_status(["c"], "2/3"), "portfolios": [{"name": "btc", "state": "halted"}]}
    doc = merged(
        view(0, ShardState.UP, first),
        view(1, ShardState.STARTING, None),
        view(2, ShardState.UNRESPONSIVE, third),
    )
    assert doc["portfolios"] == [
        {"name": "btc", "state": "halted", "shard": "2/3", "stale": True},
        {"name": "kas", "state": "active", "shard": "0/3"},
    ]


def test_settlements_are_taken_once_from_the_shards_the_scheduled_one_preferred() -> None:
    sweep = {"key": "sw-1", "state": "sent", "amount": "1500"}
    plain = {"open": [sweep], "recent": [], "schedule": None}
    scheduled = {**plain, "schedule": {"cron": "0 3 * * *", "next_run": 1.0, "running": False}}
    first = {**child_status(["a"], "0/3"), "settlements": {"mexc-main": plain}}
    second = {**child_status(["b"], "1/3"), "settlements": {"mexc-main": scheduled}}
    doc = merged(
        view(0, ShardState.UP, first),
        view(1, ShardState.UP, second),
        view(2, ShardState.STARTING, None),
    )
    assert doc["settlements"] == {"mexc-main": scheduled}
