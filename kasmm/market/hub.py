"""``MarketHub``: one feed per market key inside a supervisor, shared by every reader.

The supervisor owns the hub and runs it in its task group (:meth:`MarketHub.run`); profiles
:meth:`~MarketHub.subscribe` to the keys they trade or reference. The first subscriber of a key
starts its feed, the last one leaving stops it, so N profiles on one market cost one connection
and one request budget (the feed's, see :mod:`kasmm.market.feeds`).

Two kinds of keys:

* **fed** keys: the feed factory returns a :class:`MarketFeed` (a public ccxt feed for a real
  exchange). The hub runs it, restarts it with backoff when it fails, and publishes its books
  (and, to the subscribers that asked for them, its trades).
* **venue** keys: the factory returns ``None`` (a simulated market). The venue of the profile
  that trades it publishes its own books (:class:`~kasmm.market.publish.PublishingVenue`); there
  is nothing to start or stop.

Every reader sees the newest :class:`~kasmm.market.book.MarketBook` of a key with its arrival
time on the interval clock, so a stopped feed shows as a growing age rather than as a silently
old book. Waiting for changes is event-driven: a :class:`ChangeWatch` over some keys is woken
by a publication of one of them (and only of them), no polling.
"""

from __future__ import annotations

import math
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Callable,
    Collection,
    Iterator,
    Mapping,
)
from contextlib import aclosing, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio
import structlog
from anyio.abc import TaskGroup, TaskStatus

from kasmm.clock import Clock
from kasmm.core.types import Book, MarketRules
from kasmm.market.book import BookSource, MarketBook
from kasmm.market.subscription import ChangeWatch, Subscription
from kasmm.venues.public_data import FeedItem, PublicTrade

log = structlog.get_logger("kasmm.market")

__all__ = ["ChangeWatch", "FeedFactory", "MarketFeed", "MarketHub", "Subscription"]


class MarketFeed(Protocol):
    """One market's public data, as the hub runs it (:class:`CcxtPublicFeed` is one)."""

    @property
    def book_source(self) -> BookSource:
        """Where the book last yielded by :meth:`watch` came from."""
        ...

    async def load_market(self) -> MarketRules:
        """The market's trading rules.

        :raises VenueError: unknown market, or the exchange cannot be reached.
        """
        ...

    def watch(self, *, trades: bool = True) -> AsyncGenerator[FeedItem, None]:
        """Books (and trades, with ``trades``) until closed."""
        ...

    async def close(self) -> None:
        """Release connections; a running :meth:`watch` ends."""
        ...


#: ``key -> feed`` for a key the hub runs a feed for; ``None``: a venue publishes it.
FeedFactory = Callable[[str], MarketFeed | None]


def no_feeds(key: str) -> MarketFeed | None:
    """The factory of a hub whose every key is published by a venue (tests, backtests)."""
    return None


@dataclass(eq=False)
class _Entry:
    """One key's state: its newest book, its readers and its running feed."""

    key: str
    feed: MarketFeed | None
    latest: MarketBook | None = None
    version: int = 0
    subscribers: list[Subscription] = field(default_factory=list)
    #: The running feed task's scope (``None``: not running) and whether it carries trades.
    scope: anyio.CancelScope | None = None
    with_trades: bool = False
    #: Set when the last feed task has closed its feed (a new one waits for it).
    stopped: anyio.Event = field(default_factory=anyio.Event)
    failures: int = 0
    last_error: str | None = None
    trades_seen: int = 0
    #: The venue publishing a key no feed serves (:meth:`MarketHub.claim`).
    publisher: object | None = None

    def __post_init__(self) -> None:
        self.stopped.set()

    @property
    def wants_trades(self) -> bool:
        return any(s.trades for s in self.subscribers)


class MarketHub:
    """Shared market data of one supervisor (see the module docstring).

    :param clock: the interval clock books are stamped with (the supervisor's).
    :param feed_factory: the feed of a key, ``None`` for a key a venue publishes
        (default: :func:`no_feeds`; the supervisor passes :func:`kasmm.market.feeds.public_feeds`).
    :param retry_s: first and longest wait before a failed feed is started again.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        feed_factory: FeedFactory = no_feeds,
        retry_s: tuple[float, float] = (1.0, 30.0),
    ) -> None:
        self.clock = clock
        self._factory = feed_factory
        self._retry_s = retry_s
        self._entries: dict[str, _Entry] = {}
        self._watches: dict[str, set[ChangeWatch]] = {}
        self._tg: TaskGroup | None = None
        self._rules: dict[str, MarketRules] = {}

    @property
    def feed_factory(self) -> FeedFactory:
        """What builds the feed of a key (``None`` for a key a venue publishes)."""
        return self._factory

    # --- lifetime ---------------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run the feeds until cancelled (start it with ``await tg.start(hub.run)``); every
        feed is closed on the way out."""
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                task_status.started()
                await anyio.sleep_forever()
        finally:
            self._tg = None
            with anyio.CancelScope(shield=True):
                for entry in self._entries.values():
                    if entry.feed is not None:
                        await _close_quietly(entry.key, entry.feed)

    @asynccontextmanager
    async def subscribe(self, key: str, *, trades: bool = False) -> AsyncIterator[Subscription]:
        """Read ``key`` for the duration of the block; its feed runs while anyone does.

        :param trades: also deliver public trades (through :meth:`Subscription.items`).
        :raises RuntimeError: the hub is not running (a fed key needs :meth:`run`).
        """
        entry = self._entry(key)
        sub = Subscription(self, key, trades=trades)
        entry.subscribers.append(sub)
        try:
            self._ensure_feed(entry)
            log.debug("market_subscribed", key=key, subscribers=len(entry.subscribers))
            yield sub
        finally:
            sub.end()
            entry.subscribers.remove(sub)
            if not entry.subscribers and entry.scope is not None:
                log.info("market_feed_stopping", key=key)
                entry.scope.cancel()
                entry.scope = None

    # --- reading ----------------------------------------------------------------------------

    def latest(self, key: str) -> MarketBook | None:
        """The newest book of ``key`` (``None`` before the first)."""
        entry = self._entries.get(key)
        return None if entry is None else entry.latest

    def age_s(self, key: str, now: float) -> float:
        """Seconds since ``key``'s newest book arrived (``inf`` before the first)."""
        book = self.latest(key)
        return math.inf if book is None else book.age_s(now)

    def version(self, key: str) -> int:
        """How many books ``key`` has had (0: none yet); it changes with every book."""
        entry = self._entries.get(key)
        return 0 if entry is None else entry.version

    def versions(self, keys: Collection[str]) -> dict[str, int]:
        """:meth:`version` of each key (what :meth:`wait_changed` compares with)."""
        return {key: self.version(key) for key in keys}

    async def wait_changed(self, seen: Mapping[str, int]) -> list[str]:
        """Wait until one of ``seen``'s keys has a newer book than the version given for it;
        return the keys that changed (in ``seen``'s order)."""
        with self.watch(seen) as watch:
            while True:
                changed = [key for key, version in seen.items() if self.version(key) != version]
                if changed:
                    return changed
                await watch.wait()

    @contextmanager
    def watch(self, keys: Collection[str]) -> Iterator[ChangeWatch]:
        """A :class:`ChangeWatch` over ``keys`` for the duration of the block."""
        watch = ChangeWatch(keys)
        for key in watch.keys:
            self._watches.setdefault(key, set()).add(watch)
        try:
            yield watch
        finally:
            for key in watch.keys:
                watches = self._watches.get(key)
                if watches is not None:
                    watches.discard(watch)
                    if not watches:
                        del self._watches[key]

    async def load_market(self, key: str) -> MarketRules:
        """The trading rules of a fed key, loaded once through its feed.

        :raises KeyError: ``key`` is published by a venue (its rules are that venue's).
        :raises VenueError: the feed could not load them.
        """
        rules = self._rules.get(key)
        if rules is None:
            feed = self._entry(key).feed
            if feed is None:
                raise KeyError(f"{key} is published by a venue, not fed by the hub")
            rules = await feed.load_market()
            self._rules[key] = rules
        return rules

    def is_fed(self, key: str) -> bool:
        """Whether the hub runs a feed for ``key`` (False: a venue publishes it)."""
        return self._entry(key).feed is not None

    def status(self, now: float) -> dict[str, dict[str, Any]]:
        """Per key: book source, age, subscribers, feed state (``/status``, ``kasmm top``)."""
        rows: dict[str, dict[str, Any]] = {}
        for key in sorted(self._entries):
            entry = self._entries[key]
            book = entry.latest
            if entry.feed is None:
                feed = "venue"
            else:
                feed = "running" if entry.scope is not None else "stopped"
            rows[key] = {
                "source": None if book is None else book.source,
                "age_s": None if book is None else round(book.age_s(now), 3),
                "subscribers": len(entry.subscribers),
                "feed": feed,
                "books": entry.version,
                "failures": entry.failures,
                "last_error": entry.last_error,
            }
        return rows

    def keys(self) -> list[str]:
        """Every key the hub knows (subscribed or published at least once)."""
        return sorted(self._entries)

    # --- writing ----------------------------------------------------------------------------

    def publish(self, key: str, book: Book, source: BookSource = "venue") -> MarketBook:
        """Make ``book`` the newest of ``key`` (a venue publishing the market it trades)."""
        entry = self._entry(key)
        market_book = MarketBook(book, self.clock.now(), source)
        entry.latest = market_book
        entry.version += 1
        for sub in entry.subscribers:
            if sub.trades:
                sub.deliver(book)
        for watch in self._watches.get(key, ()):
            watch.notify()
        return market_book

    def claim(self, key: str, owner: object) -> bool:
        """Make ``owner`` the one venue that publishes ``key``, unless another one is; True
        when ``owner`` is (now) the publisher. A simulated market is one venue's book: two
        simulated venues under one key (two profiles on ``sim`` with the same symbol) are two
        different markets, and their books interleaved would be neither."""
        entry = self._entry(key)
        if entry.publisher is None:
            entry.publisher = owner
        return entry.publisher is owner

    def release(self, key: str, owner: object) -> None:
        """``owner`` no longer publishes ``key`` (another venue may claim it)."""
        entry = self._entries.get(key)
        if entry is not None and entry.publisher is owner:
            entry.publisher = None

    def _publish_trade(self, entry: _Entry, trade: PublicTrade) -> None:
        entry.trades_seen += 1
        for sub in entry.subscribers:
            if sub.trades:
                sub.deliver(trade)

    # --- feeds ------------------------------------------------------------------------------

    def _entry(self, key: str) -> _Entry:
        entry = self._entries.get(key)
        if entry is None:
            entry = _Entry(key, self._factory(key))
            self._entries[key] = entry
        return entry

    def _ensure_feed(self, entry: _Entry) -> None:
        """Start ``entry``'s feed if it has one and it is not running (or runs without the
        trades a subscriber now wants: it is restarted with them)."""
        if entry.feed is None:
            return
        if entry.scope is not None and (entry.with_trades or not entry.wants_trades):
            return
        if self._tg is None:
            raise RuntimeError("MarketHub.run() must be running before a fed key is subscribed")
        if entry.scope is not None:
            entry.scope.cancel()  # restarted below with trades
        scope = anyio.CancelScope()
        entry.scope = scope
        entry.with_trades = entry.wants_trades
        previous, entry.stopped = entry.stopped, anyio.Event()
        self._tg.start_soon(self._run_feed, entry, entry.feed, scope, previous, entry.stopped)

    async def _run_feed(
        self,
        entry: _Entry,
        feed: MarketFeed,
        scope: anyio.CancelScope,
        previous: anyio.Event,
        stopped: anyio.Event,
    ) -> None:
        """Run ``feed`` until ``scope`` is cancelled: publish what it yields, restart it with
        backoff when it fails, close it at the end (the next run waits for that)."""
        trades = entry.with_trades
        try:
            with scope:
                await previous.wait()  # the last run's feed is closed: reopening is safe
                log.info("market_feed_started", key=entry.key, trades=trades)
                backoff = self._retry_s[0]
                while True:
                    try:
                        # The feed's own market loading (spot only, no keys) before ccxt's
                        # implicit one could load every market list of the exchange.
                        await self.load_market(entry.key)
                        async with aclosing(feed.watch(trades=trades)) as items:
                            async for item in items:
                                if isinstance(item, PublicTrade):
                                    self._publish_trade(entry, item)
                                else:
                                    self.publish(entry.key, item, feed.book_source)
                                backoff = self._retry_s[0]
                        error = "feed ended"
                    except Exception as exc:  # any feed trouble: the readers see the age grow
                        error = f"{type(exc).__name__}: {exc}"[:300]
                    entry.failures += 1
                    entry.last_error = error
                    log.warning(
                        "market_feed_failed", key=entry.key, error=error, retry_in_s=backoff
                    )
                    await self.clock.sleep_until(self.clock.now() + backoff)
                    backoff = min(backoff * 2, self._retry_s[1])
        finally:
            with anyio.CancelScope(shield=True):
                await _close_quietly(entry.key, feed)
                stopped.set()
                log.info("market_feed_stopped", key=entry.key)


async def _close_quietly(key: str, feed: MarketFeed) -> None:
    try:
        await feed.close()
    except Exception as exc:  # closing is best effort: the connection is gone either way
        log.warning("market_feed_close_failed", key=key, error=f"{type(exc).__name__}: {exc}")
