"""Requote latency: book update -> every order action of the round acknowledged.

One bot on the simulated venue in **real time**, the venue adding a fixed latency to every
request (``venue.latency_ms``: a stand-in for an exchange round trip; 5, 25 and 50 ms), with
1 and 3 levels a side, on a market that moves enough on every book update (``sigma_bps`` 40,
``tolerance_bps`` 0.5, no requote throttle) that each round replaces every order: 2 x levels
cancels and 2 x levels placements. For each round that did so, the bench records

* the time from the bot taking the book update to the round's last action acknowledged
  (``Executor.execute`` returning), in ms and in round trips (ms / latency);
* the requests the round sent to the venue (each batch request or single request counts one).

Each configuration runs twice in the same process, side by side: the executor as it is (a
round's actions in waves, every action of a wave in flight at once) and the sequential
executor (one action at a time, the baseline: what every round cost before). Target: p50 at
most 1.5 round trips for 3 levels, with no more requests than the baseline.

    .venv/bin/python bench/requote.py [--rounds 40] [--latencies 5,25,50] [--levels 1,3]

Figures only: no assertion is made on timings.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
from _common import (
    OtherLoad,
    machine_facts,
    percentile,
    print_json_line,
    print_table,
    quiet_logging,
)

from kasmm.bot import Bot
from kasmm.clock import RealClock
from kasmm.config.loader import load_file
from kasmm.config.schema import SimVenueConfig
from kasmm.core.types import BookUpdated, ClientOrderId, OpenOrder, OrderRequest, VenueEvent
from kasmm.venues.base import CancelOutcome, PlaceOutcome
from kasmm.venues.decorator import VenueDecorator
from kasmm.venues.sim import SimVenue


def profile_yaml(latency_ms: float, levels: int) -> str:
    return f"""\
name: requote
venue:
  type: sim
  latency_ms: {latency_ms}
  seed: 11
  market: {{book_interval_s: 0.35, sigma_bps: 40, taker_rate_per_s: 0.01}}
  balances: {{KAS: 1000000, USDT: 100000}}
symbol: KAS/USDT
modes:
  aggressive: {{spread_bps: 20, size: 1000, levels: {levels}, level_step_bps: 5}}
  passive: {{spread_bps: 20, size: 1000, levels: {levels}, level_step_bps: 5}}
refresh: {{tolerance_bps: 0.5, min_requote_interval_s: 0, fallback_interval_s: 30}}
rate_limit: {{capacity: 100000, refill_per_s: 100000}}
kill_switch: {{stale_book: null, max_order_actions_per_minute: null}}
"""


class CountingVenue(VenueDecorator):
    """Counts the requests that reach the simulated venue (a batch request counts once)."""

    def __init__(self, inner: SimVenue) -> None:
        super().__init__(inner)
        self.sim = inner
        self.requests = 0

    async def place_orders(self, requests: Sequence[OrderRequest]) -> list[PlaceOutcome]:
        limits = self.sim.batch_limits.place
        self.requests += len(requests) if limits <= 1 else -(-len(requests) // limits)
        return await self.sim.place_orders(requests)

    async def cancel_orders(self, client_ids: Sequence[ClientOrderId]) -> list[CancelOutcome]:
        limits = self.sim.batch_limits.cancel
        self.requests += len(client_ids) if limits <= 1 else -(-len(client_ids) // limits)
        return await self.sim.cancel_orders(client_ids)

    async def place_order(self, request: OrderRequest) -> OpenOrder:
        self.requests += 1
        return await self.sim.place_order(request)

    async def cancel_order(self, client_id: ClientOrderId) -> None:
        self.requests += 1
        await self.sim.cancel_order(client_id)


async def measure(latency_ms: float, levels: int, rounds: int, sequential: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "requote.yaml"
        path.write_text(profile_yaml(latency_ms, levels))
        loaded, issues = load_file(path)
        assert not issues, issues
        profile = loaded[0].profile
    assert isinstance(profile.venue, SimVenueConfig)
    clock = RealClock()
    venue = CountingVenue(SimVenue(profile.venue, profile.symbol, clock))
    bot = Bot(profile, venue, clock=clock)
    bot.executor.sequential = sequential
    full = 4 * levels
    durations: list[float] = []
    requests: list[int] = []
    book_at: list[float] = []
    handle, execute = bot.on_event, bot.executor.execute

    async def on_event(event: VenueEvent) -> None:
        if isinstance(event, BookUpdated):
            book_at.append(time.perf_counter())
        await handle(event)

    async def timed_execute(actions: Any) -> None:
        before = venue.requests
        await execute(actions)
        if len(actions) == full and book_at:
            durations.append((time.perf_counter() - book_at[-1]) * 1000)
            requests.append(venue.requests - before)

    bot.on_event = on_event  # type: ignore[method-assign]
    bot.executor.execute = timed_execute  # type: ignore[method-assign]
    with anyio.move_on_after(rounds * 0.35 * 4 + 30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(bot.run)
            while len(durations) < rounds + 3:
                await anyio.sleep(0.05)
            tg.cancel_scope.cancel()
    measured = sorted(durations[3:])  # the first rounds warm up (imports, caches)
    rt = latency_ms
    return {
        "latency_ms": latency_ms,
        "levels": levels,
        "executor": "sequential" if sequential else "waves",
        "rounds": len(measured),
        "p50_ms": percentile(measured, 50),
        "p90_ms": percentile(measured, 90),
        "p99_ms": percentile(measured, 99),
        "p50_rt": percentile(measured, 50) / rt,
        "p90_rt": percentile(measured, 90) / rt,
        "p99_rt": percentile(measured, 99) / rt,
        "requests_per_round": sum(requests[3:]) / max(1, len(requests[3:])),
    }


async def main(args: argparse.Namespace) -> None:
    quiet_logging("warning")
    print_json_line({"bench": "requote", "machine": machine_facts()})
    load = OtherLoad()
    rows = []
    for latency in [float(x) for x in args.latencies.split(",")]:
        for levels in [int(x) for x in args.levels.split(",")]:
            for sequential in (True, False):
                result = await measure(latency, levels, args.rounds, sequential)
                print_json_line(result)
                rows.append(
                    [
                        result["latency_ms"],
                        result["levels"],
                        result["executor"],
                        result["rounds"],
                        result["p50_ms"],
                        result["p90_ms"],
                        result["p99_ms"],
                        result["p50_rt"],
                        result["p90_rt"],
                        result["p99_rt"],
                        result["requests_per_round"],
                    ]
                )
    print()
    print_table(
        [
            "latency ms",
            "levels",
            "executor",
            "rounds",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "p50 RT",
            "p90 RT",
            "p99 RT",
            "requests/round",
        ],
        rows,
    )
    print(f"\nother load on the machine meanwhile: {load.cores():.2f} cores")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--latencies", default="5,25,50")
    parser.add_argument("--levels", default="1,3")
    anyio.run(main, parser.parse_args())
