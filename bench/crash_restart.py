"""Crash-restart: ``kasmm supervise`` killed with SIGKILL over and over against a MEXC emulator.

Two processes, as in production: the MEXC spot emulator (``python -m tests.emulators.mexc``,
``--state`` file, so it persists everything it is told) and ``kasmm supervise`` (JSON log,
``--state-dir``), trading through two ccxt profiles whose ``rest_url`` is the emulator:

* ``crash-mm`` quotes two levels a side;
* ``crash-halt`` trips a tight kill switch (``max_order_actions_per_minute: 1, action: halt``)
  on its first round and must stay halted across every kill: no order of its prefix may reach
  the emulator after the trip.

A driver thread makes outside trades through ``POST /_emu/trade`` against ``crash-mm``'s resting
orders, so fills happen, also while the supervisor is dead. The supervisor is killed with
SIGKILL ``--kills`` times at random moments (some during start-up, most while quoting) and
restarted on the same state directory; a last run is stopped with SIGTERM.

Figures (printed; the last line of stdout is one JSON object):

* orders left behind after each restart's reconciliation: orders of the bot's prefix that were
  open when a run was killed and are still open once the next run is ready (expected 0), and
  orders of the bot's prefix open after the final SIGTERM (expected 0);
* duplicate orders: a client id sent twice (``POST /api/v3/order`` or in a ``batchOrders``),
  or held by two orders at the emulator (expected 0);
* fills: the emulator's trades on the bot's orders vs ``Ledger.fills`` (missing, extra);
* PnL continuity: after every restart the running bot's realized PnL (``/status``) equals the
  ledger's recomputation; the ledger's fills only ever grow (none disappears or changes), the
  opening never changes; at the end, the ledger's realized PnL vs the same recomputed from the
  emulator's trades;
* halt continuity: ``crash-halt`` restored its halt in every run that got that far, and the
  emulator never saw an order of its prefix after the trip;
* supervisor crashes (exit without our signal) and the runtime.

    .venv/bin/python bench/crash_restart.py [--kills 20] [--seed 11]

Bounded: every wait has a timeout; the whole run is capped at ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from _common import machine_facts, print_json_line

from kasmm.config.schema import Profile
from kasmm.core.pnl import PnlState, apply_fill
from kasmm.core.types import ClientOrderId, Fill, Side, TradeId
from kasmm.store import Ledger

REPO = Path(__file__).resolve().parents[1]
KEY = "crash-key-0123456789"
SECRET = "crash-secret-abcdef-0123456789"
MM, HALT = "crash-mm", "crash-halt"


def _prefix(name: str) -> str:
    return Profile.model_validate(
        {
            "name": name,
            "venue": {"type": "sim"},
            "symbol": "KAS/USDT",
            "modes": {
                "aggressive": {"spread_bps": 1, "size": 1},
                "passive": {"spread_bps": 1, "size": 1},
            },
        }
    ).client_id_prefix


PREFIX = {MM: _prefix(MM), HALT: _prefix(HALT)}


def profile_yaml(name: str, url: str, kill_switch: str) -> str:
    return textwrap.dedent(
        f"""\
        name: {name}
        venue:
          type: ccxt
          exchange: mexc
          rest_url: {url}
          credentials: {{api_key: "${{CRASH_MEXC_KEY}}", secret: "${{CRASH_MEXC_SECRET}}"}}
          use_websocket: false
          book_poll_s: 0.25
          timeout_s: 5
        symbol: KAS/USDT
        modes:
          aggressive: {{spread_bps: 10, size: 500, levels: 2, level_step_bps: 5}}
          passive: {{spread_bps: 10, size: 500, levels: 2, level_step_bps: 5}}
        refresh: {{fallback_interval_s: 0.5, tolerance_bps: 20}}
        kill_switch: {kill_switch}
        """
    )


# --- the two processes ----------------------------------------------------------------------


class Emulator:
    """``python -m tests.emulators.mexc`` as a child process."""

    def __init__(self, state: Path, log: Path) -> None:
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.emulators.mexc",
                "--port",
                "0",
                "--api-key",
                KEY,
                "--secret",
                SECRET,
                "--mid",
                "0.08",
                "--spread-bps",
                "20",
                "--levels",
                "5",
                "--size",
                "50000",
                "--balances",
                "KAS=1000000,USDT=100000",
                "--state",
                str(state),
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"emulator did not start; see {log}")
        self.url: str = json.loads(line)["url"]

    def _request(self, path: str, data: dict[str, Any] | None = None) -> Any:
        body = json.dumps(data).encode() if data is not None else None
        req = urllib.request.Request(
            self.url + path,
            data=body,
            method="POST" if data is not None else "GET",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = self._request("/_emu/state")
        return result

    def requests(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._request("/_emu/requests")
        return result

    def trade(self, side: str, price: str, size: str) -> list[dict[str, Any]]:
        result: dict[str, Any] = self._request(
            "/_emu/trade", {"side": side, "price": price, "size": size}
        )
        return list(result.get("trades", []))

    def open_orders(self, prefix: str) -> list[dict[str, Any]]:
        return [
            o
            for o in self.state()["orders"]
            if o["status"] in ("NEW", "PARTIALLY_FILLED")
            and (o["client_order_id"] or "").startswith(prefix)
        ]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Run:
    """One ``kasmm supervise`` process; its JSON log goes to a file."""

    def __init__(self, directory: Path, state: Path, log: Path, env: dict[str, str]) -> None:
        self.log_path = log
        self.port = free_port()
        self._log = log.open("wb")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kasmm",
                "--log-format",
                "json",
                "supervise",
                str(directory),
                "--metrics-addr",
                f"127.0.0.1:{self.port}",
                "--no-watch",
                "--state-dir",
                str(state),
            ],
            cwd=REPO,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**env, "PYTHONUNBUFFERED": "1"},
        )

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):  # a line cut by SIGKILL
                    out.append(json.loads(line))
        return out

    def wait_for(self, pred: Callable[[dict[str, Any]], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(pred(e) for e in self.events()):
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.05)
        return False

    def status(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/status", timeout=5) as r:
                result: dict[str, Any] = json.loads(r.read())
                return result
        except (OSError, ValueError, urllib.error.URLError):
            return None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._log.close()

    def terminate(self, timeout: float = 30.0) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            code = None
        self._log.close()
        return code


# --- the outside trader ---------------------------------------------------------------------


@dataclass
class Driver:
    """Lifts/hits ``crash-mm``'s resting orders through ``/_emu/trade`` until stopped."""

    emu: Emulator
    rng: random.Random
    stop: threading.Event = field(default_factory=threading.Event)
    trades: int = 0
    fills: int = 0
    errors: int = 0

    def run(self) -> None:
        while not self.stop.wait(self.rng.uniform(0.2, 0.6)):
            try:
                orders = self.emu.open_orders(PREFIX[MM])
                if not orders:
                    continue
                order = self.rng.choice(orders)
                remaining = Decimal(order["orig_qty"]) - Decimal(order["executed_qty"])
                size = max(
                    Decimal(1),
                    (remaining * Decimal(self.rng.uniform(0.2, 1.0))).quantize(Decimal(1)),
                )
                side = "BUY" if order["side"] == "SELL" else "SELL"
                made = self.emu.trade(side, order["price"], str(size))
                self.trades += 1
                self.fills += len(made)
            except Exception:
                self.errors += 1


# --- checks ---------------------------------------------------------------------------------


def emulator_fills(state: dict[str, Any], prefix: str) -> list[Fill]:
    """The emulator's trades on orders of ``prefix`` (our account), oldest first, as fills."""
    out = []
    for t in sorted(state["trades"], key=lambda t: (t["time"], int(t["trade_id"]))):
        cid = t.get("client_order_id") or ""
        if t["account"] != KEY or not cid.startswith(prefix):
            continue
        out.append(
            Fill(
                trade_id=TradeId(str(t["trade_id"])),
                client_id=ClientOrderId(cid),
                side=Side.BUY if t["is_buyer"] else Side.SELL,
                price=Decimal(t["price"]),
                size=Decimal(t["qty"]),
                fee=Decimal(t["commission"]),
                fee_asset=t["commission_asset"],
                ts=t["time"] / 1000,
            )
        )
    return out


@dataclass
class LedgerView:
    fills: list[Fill]
    opening: tuple[Decimal, Decimal] | None
    pnl: PnlState
    halt: bool


def read_ledger(path: Path, profile: str) -> LedgerView:
    with Ledger(path) as ledger:
        opening = ledger.opening(profile)
        return LedgerView(
            fills=ledger.fills(profile),
            opening=opening,
            pnl=ledger.pnl_state(profile, "USDT", opening),
            halt=ledger.active_halt(profile) is not None,
        )


def fold(fills: list[Fill], opening: tuple[Decimal, Decimal] | None) -> PnlState:
    state = PnlState() if opening is None else PnlState.opening(*opening)
    for f in fills:
        state = apply_fill(state, f, "USDT")
    return state


# --- the run --------------------------------------------------------------------------------


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    rng = random.Random(args.seed)
    t_begin = time.monotonic()
    budget_end = t_begin + args.max_seconds
    emu = Emulator(tmp / "emu-state.json", tmp / "emu.log")
    directory = tmp / "profiles"
    directory.mkdir()
    state = tmp / "state"
    ledger_path = state / "kasmm.sqlite"
    (directory / f"{MM}.yaml").write_text(
        profile_yaml(
            MM,
            emu.url,
            "{stale_book: {seconds: 30, action: pause, pause_s: 5}, "
            "max_drawdown: null, max_daily_loss: null}",
        )
    )
    (directory / f"{HALT}.yaml").write_text(
        profile_yaml(
            HALT,
            emu.url,
            "{max_order_actions_per_minute: {count: 1, action: halt}, "
            "max_drawdown: null, max_daily_loss: null}",
        )
    )
    env = {**os.environ, "CRASH_MEXC_KEY": KEY, "CRASH_MEXC_SECRET": SECRET}
    driver = Driver(emu, random.Random(args.seed + 1))
    thread = threading.Thread(target=driver.run, name="driver", daemon=True)
    thread.start()

    kills: list[dict[str, Any]] = []
    crashes: list[str] = []
    carried: set[str] = set()  # our orders a killed run left, not yet checked after a restart
    left_after_reconcile = 0
    pnl_mismatches: list[dict[str, Any]] = []
    history_violations: list[str] = []
    halt_runs = halt_restored = 0
    previous: LedgerView | None = None
    opening0: tuple[Decimal, Decimal] | None = None
    final_code: int | None = None
    final_left = -1
    try:
        for k in range(args.kills + 1):
            last = k == args.kills
            if time.monotonic() > budget_end and not last:
                break
            log = tmp / f"run{k:02d}.jsonl"
            halted_before = ledger_path.exists() and read_ledger(ledger_path, HALT).halt
            proc = Run(directory, state, log, env)
            early = not last and rng.random() < 0.25
            ready = False
            if early:
                time.sleep(rng.uniform(0.3, 3.0))  # killed while starting (or just after)
                ready = any(e.get("event") == "supervisor_ready" for e in proc.events())
            else:
                ready = proc.wait_for(lambda e: e.get("event") == "supervisor_ready", 60)
                if not ready and proc.proc.poll() is not None:
                    crashes.append(f"run {k}: exited {proc.proc.returncode} before ready")
            record: dict[str, Any] = {"run": k, "early": early, "ready": ready}
            if ready:
                # Reconciliation of this run is done (bots start quoting only after it).
                still = {o["client_order_id"] for o in emu.open_orders(PREFIX[MM])}
                still |= {o["client_order_id"] for o in emu.open_orders(PREFIX[HALT])}
                record["left_from_killed_runs"] = len(carried)
                record["left_after_reconcile"] = len(carried & still)
                left_after_reconcile += len(carried & still)
                carried = set()
                time.sleep(1.0)
                check_pnl(proc, ledger_path, pnl_mismatches, k)
                if halted_before:
                    halt_runs += 1
                    if any(
                        e.get("event") == "halt_restored" and e.get("profile") == HALT
                        for e in proc.events()
                    ):
                        halt_restored += 1
            if last:
                time.sleep(1.0)
                # The outside trader stops first: the bot reads the last fills (it polls its
                # trades every second), then it is told to stop.
                driver.stop.set()
                thread.join(timeout=10)
                time.sleep(2.5)
                final_code = proc.terminate()
                record["exit_code"] = final_code
                final_left = len(emu.open_orders(PREFIX[MM])) + len(emu.open_orders(PREFIX[HALT]))
                kills.append(record)
                break
            if not early:
                time.sleep(rng.uniform(0.2, 4.0))
            if proc.proc.poll() is not None:
                crashes.append(f"run {k}: exited {proc.proc.returncode} before the kill")
            proc.kill()
            left = {o["client_order_id"] for o in emu.open_orders(PREFIX[MM])}
            left |= {o["client_order_id"] for o in emu.open_orders(PREFIX[HALT])}
            record["orders_open_at_kill"] = len(left)
            carried |= left
            kills.append(record)
            view = read_ledger(ledger_path, MM)
            if opening0 is None:
                opening0 = view.opening
            elif view.opening != opening0:
                history_violations.append(f"run {k}: opening changed {opening0} -> {view.opening}")
            if previous is not None:
                ids = [f.trade_id for f in view.fills]
                old = [f.trade_id for f in previous.fills]
                if ids[: len(old)] != old:
                    history_violations.append(f"run {k}: stored fills changed or disappeared")
            previous = view
            time.sleep(rng.uniform(0.0, 1.5))  # the bot stays dead for a moment; trades go on
    finally:
        driver.stop.set()
        thread.join(timeout=10)

    try:
        emu_state = emu.state()
        requests = emu.requests()
    finally:
        emu.close()
    figures = final_checks(emu_state, requests, ledger_path, tmp, args.kills + 1)
    figures.update(
        {
            "kills": sum(1 for r in kills if "orders_open_at_kill" in r),
            "kills_during_startup": sum(1 for r in kills if r["early"]),
            "runs_ready": sum(1 for r in kills if r["ready"]),
            "orders_left_after_reconcile": left_after_reconcile,
            "orders_open_at_kills": sum(r.get("orders_open_at_kill", 0) for r in kills),
            "orders_left_after_final_stop": final_left,
            "final_exit_code": final_code,
            "supervisor_crashes": len(crashes),
            "crash_messages": crashes,
            "pnl_status_vs_ledger_mismatches": len(pnl_mismatches),
            "pnl_mismatch_examples": pnl_mismatches[:3],
            "ledger_history_violations": history_violations,
            "halt_runs": halt_runs,
            "halt_restored_runs": halt_restored,
            "outside_trades": driver.trades,
            "outside_fills": driver.fills,
            "driver_errors": driver.errors,
            "seconds": round(time.monotonic() - t_begin, 1),
        }
    )
    return {"figures": figures, "runs": kills}


def check_pnl(proc: Run, ledger_path: Path, out: list[dict[str, Any]], k: int) -> None:
    """The running bot's realized PnL (``/status``) vs the ledger's recomputation.

    Fills keep arriving (the outside trader), so the ledger is read between two status reads
    and must equal one of them; a few tries. Equal means within 1e-12 quote: a fill at the
    average cost realizes a 1e-28 rounding residue that can slip in between two reads.
    """
    last: dict[str, Any] | None = None
    for _ in range(6):
        before = _status_pnl(proc)
        view = read_ledger(ledger_path, MM)
        after = _status_pnl(proc)
        if before is None or after is None:
            time.sleep(0.3)
            continue
        ledger = view.pnl.realized
        if min(abs(before - ledger), abs(after - ledger)) <= Decimal("1e-12"):
            return
        last = {"run": k, "status": [str(before), str(after)], "ledger": str(ledger)}
        time.sleep(0.3)
    if last is not None:  # None: not quoting (yet), nothing to compare
        out.append(last)


def _status_pnl(proc: Run) -> Decimal | None:
    row = next((p for p in (proc.status() or {}).get("profiles", []) if p["name"] == MM), None)
    exact = None if row is None else row.get("pnl_exact")
    if not exact:
        return None
    # The exact realized PnL (``realized_pnl`` is rounded for people to read).
    return Decimal(exact["spread_capture"])


def final_checks(
    emu_state: dict[str, Any],
    requests: list[dict[str, Any]],
    ledger_path: Path,
    tmp: Path,
    runs: int,
) -> dict[str, Any]:
    posted: Counter[str] = Counter()
    halt_posts: list[int] = []
    for r in requests:
        if r["method"] != "POST" or r["path"] not in ("/api/v3/order", "/api/v3/batchOrders"):
            continue
        # A MEXC batch carries its orders as a JSON list in ``batchOrders``.
        batch = r["path"] == "/api/v3/batchOrders"
        for order in json.loads(r["params"].get("batchOrders", "[]")) if batch else [r["params"]]:
            cid = order.get("newClientOrderId", "")
            posted[cid] += 1
            if cid.startswith(PREFIX[HALT]):
                halt_posts.append(int(r["time_ms"]))
    dup_posts = sum(1 for n in posted.values() if n > 1)
    held: Counter[str] = Counter(
        o["client_order_id"]
        for o in emu_state["orders"]
        if o["account"] == KEY and o["client_order_id"]
    )
    dup_orders = sum(1 for n in held.values() if n > 1)

    out: dict[str, Any] = {"duplicate_client_id_posts": dup_posts, "duplicate_orders": dup_orders}
    for name in (MM, HALT):
        venue = emulator_fills(emu_state, PREFIX[name])
        view = read_ledger(ledger_path, name)
        ledger_ids = [str(f.trade_id) for f in view.fills]
        venue_ids = [str(f.trade_id) for f in venue]
        missing = sorted(set(venue_ids) - set(ledger_ids), key=int)
        extra = sorted(set(ledger_ids) - set(venue_ids))
        doubled = len(ledger_ids) - len(set(ledger_ids))
        recomputed = fold(venue, view.opening)
        key = name.replace("crash-", "")
        out[f"{key}_venue_fills"] = len(venue)
        out[f"{key}_ledger_fills"] = len(ledger_ids)
        out[f"{key}_fills_missing_in_ledger"] = len(missing)
        out[f"{key}_fills_extra_in_ledger"] = len(extra) + doubled
        out[f"{key}_realized_pnl_ledger"] = str(view.pnl.realized)
        out[f"{key}_realized_pnl_venue"] = str(recomputed.realized)
        if name == MM:
            out["mm_missing_fill_ids"] = missing[:20]
        if name == HALT:
            out["halt_active_at_end"] = view.halt
            with Ledger(ledger_path) as ledger:
                trips = [e for e in ledger.risk_events(HALT) if e.kind == "trip"]
            first = min((e.ts for e in trips), default=None)
            out["halt_trips"] = len(trips)
            out["halt_orders_posted"] = len(halt_posts)
            out["halt_orders_after_trip"] = (
                sum(1 for t in halt_posts if t / 1000 > first + 0.5) if first is not None else None
            )
    log_events: Counter[str] = Counter()
    for k in range(runs):
        path = tmp / f"run{k:02d}.jsonl"
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    event = json.loads(line).get("event", "?")
                except ValueError:
                    continue
                if event in (
                    "leftover_orders_cancelled",
                    "profile_failed",
                    "halt_restored",
                    "order_found_after_unknown_outcome",
                    "order_outcome_unknown",
                    "shutdown_orders_left",
                ):
                    log_events[event] += 1
    out["log_events"] = dict(sorted(log_events.items()))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs (default 20)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--max-seconds", type=float, default=420.0, help="hard cap on the run")
    parser.add_argument("--keep", type=Path, default=None, help="copy logs into this directory")
    args = parser.parse_args(argv)
    facts = machine_facts()
    print(f"crash_restart: {args.kills} kills, seed {args.seed}")
    print(f"machine: {facts['nproc']} x {facts['cpu']}, Python {facts['python']}")
    with tempfile.TemporaryDirectory(prefix="kasmm-crash-") as tmp_name:
        tmp = Path(tmp_name)
        result = run(args, tmp)
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            for path in tmp.glob("*.jsonl"):
                (args.keep / path.name).write_bytes(path.read_bytes())
    figures = result["figures"]
    print()
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key.ljust(width)}  {value}")
    print_json_line(
        {"machine": facts, "kills_requested": args.kills, **figures, "runs": result["runs"]}
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
