"""Several profiles' bots on one virtual timeline: the synchronous group driver.

A group backtest path runs N :class:`~.driver.BacktestDriver` s (each its own engine, simulated
venue, token bucket and clock) and merges their market events by time, as a conservative
discrete-event simulation:

* **Per-profile clocks, one timeline.** Each profile keeps its own
  :class:`~.plumbing.BacktestClock`, because live each bot is its own task: a request's
  latency or a rate-limit wait of one bot delays that bot, never another venue's market. The
  group always advances the profile whose next action is earliest, its *time*: its clock when
  an event of its venue is ready, else ``max(next market step, its clock)``. Ties go to the
  profile whose name sorts first. The times at which the group lets anything act never go
  back, so what one profile hands another (a book it references, a hedge) arrives at the
  receiver's clock or later (the receiver's clock is moved up to it; a receiver busy with a
  request of its own gets it when that is done). One profile alone is stepped exactly as
  :meth:`BacktestDriver.run` steps it (same calls, same order: the same result).
* **One virtual clock per profile, not one for all**, on purpose: one shared clock would make
  every bot wait for every other bot's requests.
* **Each venue's requests take effect on its own venue**, at its own clock.
* **References.** A book a member's venue publishes goes to every member whose ``reference:``
  reads that market, as a ``ReferenceUpdated`` received at the time it was published, through
  the driver's own event path (``Engine.on_reference``, then a requote), as live.
* **Actors** (:class:`Actor`): hedgers (:mod:`.group_hedge`) and portfolios
  (:mod:`.group_portfolio`) act at times of their own, after the members' events of the same
  instant.
* **Nothing is polled early twice.** A venue's ready event is taken once (``poll`` consumes it)
  and held until its time comes; a held book update is rendered again if the bot's orders
  changed meanwhile (a venue renders a book when it hands it out, with the bot's latest orders).
* **Samples.** Every ``sample_s`` of virtual time (a fixed grid from the start) the group
  samples each bot's net traded base and equity, before any event at or after that time: the
  inventory standard deviations over time and the group's drawdown come from those samples.

All of it is synchronous, allocation-light (one small list scan per event over the members),
and deterministic for the members' seeds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Protocol

from kasmm.config.to_core import profile_market_key
from kasmm.core.types import ZERO, BookUpdated, Fill, ReferenceUpdated, VenueEvent
from kasmm.venues.sim.replay import ReplayEnded

from .driver import BacktestDriver
from .group_routes import reference_routes
from .plumbing import PROGRESS_EVERY_S

_INF = math.inf


class Actor(Protocol):
    """Something of the group that acts at times of its own (a hedger, a portfolio): the
    timeline lets it act at :attr:`at` (``inf``: nothing to do), after the members' events of
    that instant."""

    at: float

    def act(self, now: float) -> None:
        """Act at ``now`` (and set :attr:`at` to the next time)."""


class Running:
    """Welford's running mean and variance of a float series (no list kept)."""

    __slots__ = ("m2", "mean", "n")

    def __init__(self) -> None:
        self.n = 0
        self.mean = 0.0
        self.m2 = 0.0

    def add(self, x: float) -> None:
        """Add one sample."""
        self.n += 1
        delta = x - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (x - self.mean)

    @property
    def std(self) -> float:
        """Population standard deviation of the samples (0 with fewer than two)."""
        return math.sqrt(self.m2 / self.n) if self.n > 1 else 0.0


class Member:
    """One profile of a group path: its driver and where it stands on the timeline."""

    __slots__ = (
        "at",
        "clock",
        "driver",
        "exchange",
        "fill_listeners",
        "inventory",
        "key",
        "name",
        "ready",
        "step_at",
        "subscribers",
        "watchers",
    )

    def __init__(self, driver: BacktestDriver) -> None:
        self.driver = driver
        self.name = driver.profile.name
        self.clock = driver.clock
        self.exchange = driver.exchange
        #: The market this member trades, as references name it (``"<exchange>:<symbol>"``).
        self.key = profile_market_key(driver.profile)
        #: The members that price off this member's market, in name order.
        self.subscribers: tuple[Member, ...] = ()
        #: A ready event of the venue (taken from ``poll``), held until its time comes.
        self.ready: VenueEvent | None = None
        #: The venue's next market step, when no event is ready.
        self.step_at = _INF
        #: This member's time on the timeline (``inf``: nothing more before the end).
        self.at = _INF
        #: The net traded base, sampled every ``sample_s``.
        self.inventory = Running()
        #: Told ``now`` after this member's bot handled anything (its portfolio looks again).
        self.watchers: tuple[Callable[[float], None], ...] = ()
        #: Told of each fill this member's engine took as its own (hedgers).
        self.fill_listeners: tuple[Callable[[Fill, float], None], ...] = ()

    def listen_fills(self, listener: Callable[[Fill, float], None]) -> None:
        """Tell ``listener`` of each fill this member's engine takes as its own."""
        self.fill_listeners = (*self.fill_listeners, listener)
        self.driver.fill_listener = self._filled

    def _filled(self, fill: Fill, now: float) -> None:
        for listener in self.fill_listeners:
            listener(fill, now)

    def net_base(self) -> Decimal:
        """Base bought minus base sold so far (the inventory change)."""
        pnl = self.driver.engine.account.pnl
        return pnl.buy_volume - pnl.sell_volume

    def equity(self) -> Decimal | None:
        """PnL marked to the bot's last mid (``None`` before its first usable book)."""
        book = self.driver.engine.book
        mid = book.mid if book is not None else None
        if mid is None or not mid.is_finite() or mid <= ZERO:
            return None
        return self.driver.engine.account.pnl.net(mid)


class GroupDriver:
    """Runs the drivers of one group path on one timeline (see the module docstring).

    :param drivers: one per profile, not started, each on its own clock that starts at
        ``start``; they are ordered by profile name here (the tie order).
    :param sample_s: the sampling grid of inventories and the group's equity.
    :param same_quote: whether the members' PnL may be summed (one quote asset).
    """

    def __init__(
        self,
        drivers: Sequence[BacktestDriver],
        *,
        start: float,
        end: float | None,
        sample_s: float = 1.0,
        same_quote: bool = True,
    ) -> None:
        if not drivers:
            raise ValueError("a group needs at least one profile")
        if not sample_s > 0:
            raise ValueError("sample_s must be positive")
        self.members = tuple(sorted((Member(d) for d in drivers), key=lambda m: m.name))
        names = [m.name for m in self.members]
        if len(set(names)) != len(names):
            raise ValueError(f"profile names must be unique in a group: {names}")
        self._subscribe()
        self.start = start
        self.end = end
        self.sample_s = sample_s
        self._same_quote = same_quote
        self._n_sample = 0
        #: The group's net traded base (every member has the same base) and equity samples.
        self.inventory = Running()
        self.equity_peak = 0.0
        self.max_drawdown = 0.0
        #: Called with the fraction of the horizon done, about every ``progress_every_s``.
        self.on_progress: Callable[[float], None] | None = None
        self.progress_every_s = PROGRESS_EVERY_S
        #: The member acting now (the one a failure is recorded on).
        self._current: Member | None = None
        #: Hedgers and portfolios (:meth:`add_actor`), in the order added (their tie order).
        self.actors: list[Actor] = []

    def add_actor(self, actor: Actor) -> None:
        """Let ``actor`` act on the timeline at its own times."""
        self.actors.append(actor)

    def _subscribe(self) -> None:
        """Each member's subscribers (:func:`reference_routes`)."""
        routes = reference_routes(
            [(m.name, m.key, m.driver.engine.reference_keys) for m in self.members]
        )
        by_name = {m.name: m for m in self.members}
        for m in self.members:
            m.subscribers = tuple(by_name[name] for name in routes.get(m.key, ()))

    def member(self, name: str) -> Member:
        """The member of profile ``name``."""
        for m in self.members:
            if m.name == name:
                return m
        raise KeyError(name)

    # --- the path -------------------------------------------------------------------------

    def run(self) -> None:
        """Start every bot, merge their venues' events up to the end, then stop every bot (in
        name order; all of them, whatever failed)."""
        current: Member | None = None
        try:
            for m in self.members:
                current = m
                m.driver.begin()
            for m in self.members:
                self.schedule(m)
            current = None
            self._loop()
        except BaseException as exc:
            failed = current if current is not None else self._current
            if failed is not None:
                failed.driver.failed(exc)
            raise
        finally:
            self._stop_all()
        for m in self.members:
            m.driver.finished()

    def _loop(self) -> None:
        members, actors = self.members, self.actors
        span = (self.end - self.start) if self.end is not None else None
        every = self.progress_every_s
        report_at = time.monotonic() + every
        n = 0
        last_at = self.start
        while True:
            best: Member | None = None
            best_at = _INF
            for m in members:
                if m.at < best_at:  # strict: a tie stays with the earlier name
                    best, best_at = m, m.at
            if actors:
                actor = self._first_actor(best_at)
                if actor is not None:
                    self._sample_until(actor.at)
                    actor.act(actor.at)
                    continue
            if best is None:
                # The grid's last samples: up to the end of the run, else of the data.
                self._sample_until(self.end if self.end is not None else last_at)
                return
            last_at = best_at
            n += 1
            if n & 255 == 0 and self.on_progress is not None and span:
                wall = time.monotonic()
                if wall >= report_at:
                    report_at = wall + every
                    self.on_progress(min(1.0, (best_at - self.start) / span))
            self._sample_until(best_at)
            self._current = best
            self._advance(best)
            self._current = None

    def _first_actor(self, before: float) -> Actor | None:
        """The actor due first, if it is due before ``before`` (a member's event at the same
        instant goes first) and not after the end of the run."""
        first: Actor | None = None
        at = before
        for actor in self.actors:
            if actor.at < at:
                first, at = actor, actor.at
        if first is not None and self.end is not None and at > self.end:
            return None
        return first

    def _advance(self, m: Member) -> None:
        """Let ``m`` act at its time: hand its ready event to its bot, or step its market."""
        event = m.ready
        if event is None:
            if m.clock.step_to(m.step_at):
                m.exchange.step()
            else:
                m.at = _INF  # its clock passed the end meanwhile
                return
        else:
            m.ready = None
            now = m.clock.now()
            m.driver.handle(event, now)
            if m.subscribers and isinstance(event, BookUpdated):
                self._publish(m, event, now)
            for watcher in m.watchers:
                watcher(now)
        self.schedule(m)

    def _publish(self, m: Member, event: BookUpdated, at: float) -> None:
        """``m``'s venue published ``event`` at ``at``: every member that prices off it gets it
        as a :class:`ReferenceUpdated`, received at ``at`` on its own clock (later if that clock
        is already past ``at``: its bot was busy), and requotes."""
        for sub in m.subscribers:
            clock = sub.clock
            clock.advance_to(at)  # no market step of its own is skipped: ``at`` is the earliest
            now = clock.now()
            sub.driver.handle_reference(ReferenceUpdated(m.key, event.book, now), now)
            for watcher in sub.watchers:
                watcher(now)
            self.touched(sub)

    def schedule(self, m: Member) -> None:
        """Find ``m``'s next time: a ready event now, its next market step, or ``inf``."""
        clock = m.clock
        if m.ready is None:
            try:
                nxt = m.exchange.poll()
            except ReplayEnded:
                m.at = _INF
                return
            if not isinstance(nxt, float):
                m.ready = nxt
            elif clock.past_end(nxt):
                m.at = _INF  # the market never moves after the end of the run
                return
            else:
                m.step_at = nxt
                now = clock.now()
                m.at = nxt if nxt > now else now
                return
        m.at = clock.now()

    def touched(self, m: Member) -> None:
        """``m``'s bot acted outside its own events (its orders may have changed): a held book
        update is rendered again, and its time is found again."""
        if isinstance(m.ready, BookUpdated):
            m.ready = BookUpdated(m.driver.sim.book)
        self.schedule(m)

    # --- samples ----------------------------------------------------------------------------

    def _sample_until(self, t: float) -> None:
        """Take every sample of the grid at or before ``t`` (and not after the end)."""
        if self.end is not None and t > self.end:
            t = self.end
        while True:
            at = self.start + self._n_sample * self.sample_s
            if at > t:
                return
            self._n_sample += 1
            self._sample()

    def _sample(self) -> None:
        total_base = ZERO
        total_equity = ZERO
        equity_known = self._same_quote
        for m in self.members:
            base = m.net_base()
            m.inventory.add(float(base))
            total_base += base
            if equity_known:
                equity = m.equity()
                if equity is None:
                    equity_known = False
                else:
                    total_equity += equity
        self.inventory.add(float(total_base))
        if equity_known:
            value = float(total_equity)
            if value > self.equity_peak:
                self.equity_peak = value
            elif self.equity_peak - value > self.max_drawdown:
                self.max_drawdown = self.equity_peak - value

    # --- the stop -------------------------------------------------------------------------

    def _stop_all(self) -> None:
        """Stop every bot; the first error is raised after all of them were stopped."""
        error: BaseException | None = None
        for m in self.members:
            try:
                m.driver.finish()
            except BaseException as exc:  # every bot is stopped, whatever one of them raised
                if error is None:
                    error = exc
        if error is not None:
            raise error


__all__ = ["Actor", "GroupDriver", "Member", "Running"]
