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
supported. A world venue (``market.world``) also reads its world's latent path, a pure function
of the world's settings and the step index, and its arbitrageurs draw from a generator of their
own (:mod:`.world`, :mod:`.arbitrage`): the same holds, for every venue of a world, whatever the
interleaving of their events. With ``latency_ms > 0`` every request first sleeps that long on
the clock, then takes effect; a batch call (no batch endpoint: concurrent single requests)
sleeps once for all its orders, which then take effect in request order.
"""

from __future__ import annotations

import random
from collections.abc import AsyncGenerator, Mapping, Sequence
from decimal import Decimal

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
from kasmm.venues.base import CancelOutcome, IocOutcome, PlaceOutcome
from kasmm.venues.batch import ConcurrentBatch
from kasmm.venues.sim.arbitrage import Arbitrageurs, arbitrage_rng
from kasmm.venues.sim.as2008 import AS2008Model, as2008_rules
from kasmm.venues.sim.exchange import SimExchange
from kasmm.venues.sim.orders import bps_to_fraction
from kasmm.venues.sim.random_walk import RandomWalkModel
from kasmm.venues.sim.state import Ledger, MarketModel, SimState, SimStats, trade_id_prefix
from kasmm.venues.sim.world import SimWorlds, VenueWorld, venue_world


class SimVenue(ConcurrentBatch):
    """A simulated exchange account trading one symbol; implements the ``Venue`` protocol."""

    def __init__(
        self,
        config: SimVenueConfig,
        symbol: str,
        clock: Clock,
        *,
        name: str | None = None,
        trade_id_tag: str | None = None,
        worlds: SimWorlds | None = None,
        user: str | None = None,
    ) -> None:
        """Build the venue; nothing happens until :meth:`connect` (a world venue joins its
        world here, though: see :mod:`.world` for the origin of a world's path).

        :param config: the profile's ``venue`` section.
        :param symbol: ``BASE/QUOTE``.
        :param clock: ``VirtualClock`` for tests and backtests, ``RealClock`` for a live demo.
        :param name: the venue's name in logs and metrics (default ``config.exchange``).
        :param trade_id_tag: this instance's part of its trade ids (``sim-<tag>-<n>``); random
            by default, so that a rebuilt venue never repeats a trade id the ledger stored.
        :param worlds: the registry of the worlds this venue's group shares (a supervisor's,
            a backtest path's); ``None``: a world of its own, if the market names one.
        :param user: who uses the venue (a profile name), named in a world conflict (default
            ``<exchange>:<symbol>``).
        :raises WorldConflict: the market's world is in use with other settings.
        """
        base, sep, quote = symbol.partition("/")
        if not (base and sep and quote) or "/" in quote:
            raise ValueError(f"symbol must look like BASE/QUOTE, got {symbol!r}")
        self._config = config
        self._name = name = config.exchange if name is None else name
        self._clock = clock
        self._latency_s = config.latency_ms / 1000
        rng = random.Random(config.seed)
        id_prefix = trade_id_prefix("sim", trade_id_tag)
        market = config.market
        model: MarketModel
        if isinstance(market, AS2008Market):
            rules = as2008_rules(symbol, base, quote, market)
            # AS: the trader starts flat and nothing is checked (see as2008.py).
            ledger = Ledger(base, quote, {}, ZERO, enforce=False)
            state = SimState(rules, clock, ledger, trade_id_prefix=id_prefix)
            model = AS2008Model(market, state, rng)
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
            state = SimState(rules, clock, ledger, trade_id_prefix=id_prefix)
            # Real time only (virtual runs stay exactly reproducible): a random phase of the
            # book interval, so that venues started together do not all tick at once.
            phase = 0.0 if clock.is_virtual else random.random()
            world = venue_world(market, worlds, clock.now(), user or f"{name}:{symbol}")
            arbitrage = None
            if world is not None and market.arbitrage is not None:
                arbitrage = Arbitrageurs(market.arbitrage, config.lot, arbitrage_rng(config.seed))
            model = RandomWalkModel(
                market, state, rng, phase=phase, world=world, arbitrage=arbitrage
            )
        else:
            raise ValueError(
                f"the {market.model} market is served by kasmm.venues.sim.replay.ReplayVenue "
                "(build_venue picks it)"
            )
        self._state = state
        #: The synchronous exchange behind this face (what the backtest driver calls).
        self.exchange = SimExchange(state, model, name)

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
        return self.exchange.model.mid

    @property
    def world(self) -> VenueWorld | None:
        """The venue's view of its world (random_walk with ``world``), else ``None``."""
        model = self.exchange.model
        return model.world if isinstance(model, RandomWalkModel) else None

    @property
    def book(self) -> Book:
        """The public book right now (synthetic liquidity merged with the bot's orders)."""
        return self.exchange.model.snapshot()

    def submit_taker(self, side: Side, size: Decimal) -> None:
        """Queue an outside market order of ``side`` and ``size`` (random-walk market only).

        It sweeps the combined book when :meth:`events` is next pulled (after any events already
        produced), before the next scheduled market event; its fills and the changed book come
        out of :meth:`events`. Test and bench support: a deterministic way to fill an order.
        """
        model = self.exchange.model
        if not isinstance(model, RandomWalkModel):
            raise RuntimeError("submit_taker needs the random_walk market")
        model.submit_taker(side, size)

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
        return self.exchange.connect_now()

    async def close(self) -> None:
        """Stop serving requests; ``events()`` ends at its next pull. Orders stay on the book."""
        self.close_now()

    async def events(self) -> AsyncGenerator[VenueEvent, None]:
        """Drive the market: sleep on the clock to each market event and yield what it produced.

        Market state lives in the venue, so a new ``events()`` iterator continues where the
        previous one stopped. Ends when the venue is closed.
        """
        exchange = self.exchange
        exchange.require_connected()
        model = exchange.model
        clock = self._clock
        while exchange.connected:
            # _next_event, written out: one coroutine less per market step of a live bot.
            nxt = model.poll()
            while isinstance(nxt, float):
                await clock.sleep_until(nxt)
                model.step()
                nxt = model.poll()
            yield nxt

    async def fetch_balances(self) -> Balances:
        """Free and locked balances of every asset the account holds."""
        await self._request()
        return self.exchange.balances_now()

    async def fetch_open_orders(self) -> list[OpenOrder]:
        """All open orders in placement order, whatever their client id prefix."""
        await self._request()
        return self.exchange.open_orders_now()

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
        return self.exchange.place_now(request)

    async def place_ioc(self, request: OrderRequest) -> IocOutcome:
        """Take other traders' liquidity up to ``request.price`` at once, cancel the rest
        (:mod:`.ioc`: self-trade prevention, funds for the whole order, the taker fee). The
        fills (``is_maker=False``) and then the book it left come out of :meth:`events`.

        :raises OrderRejected: not an IOC request, a rule violation, or the as2008 market.
        :raises InsufficientFunds: the free balance cannot back the whole order at its limit.
        """
        await self._request()
        return self.exchange.place_ioc_now(request)

    async def cancel_order(self, client_id: ClientOrderId) -> None:
        """Cancel one open order and unlock its funds.

        :raises OrderNotFound: no open order has this client id (filled, cancelled, unknown).
        """
        await self._request()
        self.exchange.cancel_order_now(client_id)

    async def place_orders(self, requests: Sequence[OrderRequest]) -> list[PlaceOutcome]:
        """Concurrent single placements, simulated: one latency for all, then each order in
        request order (what ``place_order`` would do, its error as its outcome).

        Awaiting the latency once (rather than racing one task per order) keeps virtual time
        exact, one ``latency_ms`` for the batch, and the booking order deterministic.
        """
        if not requests:
            return []
        await self._request()
        return self.exchange.place_orders_now(requests)

    async def cancel_orders(self, client_ids: Sequence[ClientOrderId]) -> list[CancelOutcome]:
        """Concurrent single cancels, simulated like :meth:`place_orders`."""
        if not client_ids:
            return []
        await self._request()
        return self.exchange.cancel_orders_now(client_ids)

    async def cancel_all(self, prefix: str) -> int:
        """Cancel every open order whose client id starts with ``prefix``; return the count."""
        await self._request()
        return self.exchange.cancel_all_now(prefix)

    # --- the synchronous face: :attr:`exchange` (a request's effect, without its latency) ---

    @property
    def latency_s(self) -> float:
        """The simulated request latency (seconds on the venue's clock)."""
        return self._latency_s

    def close_now(self) -> None:
        """:meth:`close`, synchronously."""
        self.exchange.close_now()

    # --- internals -------------------------------------------------------------------------

    async def _next_event(self) -> VenueEvent:
        """Sleep on the clock to each market step until one produces an event."""
        model = self.exchange.model
        clock = self._clock
        while True:
            nxt = model.poll()
            if not isinstance(nxt, float):
                return nxt
            await clock.sleep_until(nxt)
            model.step()

    async def _delay(self) -> None:
        """The configured request latency, on the venue's clock."""
        if self._latency_s > 0:
            await self._clock.sleep_until(self._clock.now() + self._latency_s)

    async def _request(self) -> None:
        """Common prologue of every request: must be connected, then the latency (without a
        coroutine of its own when there is none: every request of a demo)."""
        self.exchange.require_connected()
        if self._latency_s > 0:
            await self._delay()
