"""Websocket vs REST polling on each exchange emulator, and the all-faults fill run.

**Reaction and request budget.** For each exchange (MEXC, Gate, KuCoin, BingX: the loopback
emulators of ``tests/emulators``, in this process) and each mode (``websocket``: books and fills
from ``ccxt.pro``; ``rest``: REST polling), the real bot runs: ``kasmm.bot.Bot`` on the
``CcxtVenue`` that ``build_venue`` makes from a ccxt profile whose ``rest_url``/``ws_url`` point
at the emulator (credentials as ``${VAR}`` references, set in this process's environment), with
a SQLite ledger, one level a side 40 bps wide and a 2 bps refresh tolerance. Every server answer
and push leaves ``--latency-ms`` late (one way: the websocket hub's ``latency_s``; for REST the
request is handled that late and its answer leaves that late again). After a warm-up (quotes
live; in websocket mode ccxt's book synchronised, which on MEXC takes 25 pushes), the bench
moves the market every ``--move-interval`` seconds between two mids 20 bps apart, so that every
move forces a requote, for ``--seconds``. Per exchange and mode:

* **reaction**: server time of each book change -> arrival at the server of the bot's first
  order action after it (place, cancel, amend, batch): p50, p99, n. It covers the push or the
  next poll, the bot, and the order request's way in;
* **requests per minute** the account spent over the measured window, by endpoint class (book,
  orders listing, trades, order actions, other: time, balances, listen keys, the dead man's
  switch, websocket tokens), from the emulator's recorded requests.

**The all-faults fill run** (``--fault-rounds``, 0 skips it): per exchange, the bot trades over
websockets while an outside taker fills its orders, in part and in full, and every wire fault is
injected in turn on every connection (server close, silent stall then resume, sequence gap,
duplicate, reorder, slow consumer, latency), then the emulator's protocol faults (listen-key or
token expiry, a fresh snapshot after a reconnect, Gate's full ``obu`` push), with server pings
on; ``--fault-rounds`` times over (``tests/integration/wire_fault_sequence.py``, the steps of
``tests/integration/test_wire_fault_run.py``). The websocket reconnect backoff is 0.2 s there
(every fault ends a session). Then the bot stops, and the fills in its ledger are compared with
the fills the emulator executed for the account: trade ids, sides, prices, sizes (lost, counted
twice, equal).

    .venv/bin/python bench/wire.py [--exchanges mexc,gate,kucoin,bingx] [--seconds 15]
                                   [--move-interval 0.4] [--latency-ms 25] [--fault-rounds 2]

Loopback only (127.0.0.1, ports chosen by the OS). Figures only: no assertion is made on
timings; the fault run's comparison is printed, and ``equal`` is its verdict.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import structlog.testing
from _baseline import REPO, hot_path, ratio
from _common import (
    OtherLoad,
    machine_facts,
    percentile,
    print_json_line,
    print_table,
    quiet_logging,
    wait_for_idle,
)

sys.path.insert(0, str(REPO))  # the emulators live in tests/

from tests.integration.wire_fault_sequence import (
    ORDER_SIZE,
    PARTIAL,
    RECONNECT_S,
    logged,
    missed_fills,
    quoted_around,
    run_through_faults,
    ws_book_synced,
)
from tests.integration.wire_rig import (
    ENDPOINT_CLASSES,
    EXCHANGES,
    Exchange,
    RunningBot,
    emulated,
    ledger_fills,
    running_bot,
    set_credentials_env,
    wire_profile,
)
from tests.support import eventually

LOW, HIGH = Decimal("0.1"), Decimal("0.1002")
MODES = ("websocket", "rest")


def first_action_after(moves: list[float], actions: list[float]) -> list[float]:
    """For each book change, the delay to the first order action at or after it (both lists
    sorted; a change with no action after it has none)."""
    delays: list[float] = []
    j = 0
    for at in moves:
        while j < len(actions) and actions[j] < at:
            j += 1
        if j < len(actions):
            delays.append(actions[j] - at)
    return delays


async def _synchronised(exchange: Exchange, running: RunningBot, websocket: bool) -> None:
    """Quotes live and, over websockets, ccxt's book synchronised (nudging the book's sizes,
    which moves no quote, until it is)."""
    await eventually(lambda: quoted_around(exchange, exchange.mid), within_s=20)
    if not websocket:
        return

    def synced() -> bool:
        if ws_book_synced(running):
            return True
        exchange.nudge()
        return False

    await eventually(synced, within_s=30, poll_s=0.02)


async def measure(name: str, websocket: bool, args: argparse.Namespace) -> dict[str, Any]:
    """One exchange in one mode: the reaction to each market move and the requests spent."""
    latency_s = args.latency_ms / 1000
    async with emulated(name, http_latency_s=latency_s, ws_latency_s=latency_s, mid=LOW) as x:
        profile = wire_profile(x, websocket=websocket)
        with tempfile.TemporaryDirectory(prefix="kasmm-wire-") as tmp:
            async with running_bot(profile, Path(tmp)) as running:
                await _synchronised(x, running, websocket)
                sessions_before = x.hub.accepted
                other = OtherLoad()
                cpu0 = time.process_time()
                first_move = len(x.moves)
                start = time.time()
                while time.time() - start < args.seconds:
                    x.move(HIGH if x.mid == LOW else LOW)
                    await anyio.sleep(args.move_interval)
                end = time.time()
                with anyio.move_on_after(5):  # the last move's requote, if it is late
                    await eventually(lambda: quoted_around(x, x.mid), within_s=5)
                cpu = time.process_time() - cpu0
                other_cores = other.cores()
                sessions = x.hub.accepted - sessions_before
                errors = running.bot.stats.venue_errors
    moves = x.moves[first_move:]
    requests = [r for r in x.requests() if start <= r.at < end]
    actions = sorted(r.at for r in x.requests() if r.kind == "order actions")
    delays_ms = sorted(d * 1000 for d in first_action_after(moves, actions))
    minutes = (end - start) / 60
    by_class = Counter(r.kind for r in requests)
    per_minute = {kind: by_class.get(kind, 0) / minutes for kind in ENDPOINT_CLASSES}
    return {
        "exchange": name,
        "mode": "websocket" if websocket else "rest",
        "moves": len(moves),
        "reactions": len(delays_ms),
        "reaction_p50_ms": percentile(delays_ms, 50),
        "reaction_p99_ms": percentile(delays_ms, 99),
        "reaction_max_ms": delays_ms[-1] if delays_ms else math.nan,
        "requests_per_min": per_minute,
        "requests_per_min_total": sum(per_minute.values()),
        "websocket_connections_opened": sessions,
        "venue_errors": errors,
        "measured_s": end - start,
        "cpu_cores": cpu / (end - start),
        "other_load_cores": other_cores,
    }


async def fault_run(name: str, rounds: int) -> dict[str, Any]:
    """The all-faults fill run on one exchange (see the module docstring)."""
    wall0 = time.perf_counter()
    async with emulated(name, server_pings=True, mid=LOW) as x:
        profile = wire_profile(x, websocket=True, size=ORDER_SIZE, feed_stall_s=1, book_poll_s=0.2)
        with tempfile.TemporaryDirectory(prefix="kasmm-wire-faults-") as tmp:
            with structlog.testing.capture_logs() as logs:
                async with running_bot(profile, Path(tmp), reconnect_s=RECONNECT_S) as running:
                    faults = await run_through_faults(x, running, logs, rounds)
                    never = await missed_fills(x, running, within_s=20)
                    stats_fills = running.bot.stats.fills
            executed = Counter(x.executed())
            recorded = Counter(ledger_fills(Path(tmp), profile.name))
    yielded = Counter(f.trade_id for f in running.yielded)
    return {
        "exchange": name,
        "faults_injected": len(faults),
        "fault_kinds": sorted(set(faults)),
        "fills_executed": sum(executed.values()),
        "fills_partial": sum(n for f, n in executed.items() if f.size == PARTIAL),
        "fills_recorded": sum(recorded.values()),
        "fills_counted_by_bot": stats_fills,
        "lost": sum((executed - recorded).values()),
        "recorded_not_executed": sum((recorded - executed).values()),
        "recorded_twice": sum(n - 1 for n in recorded.values() if n > 1),
        "yielded_twice": sum(n - 1 for n in yielded.values() if n > 1),
        "never_reached_bot": sorted(never),
        "equal": executed == recorded and stats_fills == sum(executed.values()),
        "websocket_sessions": logged(logs, "websocket_started"),
        "feed_stalled": logged(logs, "feed_stalled"),
        "feed_gap": logged(logs, "feed_gap"),
        "wall_s": time.perf_counter() - wall0,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    set_credentials_env()
    results: list[dict[str, Any]] = []
    faults: list[dict[str, Any]] = []
    other = OtherLoad()
    with anyio.fail_after(args.timeout):
        for name in args.exchanges:
            for mode in MODES:
                print(f"  {name} {mode} ...", flush=True)
                results.append(await measure(name, mode == "websocket", args))
        for name in args.exchanges if args.fault_rounds > 0 else ():
            print(f"  {name} all-faults fill run ...", flush=True)
            faults.append(await fault_run(name, args.fault_rounds))
    return {"results": results, "faults": faults, "other_load_cores": other.cores()}


def print_reaction(results: list[dict[str, Any]]) -> None:
    rows = []
    for r in results:
        per_min = r["requests_per_min"]
        rows.append(
            [
                r["exchange"],
                r["mode"],
                r["reactions"],
                r["reaction_p50_ms"],
                r["reaction_p99_ms"],
                *(per_min[kind] for kind in ENDPOINT_CLASSES),
                r["requests_per_min_total"],
                r["other_load_cores"],
            ]
        )
    print_table(
        [
            "exchange",
            "mode",
            "n",
            "p50 ms",
            "p99 ms",
            "book/min",
            "listing/min",
            "trades/min",
            "actions/min",
            "other/min",
            "total/min",
            "other load",
        ],
        rows,
    )


def print_ratios(results: list[dict[str, Any]]) -> None:
    """REST / websocket per exchange (above 1: websocket reacts faster / spends less)."""
    by_key = {(r["exchange"], r["mode"]): r for r in results}
    rows = []
    for name in dict.fromkeys(r["exchange"] for r in results):
        ws, rest = by_key.get((name, "websocket")), by_key.get((name, "rest"))
        if ws is None or rest is None:
            continue
        rows.append(
            [
                name,
                ratio(rest["reaction_p50_ms"], ws["reaction_p50_ms"]),
                ratio(rest["reaction_p99_ms"], ws["reaction_p99_ms"]),
                ratio(rest["requests_per_min_total"], ws["requests_per_min_total"]),
                ratio(
                    rest["requests_per_min"]["book"] + rest["requests_per_min"]["trades"],
                    ws["requests_per_min"]["book"] + ws["requests_per_min"]["trades"],
                ),
            ]
        )
    print_table(["REST / websocket", "p50", "p99", "requests/min", "book+trades/min"], rows)


def print_faults(faults: list[dict[str, Any]]) -> None:
    rows = [
        [
            f["exchange"],
            f["faults_injected"],
            f["fills_executed"],
            f["fills_partial"],
            f["fills_recorded"],
            f["lost"],
            f["recorded_twice"] + f["recorded_not_executed"],
            f["yielded_twice"],
            "yes" if f["equal"] else "NO",
            f["websocket_sessions"],
            f["feed_stalled"],
            f["feed_gap"],
            f["wall_s"],
        ]
        for f in faults
    ]
    print_table(
        [
            "exchange",
            "faults",
            "executed",
            "partial",
            "recorded",
            "lost",
            "extra",
            "yielded twice",
            "equal",
            "ws sessions",
            "stalls",
            "gaps",
            "wall s",
        ],
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--exchanges", default=",".join(EXCHANGES), help="comma-separated (default: all four)"
    )
    parser.add_argument("--seconds", type=float, default=15.0, help="measured per exchange/mode")
    parser.add_argument(
        "--move-interval", type=float, default=0.4, help="seconds between market moves"
    )
    parser.add_argument(
        "--latency-ms", type=float, default=25.0, help="one-way emulated network latency"
    )
    parser.add_argument(
        "--fault-rounds",
        type=int,
        default=2,
        help="times over the list of faults in the fill run per exchange (0: skip the run)",
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="wall-clock bound (s)")
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=20.0,
        help="wait up to this many seconds for other processes to go quiet first (0: don't)",
    )
    parser.add_argument("--log-level", default="info", help="kasmm log level (JSON to /dev/null)")
    args = parser.parse_args()
    args.exchanges = [e.strip() for e in args.exchanges.split(",") if e.strip()]
    unknown = set(args.exchanges) - set(EXCHANGES)
    if unknown:
        parser.error(f"no emulator for {', '.join(sorted(unknown))}")
    quiet_logging(args.log_level)
    facts = machine_facts()
    print(
        f"wire: {', '.join(args.exchanges)} x websocket/rest, {args.seconds:g} s each, a move "
        f"every {args.move_interval:g} s, {args.latency_ms:g} ms one way; fault run x"
        f"{args.fault_rounds}; nproc={facts['nproc']} cpu={facts['cpu']} "
        f"python={facts['python']}; this tree runs {hot_path()}"
    )
    if args.wait_idle > 0:
        busy = wait_for_idle(args.wait_idle)
        if busy >= 0.15:
            print(f"(the machine stayed busy: other processes use {busy:.2f} cores)")
    r = anyio.run(run, args)
    print()
    print_reaction(r["results"])
    print()
    print_ratios(r["results"])
    if r["faults"]:
        print()
        print_faults(r["faults"])
    print()
    print(f"other processes used {r['other_load_cores']:.2f} cores over the whole run")
    print_json_line(
        {"bench": "wire", "machine": facts, "hot_path": hot_path(), "args": vars(args), **r}
    )


if __name__ == "__main__":
    main()
