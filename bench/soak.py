"""Soak: many sim profiles under one supervisor, every venue made unreliable and hostile.

``--profiles`` (default 24) random-walk sim profiles run under one in-process ``Supervisor`` (real
time, a real SQLite ledger in a temporary state directory, ``RestartPolicy`` with short
backoffs). The venue factory wraps each profile's ``SimVenue`` in a ``FaultyVenue``
(``tests/faults.py``: test equipment, outside the package) and then in the production wrappers
(request deadline, token bucket), so about ``--fault-rate`` (10 %) of all venue calls fail: answers
lost after the order was placed or cancelled, requests lost before, 429s, resets, maintenance,
refused funds, cancels answered "unknown order" whether or not they went through, latency spikes.
The streams drop (websocket disconnects, quiet ends), stall, send books out of order or crossed,
deliver fills twice, late and split into parts, and carry hostile data (NaN prices, negative sizes,
empty books, absurd jumps) at ``--hostile-rate`` per book.

One exchange per profile: the ``SimVenue`` and its ``FaultyVenue`` live as long as the run, and a
restarted bot reconnects to the same one (its open orders, balances and undelivered events are
still there), as a restarted process reconnects to its exchange account.

Some profiles carry tight kill switches that must trip (consecutive errors, mid jump, stale book,
drawdown, daily loss, order actions per minute, inventory deviation); the ledger's risk events
tell whether they did.

Figures (printed, and as one JSON object on the last line):

* supervisor crashes: exceptions that escaped ``Supervisor.run`` (expected 0);
* venue calls, faulted calls and their share, faults per kind;
* orphaned orders after shutdown: open orders with a profile's prefix left at its ``SimVenue``
  after the supervisor stopped (expected 0);
* fills: delivered by each ``SimVenue`` vs recorded in ``Ledger.fills(profile)`` (split parts
  merged back by trade id), lost and doubled (expected 0 and 0), and executed by the sim but
  still undelivered when the run stopped;
* duplicate client ids: a client id sent to a venue's ``place_order`` twice (expected 0);
* tracking: every 0.5 s each venue's open orders of a profile are compared with what its bot
  believes rests. An order resting unknown to its bot for more than 5 s ("untracked": exposure
  the bot ignores, e.g. after a lost answer whose lookup failed, or a cancel answered "unknown
  order" that did not go through) and an order the bot believes rests that is gone for more
  than 5 s ("phantom") are counted, with the longest such time;
* kill switches expected to trip / tripped;
* profile restarts, profiles that recovered (quoting again after their last restart), profiles
  given up (state ``failed``), and the causes of the failures, from the log.

    .venv/bin/python bench/soak.py                 # ~4 minutes
    .venv/bin/python bench/soak.py --short         # ~35 seconds (what CI runs)

Bounded: the run stops after ``--seconds`` plus at most ~30 s of shutdown, whatever happens.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import tempfile
import textwrap
import time
from collections import Counter, defaultdict
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
from _common import OtherLoad, machine_facts, print_json_line, print_table

from kasmm.clock import Clock
from kasmm.config.loader import load_paths
from kasmm.config.schema import Profile, SimVenueConfig
from kasmm.core.types import OpenOrder, OrderFilled, OrderRequest, VenueEvent
from kasmm.limiter import TokenBucket
from kasmm.obs.logs import configure_logging
from kasmm.store import AsyncLedger, Ledger
from kasmm.supervisor import RestartPolicy, Supervisor
from kasmm.venues.base import PlaceOutcome, Venue
from kasmm.venues.decorator import VenueDecorator
from kasmm.venues.guard import TimeoutVenue
from kasmm.venues.limited import RateLimitedVenue
from kasmm.venues.sim import SimVenue

# The fault injector is test equipment (tests/faults.py), not part of the kasmm package; this
# script runs as ``python bench/soak.py``, so the repo root goes on the path for it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.faults import FaultCounters, FaultPlan, FaultyVenue, base_trade_id

#: Deadline of one venue request in the soak (production uses 5 s for sim venues).
REQUEST_TIMEOUT_S = 1.0
#: Wall-clock budget for the supervisor to stop after the run (each bot has a 10 s deadline).
STOP_BUDGET_S = 30.0


# --- the venue side -----------------------------------------------------------------------


class Tap(VenueDecorator):
    """Sits directly on a ``SimVenue``: records what really reached it and what it delivered."""

    def __init__(self, inner: SimVenue) -> None:
        super().__init__(inner)
        self.placed: Counter[str] = Counter()
        self.delivered: dict[str, Decimal] = {}
        self.delivered_twice = 0

    async def events(self) -> AsyncGenerator[VenueEvent, None]:
        async for event in self.inner.events():
            if isinstance(event, OrderFilled):
                tid = str(event.fill.trade_id)
                if tid in self.delivered:
                    self.delivered_twice += 1
                self.delivered[tid] = event.fill.size
            yield event

    async def place_order(self, request: OrderRequest) -> OpenOrder:
        self.placed[request.client_id] += 1
        return await self.inner.place_order(request)

    async def place_orders(self, requests: Sequence[OrderRequest]) -> list[PlaceOutcome]:
        for request in requests:
            self.placed[request.client_id] += 1
        return await self.inner.place_orders(requests)


@dataclass
class Exchange:
    """One profile's venue for the whole run."""

    sim: SimVenue
    tap: Tap
    faulty: FaultyVenue
    built: int = 0


@dataclass
class SoakVenues:
    """The supervisor's venue factory: one persistent exchange per profile."""

    plans: dict[str, FaultPlan]
    seed: int
    exchanges: dict[str, Exchange] = field(default_factory=dict)

    def factory(self, profile: Profile, clock: Clock, limiter: TokenBucket) -> Venue:
        assert isinstance(profile.venue, SimVenueConfig)
        ex = self.exchanges.get(profile.name)
        if ex is None:
            sim = SimVenue(profile.venue, profile.symbol, clock)
            tap = Tap(sim)
            rng = random.Random(f"{self.seed}:{profile.name}")
            faulty = FaultyVenue(tap, self.plans[profile.name], rng, clock)
            ex = self.exchanges[profile.name] = Exchange(sim, tap, faulty)
        ex.built += 1
        return RateLimitedVenue(TimeoutVenue(ex.faulty, REQUEST_TIMEOUT_S), limiter)


# --- profiles -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    name: str
    seed: int
    kill_switch: str = "{}"
    market: str = "{sigma_bps: 6, book_interval_s: 0.1, taker_rate_per_s: 3}"
    refresh: str = (
        "{tolerance_bps: 1, min_requote_interval_s: 0.1, fallback_interval_s: 0.3,"
        " max_order_age_s: 20}"
    )
    rate_limit: str = "{capacity: 60, refill_per_s: 30}"
    #: Kill-switch rules that must trip during the run.
    expect: tuple[str, ...] = ()
    plan_overrides: tuple[tuple[str, float], ...] = ()


def specs(n: int) -> list[Spec]:
    """``n`` profiles: the first seven with tight kill switches that must trip."""
    tight = [
        Spec(
            "ks-errors",
            101,
            kill_switch="{max_consecutive_errors: {count: 2, action: halt}}",
            expect=("max_consecutive_errors",),
            plan_overrides=(("network", 0.2), ("rate_limited", 0.1)),
        ),
        Spec(
            "ks-jump",
            102,
            kill_switch="{mid_jump: {pct: 5, action: pause, pause_s: 1}}",
            expect=("mid_jump",),
            plan_overrides=(("absurd_jump", 0.03), ("book_crossed", 0.01)),
        ),
        Spec(
            "ks-stale",
            103,
            kill_switch="{stale_book: {seconds: 0.8, action: pause, pause_s: 1}}",
            expect=("stale_book",),
            plan_overrides=(("stale", 0.02), ("stale_s", 1.5)),
        ),
        Spec(
            "ks-drawdown",
            104,
            kill_switch="{max_drawdown: {quote: 3, action: halt}}",
            market="{sigma_bps: 15, book_interval_s: 0.1, taker_rate_per_s: 3}",
            expect=("max_drawdown",),
        ),
        Spec(
            "ks-daily",
            105,
            # A wild market: equity dips 1 USDT below the day's start within seconds, almost
            # surely (a symmetric walk of ~5 USDT steps), whichever way the mid goes after.
            kill_switch="{max_daily_loss: {quote: 1, action: pause, pause_s: 2}}",
            market="{sigma_bps: 40, book_interval_s: 0.1, taker_rate_per_s: 3}",
            expect=("max_daily_loss",),
        ),
        Spec(
            "ks-actions",
            106,
            kill_switch="{max_order_actions_per_minute: {count: 60, action: halt}}",
            expect=("max_order_actions_per_minute",),
        ),
        Spec(
            "ks-inventory",
            107,
            kill_switch="{max_inventory_deviation: {share: 0.02, action: reduce_only}}",
            market="{sigma_bps: 6, book_interval_s: 0.1, taker_rate_per_s: 4}",
            expect=("max_inventory_deviation",),
        ),
    ]
    # mid_jump is on by default and pauses 30 s after each absurd book the hostile feed sends:
    # in a short soak a rule profile could spend its whole window paused and never reach its
    # own limit. The rule profiles pause 1 s on a jump (as ks-jump does); the others keep the
    # default, as a user's profiles would.
    tight = [
        s if "mid_jump" in s.kill_switch else replace(s, kill_switch=_with_short_jump(s))
        for s in tight
    ]
    out = tight[: min(n, len(tight))]
    out += [Spec(f"mm-{i:02d}", 200 + i) for i in range(max(0, n - len(out)))]
    return out


def _with_short_jump(spec: Spec) -> str:
    """``spec``'s kill-switch mapping plus a mid_jump rule that pauses 1 s."""
    rules = spec.kill_switch.strip()
    assert rules.startswith("{") and rules.endswith("}"), rules
    inner = rules[1:-1].strip()
    jump = "mid_jump: {pct: 5, action: pause, pause_s: 1}"
    return "{" + (f"{inner}, {jump}" if inner else jump) + "}"


def profile_yaml(spec: Spec) -> str:
    return textwrap.dedent(
        f"""\
        name: {spec.name}
        venue:
          type: sim
          market: {spec.market}
          seed: {spec.seed}
        symbol: KAS/USDT
        modes:
          aggressive: {{spread_bps: 8, size: 1500, levels: 2, level_step_bps: 4}}
          passive: {{spread_bps: 12, size: 1500, levels: 2, level_step_bps: 4}}
        mode: passive
        refresh: {spec.refresh}
        rate_limit: {spec.rate_limit}
        kill_switch: {spec.kill_switch}
        """
    )


def plan_for(spec: Spec, rate: float, hostile: float) -> FaultPlan:
    plan = FaultPlan.uniform(
        rate,
        disconnect=0.0003,
        stream_end=0.0001,
        nan_price=hostile,
        negative_size=hostile,
        empty_book=hostile,
        absurd_jump=hostile / 4,
    )
    overrides: dict[str, Any] = dict(spec.plan_overrides)  # probabilities and durations
    return replace(plan, **overrides)


# --- the run ------------------------------------------------------------------------------


@dataclass
class Tracking:
    """Orders whose venue and bot views disagree, and since when (monotonic seconds)."""

    untracked_since: dict[tuple[str, str], float] = field(default_factory=dict)
    phantom_since: dict[tuple[str, str], float] = field(default_factory=dict)
    untracked_ages: list[float] = field(default_factory=list)
    phantom_ages: list[float] = field(default_factory=list)

    async def sample(self, sup: Supervisor, venues: SoakVenues) -> None:
        now = time.monotonic()
        seen_untracked: set[tuple[str, str]] = set()
        seen_phantom: set[tuple[str, str]] = set()
        for name, ex in venues.exchanges.items():
            slot = sup.slots.get(name)
            bot = slot.bot if slot is not None else None
            if bot is None or bot.state.value != "quoting":
                continue
            prefix = bot.profile.client_id_prefix
            try:  # no await inside: the bot cannot act between the two reads
                at_venue = {o.client_id for o in await ex.sim.fetch_open_orders()}
            except Exception:
                continue  # closed between restarts
            mine = {c for c in at_venue if c.startswith(prefix)}
            view = bot.view()
            believed = {o.client_id for o in (*view.bids, *view.asks)}
            seen_untracked |= {(name, c) for c in mine - believed}
            seen_phantom |= {(name, c) for c in believed - at_venue}
        self._fold(self.untracked_since, seen_untracked, self.untracked_ages, now)
        self._fold(self.phantom_since, seen_phantom, self.phantom_ages, now)

    @staticmethod
    def _fold(
        since: dict[tuple[str, str], float],
        seen: set[tuple[str, str]],
        ages: list[float],
        now: float,
    ) -> None:
        for key in list(since):
            if key not in seen:
                ages.append(now - since.pop(key))
        for key in seen:
            since.setdefault(key, now)

    def close(self) -> None:
        now = time.monotonic()
        self._fold(self.untracked_since, set(), self.untracked_ages, now)
        self._fold(self.phantom_since, set(), self.phantom_ages, now)


async def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    directory = tmp / "profiles"
    directory.mkdir()
    state = tmp / "state"
    state.mkdir()
    all_specs = specs(args.profiles)
    for spec in all_specs:
        (directory / f"{spec.name}.yaml").write_text(profile_yaml(spec))
    plans = {s.name: plan_for(s, args.fault_rate, args.hostile_rate) for s in all_specs}
    load = load_paths([directory], env={})
    assert not load.issues, load.issues
    prefixes = {name: lp.profile.client_id_prefix for name, lp in load.profiles.items()}
    venues = SoakVenues(plans, args.seed)
    restart = RestartPolicy(
        initial_s=0.25, factor=2.0, max_s=2.0, max_restarts=8, healthy_after_s=5
    )
    crashes: list[str] = []
    tracking = Tracking()
    lags: list[float] = []
    other = OtherLoad()
    t0 = time.monotonic()
    with Ledger(state / "kasmm.sqlite") as ledger:
        sup = Supervisor(
            directory, venue_factory=venues.factory, restart=restart, ledger=AsyncLedger(ledger)
        )

        async def supervisor_task(*, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
            try:
                await sup.run(task_status=task_status)
            except Exception as exc:  # a supervisor crash: the figure that must stay 0
                crashes.append(f"{type(exc).__name__}: {exc}")
                task_status.started()

        async def probe() -> None:
            while True:
                a = time.perf_counter()
                await anyio.sleep(0.01)
                lags.append(max(0.0, time.perf_counter() - a - 0.01))

        async with anyio.create_task_group() as tg:
            tg.start_soon(probe)
            with anyio.fail_after(60):
                await tg.start(supervisor_task)
            started_s = time.monotonic() - t0
            deadline = t0 + args.seconds
            seen_quoting: dict[str, int] = {}  # restarts count last seen while quoting
            last_restart_at: dict[str, float] = {}
            restarts_seen: dict[str, int] = {}

            def observe() -> None:
                now = time.monotonic()
                for name, slot in sup.slots.items():
                    if slot.restarts != restarts_seen.get(name, 0):
                        restarts_seen[name] = slot.restarts
                        last_restart_at[name] = now
                    if slot.bot is not None and slot.bot.state.value == "quoting":
                        seen_quoting[name] = slot.restarts

            while time.monotonic() < deadline - 3.0:
                await anyio.sleep(min(0.5, max(0.0, deadline - 3.0 - time.monotonic())))
                observe()
                await tracking.sample(sup, venues)
                if args.progress:
                    calls = sum(e.faulty.counters.total_calls for e in venues.exchanges.values())
                    print(f"  t={time.monotonic() - t0:5.1f}s calls={calls}", file=sys.stderr)
            while time.monotonic() < deadline:
                await anyio.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
                observe()
                await tracking.sample(sup, venues)
            tracking.close()
            run_s = time.monotonic() - t0
            status_before_stop = {
                name: (
                    slot.state
                    if slot.state in ("failed", "restarting") or slot.bot is None
                    else slot.bot.state.value,
                    slot.restarts,
                    slot.bot is not None and slot.bot.view().counters.decisions,
                )
                for name, slot in sup.slots.items()
            }
            bots = {name: slot.bot for name, slot in sup.slots.items()}
            stop_t = time.monotonic()
            tg.cancel_scope.cancel()
        stop_s = time.monotonic() - stop_t
        other_cores = other.cores()

        # --- after the supervisor stopped --------------------------------------------------
        rows: list[list[Any]] = []
        totals: Counter[str] = Counter()
        counters = FaultCounters()
        trips_expected = trips_ok = 0
        missing_trips: list[str] = []
        per_profile: dict[str, Any] = {}
        for spec in all_specs:
            ex = venues.exchanges.get(spec.name)
            if ex is None:
                continue
            counters.merge(ex.faulty.counters)
            await ex.sim.connect()  # the bot closed it on the way out; reopen to inspect
            prefix = prefixes[spec.name]
            orphans = len(
                [o for o in await ex.sim.fetch_open_orders() if o.client_id.startswith(prefix)]
            )
            ledger_fills = ledger.fills(spec.name)
            merged: dict[str, Decimal] = defaultdict(Decimal)
            for f in ledger_fills:
                merged[base_trade_id(str(f.trade_id))] += f.size
            delivered = ex.tap.delivered
            in_flight = {
                str(e.fill.trade_id)
                for e in (*ex.faulty.pending_events(),)
                if isinstance(e, OrderFilled)
            }
            lost = [t for t in delivered if t not in merged and t not in in_flight]
            doubled = [t for t in merged if t in delivered and merged[t] > delivered[t]]
            unknown = [t for t in merged if t not in delivered]
            short = [t for t in merged if t in delivered and merged[t] < delivered[t]]
            # Executed by the sim but not handed to the bot when the run stopped: still queued in
            # the sim, or held back by the injected reordering (a real exchange would deliver
            # them from its trade history on the next start).
            undelivered = ex.sim.fills_total - len(delivered) + len(in_flight - set(merged))
            delivered_to_bot = len(delivered) - len(in_flight - set(merged))
            dup_cids = sum(1 for n in ex.tap.placed.values() if n > 1)
            events = ledger.risk_events(spec.name)
            tripped = sorted({e.rule for e in events if e.kind == "trip"})
            for rule in spec.expect:
                trips_expected += 1
                if rule in tripped:
                    trips_ok += 1
                else:
                    missing_trips.append(f"{spec.name}:{rule}")
            state_, restarts, _decisions = status_before_stop.get(spec.name, ("?", 0, 0))
            bot = bots.get(spec.name)
            # Recovered: seen quoting again after its last restart. A restart in the last 3 s
            # is too recent to judge ("in progress"), unless it already quotes again.
            recovered = restarts > 0 and seen_quoting.get(spec.name, -1) == restarts
            in_progress = (
                restarts > 0
                and not recovered
                and state_ != "failed"
                and stop_t - last_restart_at.get(spec.name, 0.0) < 3.0
            )
            totals.update(
                orphans=orphans,
                venue_fills=len(delivered),
                to_bot=delivered_to_bot,
                ledger_fills=len(merged),
                ledger_rows=len(ledger_fills),
                lost=len(lost),
                doubled=len(doubled) + len(unknown),
                short=len(short),
                undelivered=undelivered,
                dup_cids=dup_cids,
                restarts=restarts,
                recovered=int(recovered),
                recovering=int(in_progress),
                restarted_profiles=int(restarts > 0),
                failed=int(state_ == "failed"),
                venues_built=ex.built,
                placed=sum(ex.tap.placed.values()),
            )
            per_profile[spec.name] = {
                "calls": ex.faulty.counters.total_calls,
                "faulted": ex.faulty.counters.faulted_calls,
                "orphans": orphans,
                "venue_fills": len(delivered),
                "ledger_fills": len(merged),
                "ledger_rows": len(ledger_fills),
                "lost": len(lost),
                "lost_ids": lost[:10],
                "doubled": len(doubled) + len(unknown),
                "undelivered": undelivered,
                "dup_client_ids": dup_cids,
                "tripped": tripped,
                "expected": list(spec.expect),
                "restarts": restarts,
                "state": state_,
                "trading_state": bot.view().trading_state.value if bot else None,
            }
            rows.append(
                [
                    spec.name,
                    ex.faulty.counters.total_calls,
                    ex.faulty.counters.faulted_calls,
                    len(delivered),
                    len(merged),
                    len(lost),
                    len(doubled) + len(unknown),
                    orphans,
                    restarts,
                    state_,
                    ",".join(r.split("_")[-1] for r in tripped) or "-",
                ]
            )
            await ex.sim.close()

    failures = failure_causes(args.log_path)
    calls = counters.total_calls
    return {
        "rows": rows,
        "figures": {
            "profiles": len(all_specs),
            "seconds": round(run_s, 1),
            "startup_s": round(started_s, 2),
            "stop_s": round(stop_s, 2),
            "supervisor_crashes": len(crashes),
            "crash_messages": crashes,
            "supervisor_exit_code": sup.exit_code,
            "venue_calls": calls,
            "faulted_calls": counters.faulted_calls,
            "faulted_share": round(counters.faulted_calls / calls, 4) if calls else None,
            "faults": dict(sorted(counters.faults.items())),
            "calls_by_method": dict(sorted(counters.calls.items())),
            "orders_placed_at_venues": totals["placed"],
            "orphaned_orders_after_shutdown": totals["orphans"],
            "fills_at_venues": totals["venue_fills"],
            "fills_delivered_to_bots": totals["to_bot"],
            "fills_in_ledger": totals["ledger_fills"],
            "ledger_fill_rows": totals["ledger_rows"],
            "fills_lost": totals["lost"],
            "fills_doubled": totals["doubled"],
            "fills_short": totals["short"],
            "fills_executed_not_delivered_at_stop": totals["undelivered"],
            "duplicate_client_ids": totals["dup_cids"],
            "untracked_orders_over_5s": sum(a > 5 for a in tracking.untracked_ages),
            "untracked_longest_s": round(max(tracking.untracked_ages, default=0.0), 1),
            "phantom_orders_over_5s": sum(a > 5 for a in tracking.phantom_ages),
            "phantom_longest_s": round(max(tracking.phantom_ages, default=0.0), 1),
            "kill_switches_expected": trips_expected,
            "kill_switches_tripped": trips_ok,
            "kill_switches_missing": missing_trips,
            "profile_restarts": totals["restarts"],
            "profiles_restarted": totals["restarted_profiles"],
            "profiles_recovered": totals["recovered"],
            "profiles_restart_in_progress_at_stop": totals["recovering"],
            "profiles_failed": totals["failed"],
            "failure_causes": failures,
            "loop_lag_p99_ms": round(_pct(lags, 99) * 1e3, 2),
            "loop_lag_max_ms": round(max(lags, default=0.0) * 1e3, 2),
            "other_load_cores": round(other_cores, 2),
        },
        "per_profile": per_profile,
    }


_EXC_LINE = re.compile(
    r"^[\s|]*([A-Za-z_][\w.]*(?:Error|Exception|Operation|EndOfStream|TimedOut|Limited|Funds"
    r"|NotFound|Failed|Rejected))(?::\s*(.*))?$"
)


def failure_causes(log_path: Path) -> dict[str, int]:
    """Root causes of ``profile_failed`` events in the JSON log (innermost exception, first words;
    an ``ExceptionGroup`` is looked through)."""
    causes: Counter[str] = Counter()
    with log_path.open() as fh:
        for line in fh:
            if '"profile_failed"' not in line:
                continue
            try:
                event = json.loads(line)
            except ValueError:
                continue
            cause = str(event.get("error", "?"))
            for tb_line in str(event.get("exception", "")).splitlines():
                match = _EXC_LINE.match(tb_line)
                if match and not match.group(1).endswith("ExceptionGroup"):
                    words = " ".join((match.group(2) or "").split()[:4])
                    cause = f"{match.group(1).rsplit('.', 1)[-1]}: {words}"
            causes[cause[:80]] += 1
    return dict(causes.most_common())


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--short", action="store_true", help="CI variant: 20 profiles, 35 s")
    parser.add_argument("--profiles", type=int, default=None, help="default 24 (short: 20)")
    parser.add_argument("--seconds", type=float, default=None, help="default 240 (short: 35)")
    parser.add_argument("--fault-rate", type=float, default=0.10)
    parser.add_argument("--hostile-rate", type=float, default=0.0005, help="per book, per kind")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--progress", action="store_true", help="progress lines on stderr")
    parser.add_argument("--keep", type=Path, default=None, help="copy the log here")
    args = parser.parse_args(argv)
    args.profiles = args.profiles or (20 if args.short else 24)
    args.seconds = args.seconds or (35.0 if args.short else 240.0)
    if args.profiles < 20:
        print("note: fewer than 20 profiles", file=sys.stderr)
    facts = machine_facts()
    print(f"soak: {args.profiles} profiles, {args.seconds:.0f} s, fault rate {args.fault_rate}")
    print(f"machine: {facts['nproc']} x {facts['cpu']}, Python {facts['python']}")
    with tempfile.TemporaryDirectory(prefix="kasmm-soak-") as tmp_name:
        tmp = Path(tmp_name)
        args.log_path = tmp / "soak.jsonl"
        with args.log_path.open("w") as log_stream:
            configure_logging(fmt="json", level=args.log_level, stream=log_stream)
            result = anyio.run(run, args, tmp)
        if args.keep is not None:
            args.keep.write_bytes(args.log_path.read_bytes())
    print()
    print_table(
        [
            "profile",
            "calls",
            "faulted",
            "venue fills",
            "ledger fills",
            "lost",
            "doubled",
            "orphans",
            "restarts",
            "state",
            "tripped",
        ],
        result["rows"],
    )
    print()
    figures = result["figures"]
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key.ljust(width)}  {value}")
    print_json_line(
        {
            "machine": facts,
            "args": _plain_args(args),
            **figures,
            "per_profile": result["per_profile"],
        }
    )
    return 0


def _plain_args(args: argparse.Namespace) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}


if __name__ == "__main__":
    sys.exit(main())
