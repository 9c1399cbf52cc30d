"""``SimVenue``: the built-in simulated exchange (``venue.type: sim``).

The venue validates and books the bot's requests like a strict exchange (it raises, it never
rounds a price or size for the caller), and delegates the market itself to a model:
:mod:`.random_walk` (the default demo market) or :mod:`.as2008` (Avellaneda–Stoikov, exact).

Determinism: the market only advances while the consumer iterates :meth:`SimVenue.events`; each
event's time is reached with ``clock.sleep_until`` (instant on a ``VirtualClock``, a real sleep on
a ``RealClock``), and all randomness comes from one ``random.Random(config.seed)``. A consumer
that handles each event completely (including its requests) before pulling the next therefore
sees the same events for the same seed (trade ids excepted: each venue instance tags them with
its own random tag, so that a rebuilt venue never repeats one its ledger stored; pass
``trade_id_tag`` for exact ids). Driving ``events()`` from two tasks at once is not
supported. With ``latency_ms > 0`` every request first sleeps that long on the clock, then takes
effect; a batch call (no batch endpoint: concurrent single requests) sleeps once for all its
orders, which then take effect in request order.
"""

from __future__ import annotations

import random
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from decimal import Decimal
from typing import TypeVar

from kasmm.clock import Clock
from kasmm.config.schema import AS2008Market, RandomWalkMarket, SimVenueConfig
from kasmm.core.types import (
    ZERO,
    Balances,
    Book,
    ClientOrderId,
    MarketRules,
    OpenOrder,
    OrderRequest,
    Side,
    VenueEvent,
)
from kasmm.errors import FatalVenueError, OrderNotFound, VenueError
from kasmm.venues.base import CancelOutcome, PlaceOutcome
from kasmm.venues.batch import ConcurrentBatch
from kasmm.venues.sim.as2008 import AS2008Model, as2008_rules
from kasmm.venues.sim.matching import RestingOrder, combined_best
from kasmm.venues.sim.orders import bps_to_fraction, check_cross, validate_request
from kasmm.venues.sim.random_walk import RandomWalkModel
from kasmm.venues.sim.state import Ledger, MarketModel, SimState, SimStats, trade_id_prefix

A = TypeVar("A")
R = TypeVar("R")


def _outcome(act: Callable[[A], R], arg: A) -> R | VenueError:
    """``act(arg)``, or the ``VenueError`` it raised."""
    try:
        return act(arg)
    except VenueError as exc:
        return exc


class SimVenue(ConcurrentBatch):
    """A simulated exchange account trading one symbol; implements the ``Venue`` protocol."""

    def __init__(
        self,
        config: SimVenueConfig,
        symbol: str,
        clock: Clock,
        *,
        name: str = "sim",
        trade_id_tag: str | None = None,
    ) -> None:
        """Build the venue; nothing happens until :meth:`connect`.

        :param config: the profile's ``venue`` section.
        :param symbol: ``BASE/QUOTE``.
        :param clock: ``VirtualClock`` for tests and backtests, ``RealClock`` for a live demo.
        :param trade_id_tag: this instance's part of its trade ids (``sim-<tag>-<n>``); random
            by default, so that a rebuilt venue never repeats a trade id the ledger stored.
        """
        base, sep, quote = symbol.partition("/")
        if not (base and sep and quote) or "/" in quote:
            raise ValueError(f"symbol must look like BASE/QUOTE, got {symbol!r}")
        self._config = config
        self._name = name
        self._clock = clock
        self._latency_s = config.latency_ms / 1000
        self._connected = False
        self._started = False
        rng = random.Random(config.seed)
        id_prefix = trade_id_prefix("sim", trade_id_tag)
        market = config.market
        self._model: MarketModel
        if isinstance(market, AS2008Market):
            rules = as2008_rules(symbol, base, quote, market)
            # AS: the trader starts flat and nothing is checked (see as2008.py).
            ledger = Ledger(base, quote, {}, ZERO, enforce=False)
            self._state = SimState(rules, clock, ledger, trade_id_prefix=id_prefix)
            self._model = AS2008Model(market, self._state, rng)
        elif isinstance(market, RandomWalkMarket):
            rules = MarketRules(
                symbol=symbol,
                base=base,
                quote=quote,
                tick=config.tick,
                lot=config.lot,
                min_notional=config.min_notional,
                min_size=config.lot,
                maker_fee=bps_to_fraction(config.fees.maker_bps),
                taker_fee=bps_to_fraction(config.fees.taker_bps),
            )
            ledger = Ledger(base, quote, config.balances, rules.maker_fee, enforce=True)
            self._state = SimState(rules, clock, ledger, trade_id_prefix=id_prefix)
            # Real time only (virtual runs stay exactly reproducible): a random phase of the
            # book interval, so that venues started together do not all tick at once.
            phase = 0.0 if clock.is_virtual else random.random()
            self._model = RandomWalkModel(market, self._state, rng, phase=phase)
        else:
            raise ValueError(
                f"the {market.model} market is served by kasmm.venues.sim.replay.ReplayVenue "
                "(build_venue picks it)"
            )

    # --- introspection (read-only; for tests, benches and the demo) ---------------------

    @property
    def name(self) -> str:
        """Venue name for logs and metric labels."""
        return self._name

    @property
    def rules(self) -> MarketRules:
        """The market's trading rules (the same object ``connect`` returns)."""
        return self._state.rules

    @property
    def stats(self) -> SimStats:
        """Snapshot of the request and fill counters."""
        return self._state.stats()

    @property
    def open_order_count(self) -> int:
        """Number of the account's open orders (any prefix)."""
        return len(self._state.orders)

    @property
    def fills_total(self) -> int:
        """Number of fills so far (partial fills count one each); same as ``stats.fills``."""
        return self._state.fills

    @property
    def mid(self) -> float:
        """The market model's true mid (unrounded, independent of the bot's orders)."""
        return self._model.mid

    @property
    def book(self) -> Book:
        """The public book right now (synthetic liquidity merged with the bot's orders)."""
        return self._model.snapshot()

    def submit_taker(self, side: Side, size: Decimal) -> None:
        """Queue an outside market order of ``side`` and ``size`` (random-walk market only).

        It sweeps the combined book when :meth:`events` is next pulled (after any events already
        produced), before the next scheduled market event; its fills and the changed book come
        out of :meth:`events`. Test and bench support: a deterministic way to fill an order.
        """
        if not isinstance(self._model, RandomWalkModel):
            raise RuntimeError("submit_taker needs the random_walk market")
        self._model.submit_taker(side, size)

    # --- restart on an existing ledger (kasmm.venues.sim.account.SimulatedAccount) ---------

    def starting_balances(self) -> dict[str, Decimal] | None:
        """The configured balances, until the first order; ``None`` on the as2008 market."""
        return self._state.starting_balances()

    def restore_balances(self, balances: Mapping[str, Decimal]) -> None:
        """Start from the balances the ledger implies instead of the configured ones.

        :raises RuntimeError: an order was placed already, or the market is as2008.
        """
        self._state.restore_balances(balances)

    # --- the Venue protocol ---------------------------------------------------------------

    async def connect(self) -> MarketRules:
        """Start the market at the current clock time (first call only) and return the rules."""
        await self._delay()
        return self.connect_now()

    async def close(self) -> None:
        """Stop serving requests; ``events()`` ends at its next pull. Orders stay on the book."""
        self.close_now()

    async def events(self) -> AsyncGenerator[VenueEvent, None]:
        """Drive the market: sleep on the clock to each market event and yield what it produced.

        Market state lives in the venue, so a new ``events()`` iterator continues where the
        previous one stopped. Ends when the venue is closed.
        """
        self._require_connected()
        while self._connected:
            yield await self._next_event()

    async def fetch_balances(self) -> Balances:
        """Free and locked balances of every asset the account holds."""
        await self._request()
        return self.balances_now()

    async def fetch_open_orders(self) -> list[OpenOrder]:
        """All open orders in placement order, whatever their client id prefix."""
        await self._request()
        return self.open_orders_now()

    async def place_order(self, request: OrderRequest) -> OpenOrder:
        """Validate, lock funds for and book a limit order.

        :raises OrderRejected: bad price or size, off tick or lot, below the minimum notional,
            duplicate open client id, or a crossing order that is not post-only (the simulator
            does not execute the bot as a taker).
        :raises PostOnlyWouldCross: a post-only order at or through the opposite best price of
            the combined book (other traders' liquidity and the bot's own orders).
        :raises InsufficientFunds: the free balance cannot back the order.
        """
        await self._request()
        return self._place(request)

    async def cancel_order(self, client_id: ClientOrderId) -> None:
        """Cancel one open order and unlock its funds.

        :raises OrderNotFound: no open order has this client id (filled, cancelled, unknown).
        """
        await self._request()
        self._cancel(client_id)

    async def place_orders(self, requests: Sequence[OrderRequest]) -> list[PlaceOutcome]:
        """Concurrent single placements, simulated: one latency for all, then each order in
        request order (what ``place_order`` would do, its error as its outcome).

        Awaiting the latency once (rather than racing one task per order) keeps virtual time
        exact, one ``latency_ms`` for the batch, and the booking order deterministic.
        """
        if not requests:
            return []
        await self._request()
        return self.place_orders_now(requests)

    async def cancel_orders(self, client_ids: Sequence[ClientOrderId]) -> list[CancelOutcome]:
        """Concurrent single cancels, simulated like :meth:`place_orders`."""
        if not client_ids:
            return []
        await self._request()
        return self.cancel_orders_now(client_ids)

    async def cancel_all(self, prefix: str) -> int:
        """Cancel every open order whose client id starts with ``prefix``; return the count."""
        await self._request()
        return self.cancel_all_now(prefix)

    # --- the synchronous face: a request's effect, without its latency ---------------------
    # The async methods above are these after the latency; the synchronous backtest driver
    # (kasmm.backtest.driver) calls them directly and keeps time itself.

    @property
    def latency_s(self) -> float:
        """The simulated request latency (seconds on the venue's clock)."""
        return self._latency_s

    def connect_now(self) -> MarketRules:
        """:meth:`connect` without the latency."""
        self._connected = True
        if not self._started:
            self._started = True
            self._model.start()
        return self._state.rules

    def close_now(self) -> None:
        """:meth:`close`, synchronously."""
        self._connected = False

    def poll(self) -> VenueEvent | float:
        """The market's next event, or the time of its next step (see ``MarketModel.poll``)."""
        return self._model.poll()

    def step(self) -> None:
        """Run the market step :meth:`poll` timed (the clock stands at its time)."""
        self._model.step()

    def balances_now(self) -> Balances:
        """:meth:`fetch_balances` without the latency."""
        self._require_connected()
        return self._state.ledger.snapshot()

    def open_orders_now(self) -> list[OpenOrder]:
        """:meth:`fetch_open_orders` without the latency."""
        self._require_connected()
        return [o.to_open_order() for o in self._state.orders]

    def place_orders_now(self, requests: Sequence[OrderRequest]) -> list[PlaceOutcome]:
        """:meth:`place_orders` without the latency."""
        self._require_connected()
        return [_outcome(self._place, request) for request in requests]

    def cancel_orders_now(self, client_ids: Sequence[ClientOrderId]) -> list[CancelOutcome]:
        """:meth:`cancel_orders` without the latency."""
        self._require_connected()
        return [_outcome(self._cancel, client_id) for client_id in client_ids]

    def cancel_order_now(self, client_id: ClientOrderId) -> None:
        """:meth:`cancel_order` without the latency."""
        self._require_connected()
        self._cancel(client_id)

    def cancel_all_now(self, prefix: str) -> int:
        """:meth:`cancel_all` without the latency."""
        self._require_connected()
        self._state.cancels += 1
        return self._state.cancel_prefix(prefix)

    # --- internals -------------------------------------------------------------------------

    async def _next_event(self) -> VenueEvent:
        """Sleep on the clock to each market step until one produces an event."""
        model = self._model
        clock = self._clock
        while True:
            nxt = model.poll()
            if not isinstance(nxt, float):
                return nxt
            await clock.sleep_until(nxt)
            model.step()

    def _require_connected(self) -> None:
        if not self._connected:
            raise FatalVenueError(f"{self._name}: not connected")

    async def _delay(self) -> None:
        """The configured request latency, on the venue's clock."""
        if self._latency_s > 0:
            await self._clock.sleep_until(self._clock.now() + self._latency_s)

    async def _request(self) -> None:
        """Common prologue of every request: must be connected, then the latency."""
        self._require_connected()
        await self._delay()

    def _place(self, request: OrderRequest) -> OpenOrder:
        self._state.places += 1
        try:
            order = self._accept(request)
        except VenueError:
            self._state.rejects += 1
            raise
        return order.to_open_order()

    def _cancel(self, client_id: ClientOrderId) -> None:
        self._state.cancels += 1
        if self._state.cancel(client_id) is None:
            raise OrderNotFound(f"no open order {client_id!r}")

    def _accept(self, request: OrderRequest) -> RestingOrder:
        """Validate, check crossing (against the combined book) and funds, then book the order."""
        validate_request(self._state.rules, self._state.orders, request)
        if self._model.enforces_post_only:
            opposite = request.side.opposite
            check_cross(
                request, combined_best(self._model.best(opposite), self._state.orders, opposite)
            )
        return self._state.add_order(request)  # raises InsufficientFunds before anything is booked
