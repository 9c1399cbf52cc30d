"""Reaction time of one bot: book update received -> first order action handed to the venue.

A ``Supervisor`` on a ``VirtualClock`` runs one random-walk sim profile, so the bot and its venue
wrappers (token bucket, request deadline, metering: whatever the supervisor and ``build_venue``
put around a venue) are exactly those of production, market time jumps, and the run is fast and
deterministic; every latency below is real CPU time (``time.perf_counter_ns``). The venue factory
is ``build_venue`` with a recording wrapper as its inner venue, directly above the ``SimVenue``:

* when its ``events()`` yields a ``BookUpdated`` it notes the time;
* when a placement or cancel (single or batch) is entered it notes the time, once per book
  event.

For each book event that triggered order actions, latency = first action - yield. It covers the
bot's whole data path: event dispatch, the book and volatility update, the decision
(``Engine.decide``: quoting, risk gate, reconciliation) and every wrapper above the sim venue.
``Engine.decide`` is also timed on its own (a thin wrapper on the engine instance; ~0.1 us
overhead). A compiled engine (``make native``) cannot be wrapped: the decision is then timed
from the bot's side, from the start of its round (``Bot._requote``: the periodic jobs' check,
then the decision) to what follows it: its first outbox (``Bot._carry_out``), else its
execution of the actions (``Executor.execute``: an empty outbox is skipped), else the journal's
flush, wrappers on the bot's instances
(~1 us overhead; the JSON says which in ``decide_timed_by``). If neither can be wrapped
(another version of kasmm), those figures are ``-`` and the reaction is still measured.

The market moves enough to requote often (``sigma_bps`` 20, ``tolerance_bps`` 1,
``min_requote_interval_s`` 0) and the rate limit never binds.

    .venv/bin/python bench/reaction.py [--events 20000] [--warmup 1000] [--seed 7]
                                       [--baseline-ref 20a32b3] [--no-source]

``--baseline-ref REF`` runs the same measurement first with ``kasmm`` imported from a ``git
worktree`` of ``REF`` (``bench/_baseline.py``; this script, the old package) and prints both
columns and the speed-up (baseline / this tree: above 1 means this tree reacts faster). When this
tree runs the compiled hot path (``make native``), its Python source is measured too
(``KASMM_PURE=1``) as a column of its own; its decision is timed from the bot's side (above).

Figures only: no assertion is made on timings.
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from pathlib import Path
from typing import Any, TypeVar

import anyio
from _baseline import hot_path, ratio, run_on_ref, run_source
from _common import (
    OtherLoad,
    machine_facts,
    percentile,
    print_json_line,
    print_table,
    quiet_logging,
    sim_profile_yaml,
    wait_for_idle,
    write_atomic,
)

import kasmm
from kasmm.clock import Clock, VirtualClock
from kasmm.config.schema import Profile
from kasmm.core.types import (
    BookUpdated,
    VenueEvent,
)
from kasmm.limiter import TokenBucket
from kasmm.supervisor import Supervisor
from kasmm.venues.base import Venue
from kasmm.venues.decorator import VenueDecorator
from kasmm.venues.factory import build_inner_venue, build_venue
from kasmm.venues.sim import SimVenue

ns = time.perf_counter_ns
T = TypeVar("T")
#: Venue calls that are order actions, by kind (batch calls count like single ones).
_ACTIONS = {
    "place_order": "place",
    "place_orders": "place",
    "cancel_order": "cancel",
    "cancel_orders": "cancel",
}


class ReactionVenue(VenueDecorator):
    """Venue wrapper that timestamps book events out and the first order action back in."""

    def __init__(self, inner: Venue, book_events: int, done: anyio.Event) -> None:
        super().__init__(inner)
        self.limit = book_events
        self.done = done
        self.books = 0
        self.fills = 0
        self._yield_ns = 0
        self._waiting = False  # the current book event has not produced an action yet
        #: (book event index, yield ns, first action ns, "place"/"cancel")
        self.reactions: list[tuple[int, int, int, str]] = []
        #: called with (yield ns, first action ns) right after each reaction is recorded
        self.on_reaction: Callable[[int, int], None] | None = None

    async def _call(
        self,
        method: str,
        call: Callable[[], Awaitable[T]],
        *,
        weight: float = 1.0,
        arg: object = None,
    ) -> T:
        kind = _ACTIONS.get(method)
        if kind is not None:
            self._action(kind)
        return await call()

    async def events(self) -> AsyncGenerator[VenueEvent, None]:
        async with aclosing(self.inner.events()) as events:
            async for event in events:
                if isinstance(event, BookUpdated):
                    if self.books >= self.limit:
                        self.done.set()
                        return  # the bot's run ends; it then cancels its orders
                    self.books += 1
                    self._waiting = True
                    self._yield_ns = ns()
                else:
                    self.fills += 1
                    self._waiting = False  # actions after a fill are not a book reaction
                yield event

    def _action(self, kind: str) -> None:
        if self._waiting:
            t = ns()
            self._waiting = False
            self.reactions.append((self.books, self._yield_ns, t, kind))
            if self.on_reaction is not None:
                self.on_reaction(self._yield_ns, t)


def reaction_profile(seed: int) -> str:
    return sim_profile_yaml(
        "react",
        seed=seed,
        market="{model: random_walk, sigma_bps: 20, book_interval_s: 0.1}",
        refresh="{tolerance_bps: 1, min_requote_interval_s: 0, fallback_interval_s: 2}",
        rate_limit="{capacity: 1000000, refill_per_s: 1000000}",
        strategy="{type: fixed_spread}",
    )


def summary_us(values_ns: list[int]) -> dict[str, float]:
    v = sorted(values_ns)
    return {
        "count": len(v),
        "p50_us": percentile(v, 50) / 1e3,
        "p90_us": percentile(v, 90) / 1e3,
        "p99_us": percentile(v, 99) / 1e3,
        "max_us": (v[-1] / 1e3) if v else float("nan"),
        "mean_us": (sum(v) / len(v) / 1e3) if v else float("nan"),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    clock = VirtualClock(1_800_000_000.0)
    total_books = args.events + args.warmup
    done = anyio.Event()
    recorders: list[ReactionVenue] = []

    def recording(profile: Profile, clock: Clock, limiter: TokenBucket) -> Venue:
        recorder = ReactionVenue(build_inner_venue(profile, clock, limiter), total_books, done)
        recorders.append(recorder)
        return recorder

    def factory(profile: Profile, clock: Clock, limiter: TokenBucket) -> Venue:
        """What ``build_venue`` builds, with the recorder directly above the SimVenue."""
        return build_venue(profile, clock, limiter, inner=recording)

    with tempfile.TemporaryDirectory(prefix="kasmm-react-") as tmp:
        directory = Path(tmp)
        write_atomic(directory, "react", reaction_profile(args.seed))
        # The supervisor builds the bot exactly as in production (its venue wrappers, token
        # bucket, metering); a VirtualClock makes the bot drive the sim venue flat out.
        sup = Supervisor(directory, clock=clock, venue_factory=factory)
        other = OtherLoad()
        gc_before = gc.get_stats()
        wall0, cpu0 = time.perf_counter(), time.process_time()
        with anyio.fail_after(args.timeout):
            async with anyio.create_task_group() as tg:
                await tg.start(sup.run)
                bot = sup.slots["react"].bot
                assert bot is not None and len(recorders) == 1
                recorder = recorders[0]
                sim = recorder.inner
                installed_at = recorder.books  # book events the bot handled during start-up
                skip = max(args.warmup, installed_at)  # not measured

                # Time the engine's decide on this instance only (the class is untouched).
                decide_all: list[int] = []
                last_decide = [0, 0]  # start ns, end ns of the latest decide
                engine = getattr(bot, "engine", None)
                original = getattr(engine, "decide", None)

                def timed_decide(*args: Any, **kwargs: Any) -> Any:
                    # Any signature: a baseline's decide may take other arguments.
                    assert original is not None
                    t0 = ns()
                    result = original(*args, **kwargs)
                    t1 = ns()
                    last_decide[0], last_decide[1] = t0, t1
                    if recorder.books > skip:
                        decide_all.append(t1 - t0)
                    return result

                # Another kasmm version may have no Engine.decide to wrap: its figures are then
                # left empty ("-") and the reaction itself is still measured.
                decide_timed = False
                if engine is not None and callable(original):
                    try:
                        engine.decide = timed_decide
                        decide_timed = True
                    except AttributeError:  # a compiled Engine (make native): methods are fixed
                        pass
                timed_by = "Engine.decide" if decide_timed else None
                round_of = getattr(bot, "_requote", None)
                outbox_of = getattr(bot, "_carry_out", None)
                if not decide_timed and callable(round_of) and callable(outbox_of):
                    # The bot (source) around the compiled engine: a round starts with the
                    # periodic jobs' check and the decision; what the bot does next ends the
                    # decision: it carries out the engine's outbox, or (an empty outbox is
                    # skipped) executes the actions, or (neither) flushes the journal.
                    in_round = [False]

                    def decided() -> None:
                        if in_round[0]:
                            in_round[0] = False
                            last_decide[1] = t1 = ns()
                            if recorder.books > skip:
                                decide_all.append(t1 - last_decide[0])

                    def ends_decision(method: Callable[..., Awaitable[None]]) -> Any:
                        async def timed(*args: Any) -> None:
                            decided()
                            await method(*args)

                        return timed

                    async def timed_round() -> None:
                        in_round[0] = True
                        last_decide[0] = ns()
                        await round_of()

                    bot._requote = timed_round  # type: ignore[method-assign]
                    bot._carry_out = ends_decision(outbox_of)  # type: ignore[method-assign]
                    executor = getattr(bot, "executor", None)
                    journal = getattr(bot, "journal", None)
                    for owner, name in ((executor, "execute"), (journal, "flush")):
                        method = getattr(owner, name, None)
                        if callable(method):
                            setattr(owner, name, ends_decision(method))
                    decide_timed = True
                    timed_by = "Bot._requote -> first outbox, execute or flush"

                # Split each reaction: yield -> decide start, decide, decide end -> action.
                breakdown: list[tuple[int, int, int]] = []

                def on_reaction(y: int, a: int) -> None:
                    d0, d1 = last_decide
                    if recorder.books > skip and y <= d0 <= d1 <= a:
                        breakdown.append((d0 - y, d1 - d0, a - d1))

                recorder.on_reaction = on_reaction
                await done.wait()
                tg.cancel_scope.cancel()
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        gc_after = gc.get_stats()
        other_cores = other.cores()
    measured = [r for r in recorder.reactions if r[0] > skip]
    latency = [a - y for _, y, a, _ in measured]
    by_kind = {
        kind: summary_us([a - y for _, y, a, k in measured if k == kind])
        for kind in ("cancel", "place")
    }
    parts = {
        "to_decide": summary_us([b[0] for b in breakdown]),
        "decide": summary_us([b[1] for b in breakdown]),
        "after_decide": summary_us([b[2] for b in breakdown]),
    }
    assert bot is not None  # checked in the run: the narrowing does not outlive fail_after
    assert isinstance(sim, SimVenue)
    counters = bot.view().counters
    return {
        "kasmm": kasmm.__file__,
        "hot_path": hot_path(),
        "decide_timed": decide_timed,
        "decide_timed_by": timed_by,
        "book_events": recorder.books,
        "measured_book_events": recorder.books - skip,
        "fill_events": recorder.fills,
        "reaction": summary_us(latency),
        "reaction_by_first_action": by_kind,
        "reaction_breakdown": parts,
        "decide_all": summary_us(decide_all),
        "orders_placed": counters.orders_placed,
        "orders_cancelled": counters.orders_cancelled,
        "orders_rejected": counters.orders_rejected,
        "decisions": counters.decisions,
        "open_orders_left": sim.open_order_count,
        "supervisor_exit_code": sup.exit_code,
        "timing_installed_at_book_event": installed_at,
        "virtual_seconds": clock.now() - 1_800_000_000.0,
        "wall_s": wall,
        "cpu_s": cpu,
        "other_load_cores": other_cores,
        "events_per_wall_s": (recorder.books + recorder.fills) / wall,
        "gc_collections": [
            a["collections"] - b["collections"] for a, b in zip(gc_after, gc_before, strict=True)
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000, help="measured book events")
    parser.add_argument("--warmup", type=int, default=1_000, help="book events not measured")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=150.0, help="wall-clock bound (s)")
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=20.0,
        help="wait up to this many seconds for other processes to go quiet first (0: don't)",
    )
    parser.add_argument("--log-level", default="info", help="kasmm log level (JSON to /dev/null)")
    parser.add_argument("--baseline-ref", help="git ref measured side by side (a worktree)")
    parser.add_argument(
        "--no-source",
        action="store_true",
        help="with the compiled hot path, skip the column of this tree's Python source",
    )
    parser.add_argument("--json-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    quiet_logging(args.log_level)
    if args.json_only:  # the baseline's child: the figures only, as the last line
        print(json.dumps(anyio.run(run, args)))
        return
    facts = machine_facts()
    print(
        f"reaction: {args.events} book events (+{args.warmup} warm-up), VirtualClock, seed "
        f"{args.seed}; nproc={facts['nproc']} python={facts['python']}"
    )
    if args.wait_idle > 0:
        busy = wait_for_idle(args.wait_idle)
        if busy >= 0.15:
            print(f"(the machine stayed busy: other processes use {busy:.2f} cores)")
    base = None
    forwarded = [
        "--json-only",
        *("--events", str(args.events), "--warmup", str(args.warmup)),
        *("--seed", str(args.seed), "--timeout", str(args.timeout)),
        *("--log-level", args.log_level),
    ]
    if args.baseline_ref:
        base = run_on_ref(args.baseline_ref, Path(__file__).resolve(), forwarded)
    # With the compiled hot path, this tree's Python source (the reference) is a column too.
    source = None if args.no_source else run_source(Path(__file__).resolve(), forwarded)
    r = anyio.run(run, args)
    print(f"this tree runs {r['hot_path']}")

    rows = [["book -> first action", *_row(r["reaction"])]]
    for kind, s in r["reaction_by_first_action"].items():
        rows.append([f"  first action = {kind}", *_row(s)])
    rows.append(["  part: yield -> decide", *_row(r["reaction_breakdown"]["to_decide"])])
    rows.append(["  part: Engine.decide", *_row(r["reaction_breakdown"]["decide"])])
    rows.append(["  part: decide -> venue", *_row(r["reaction_breakdown"]["after_decide"])])
    rows.append(["Engine.decide (every decision)", *_row(r["decide_all"])])
    print()
    print_table(["microseconds", "count", "p50", "p90", "p99", "max", "mean"], rows)
    print()
    print(_facts_line(r))
    columns = [(f"baseline {base['ref']}", base)] if base is not None else []
    if source is not None:
        columns.append(("this tree, source", source))
    if columns:
        print()
        print_side_by_side(columns, r)
        for label, other in columns:
            print()
            print(f"{label}: {_facts_line(other)}")
    print_json_line(
        {"bench": "reaction", "machine": facts, **r, "baseline": base, "source": source}
    )


#: (label, path into the result) of the figures compared with the baseline.
_COMPARED: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("book -> first action", ("reaction",)),
    ("Engine.decide (every decision)", ("decide_all",)),
)
_PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("part: yield -> decide", ("reaction_breakdown", "to_decide")),
    ("part: Engine.decide", ("reaction_breakdown", "decide")),
    ("part: decide -> venue", ("reaction_breakdown", "after_decide")),
)


def _summary_at(result: dict[str, Any], path: tuple[str, ...]) -> dict[str, float] | None:
    node: Any = result
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node if isinstance(node, dict) and node.get("count") else None


def _cell(summary: dict[str, float] | None, stat: str) -> float:
    return float(summary[stat]) if summary is not None else float("nan")


def print_side_by_side(columns: list[tuple[str, dict[str, Any]]], here: dict[str, Any]) -> None:
    """The other columns (a baseline, this tree's source) and this tree, each figure at
    p50/p90/p99/max (and the parts at p50); speed-up = first column / this tree (above 1: this
    tree is faster); ``-`` where a side has no figure (a version whose decision is not timed)."""
    rows: list[list[Any]] = []
    first = columns[0][1]

    def add(label: str, path: tuple[str, ...], stats: tuple[str, ...]) -> None:
        was, now = _summary_at(first, path), _summary_at(here, path)
        for n, stat in enumerate(stats):
            cells = [_cell(_summary_at(other, path), stat) for _, other in columns]
            speed_up = ratio(cells[0], _cell(now, stat)) if was and now else "-"
            now_cell = _cell(now, stat)
            rows.append(
                [label if n == 0 else "", stat.removesuffix("_us"), *cells, now_cell, speed_up]
            )

    for label, path in _COMPARED:
        add(label, path, ("p50_us", "p90_us", "p99_us", "max_us"))
    for label, path in _PARTS:
        add(label, path, ("p50_us",))
    rows.append(
        [
            "events/s (wall, incl. sim)",
            "",
            *(other["events_per_wall_s"] for _, other in columns),
            here["events_per_wall_s"],
            ratio(here["events_per_wall_s"], first["events_per_wall_s"]),
        ]
    )
    rows.append(
        [
            "other load (cores)",
            "",
            *(other["other_load_cores"] for _, other in columns),
            here["other_load_cores"],
            "",
        ]
    )
    this = "this tree, compiled" if here["hot_path"].startswith("compiled") else "this tree"
    print_table(["microseconds", "", *(label for label, _ in columns), this, "speed-up"], rows)


def _facts_line(r: dict[str, Any]) -> str:
    return (
        f"{r['measured_book_events']} measured book events, {r['fill_events']} fill events; "
        f"{r['orders_placed']} placed, {r['orders_cancelled']} cancelled, "
        f"{r['orders_rejected']} rejected; {r['virtual_seconds']:.0f} s of market in "
        f"{r['wall_s']:.1f} s wall ({r['events_per_wall_s']:.0f} events/s incl. the sim venue); "
        f"open orders left after stop: {r['open_orders_left']}; gc runs per gen: "
        f"{r['gc_collections']}; other processes used {r['other_load_cores']:.2f} cores meanwhile"
        + ("" if r.get("decide_timed", True) else "; the decision not found: not timed")
    )


def _row(s: dict[str, float]) -> list[Any]:
    return [s["count"], s["p50_us"], s["p90_us"], s["p99_us"], s["max_us"], s["mean_us"]]


if __name__ == "__main__":
    main()
