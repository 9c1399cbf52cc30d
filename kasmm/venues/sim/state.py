"""State the simulated venue's request side shares with its market models.

:class:`SimState` holds the clock, the trading rules, the bot's resting orders, the balance
ledger and the counters; a market model (random walk or Avellaneda–Stoikov) reads the orders and
calls :meth:`SimState.fill` to execute them. Keeping settlement in one place is what makes the
balance arithmetic identical for every model.

Fees: the maker fee is always charged in the quote currency, for buys and sells alike (``fee =
price * size * maker_fee``, exact ``Decimal``, no rounding; negative = rebate). A buy pays
``notional + fee`` and a sell receives ``notional - fee``. Charging the quote side for both keeps
inventory (base) changes exactly equal to the traded sizes, which is what the bot's inventory
accounting expects. A buy therefore locks ``notional * (1 + max(maker_fee, 0))`` so that the fill
can always be paid from the lock; a sell locks its base size only, since its fee comes out of the
proceeds. An immediate-or-cancel order (:mod:`.ioc`) pays the taker fee the same way; it locks
nothing, because it executes and settles within its own request.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Protocol

from kasmm.clock import Clock
from kasmm.core.types import (
    ZERO,
    Balance,
    Balances,
    Book,
    ClientOrderId,
    Fill,
    MarketRules,
    OrderFilled,
    OrderRequest,
    Side,
    TradeId,
    VenueEvent,
    VenueOrderId,
)
from kasmm.errors import InsufficientFunds
from kasmm.venues.sim.matching import OwnOrders, RestingOrder


@dataclass(frozen=True, slots=True)
class SimStats:
    """Request and fill counters of a simulated venue (a snapshot).

    ``places`` counts placement requests, accepted or not (each order of a batch call is one: the
    simulator has no batch endpoint; an IOC is one too); ``rejects`` the ones that failed (rule
    violations, post-only crosses, insufficient funds); ``cancels`` counts cancel requests
    (``cancel_order`` calls and orders of ``cancel_orders`` calls, ``cancel_all`` calls, one
    each, found or not); ``fills`` counts executions of the bot's orders (partial fills
    included; an IOC's too).
    """

    places: int = 0
    cancels: int = 0
    rejects: int = 0
    fills: int = 0


class Ledger:
    """Free and locked balances per asset, with the locking and settlement rules above.

    With ``enforce=False`` (the Avellaneda–Stoikov model) nothing is locked or checked and
    balances may go negative.
    """

    def __init__(
        self,
        base: str,
        quote: str,
        initial: Mapping[str, Decimal],
        maker_fee: Decimal,
        *,
        enforce: bool,
    ) -> None:
        self.base = base
        self.quote = quote
        self.maker_fee = maker_fee
        self.enforce = enforce
        self._buy_lock_factor = 1 + max(maker_fee, ZERO)
        self._free: dict[str, Decimal] = {asset: Decimal(v) for asset, v in initial.items()}
        self._free.setdefault(base, ZERO)
        self._free.setdefault(quote, ZERO)
        self._locked: dict[str, Decimal] = dict.fromkeys(self._free, ZERO)

    def _asset(self, side: Side) -> str:
        """The asset an order of ``side`` locks."""
        return self.quote if side is Side.BUY else self.base

    def lock(self, order: RestingOrder) -> None:
        """Reserve the funds backing a new order.

        :raises InsufficientFunds: the free balance cannot back the order.
        """
        if not self.enforce:
            return
        asset = self._asset(order.side)
        if order.side is Side.BUY:
            amount = order.price * order.remaining * self._buy_lock_factor
        else:
            amount = order.remaining
        free = self._free[asset]
        if amount > free:
            raise InsufficientFunds(
                f"order {order.client_id} needs {amount} {asset}, only {free} {asset} is free"
            )
        self._free[asset] = free - amount
        self._locked[asset] += amount
        order.locked = amount

    def release(self, order: RestingOrder) -> None:
        """Return whatever is still locked for ``order`` to the free balance."""
        if not self.enforce:
            return  # nothing was locked (see lock()): every order's ``locked`` stays ZERO
        asset = self._asset(order.side)
        self._free[asset] += order.locked
        self._locked[asset] -= order.locked
        order.locked = ZERO

    def settle(self, order: RestingOrder, price: Decimal, size: Decimal) -> Decimal:
        """Move balances for a maker fill of ``size`` at ``price``; return the quote fee."""
        notional = price * size
        fee = notional * self.maker_fee
        if order.side is Side.BUY:
            release = min(order.locked, notional * self._buy_lock_factor)
            order.locked -= release
            self._locked[self.quote] -= release
            self._free[self.quote] += release - notional - fee
            self._free[self.base] += size
        else:
            release = min(order.locked, size)
            order.locked -= release
            self._locked[self.base] -= release
            # Zero when enforced (the lock covers the size); -size when nothing was locked.
            self._free[self.base] += release - size
            self._free[self.quote] += notional - fee
        return fee

    def check_take(self, side: Side, limit: Decimal, size: Decimal, fee_rate: Decimal) -> None:
        """Refuse a taker order the free balance cannot back in full at its ``limit`` (a buy:
        ``limit * size * (1 + max(fee_rate, 0))`` quote; a sell: ``size`` base). Nothing is
        locked: the order executes and settles within the same request.

        :raises InsufficientFunds: the free balance falls short.
        """
        if not self.enforce:
            return
        if side is Side.BUY:
            asset, amount = self.quote, limit * size * (1 + max(fee_rate, ZERO))
        else:
            asset, amount = self.base, size
        free = self._free[asset]
        if amount > free:
            raise InsufficientFunds(
                f"taker {side} of {size} at {limit} needs {amount} {asset}, only {free} is free"
            )

    def settle_taker(self, side: Side, price: Decimal, size: Decimal, fee_rate: Decimal) -> Decimal:
        """Move free balances for a taker execution of ``size`` at ``price`` (the fee, at
        ``fee_rate``, in quote as for maker fills); return the fee."""
        notional = price * size
        fee = notional * fee_rate
        if side is Side.BUY:
            self._free[self.quote] -= notional + fee
            self._free[self.base] += size
        else:
            self._free[self.base] -= size
            self._free[self.quote] += notional - fee
        return fee

    def totals(self) -> dict[str, Decimal]:
        """Free plus locked, per asset."""
        return {asset: free + self._locked[asset] for asset, free in self._free.items()}

    def restore(self, balances: Mapping[str, Decimal]) -> None:
        """Hold exactly ``balances`` from now on, all free (a restart resuming its ledger).

        :raises RuntimeError: an order still locks funds (the restore would orphan the lock).
        """
        if any(self._locked.values()):
            raise RuntimeError("cannot restore balances while orders lock funds")
        self._free = {asset: Decimal(v) for asset, v in balances.items()}
        self._free.setdefault(self.base, ZERO)
        self._free.setdefault(self.quote, ZERO)
        self._locked = dict.fromkeys(self._free, ZERO)

    def snapshot(self) -> Balances:
        """The balances as the ``Venue`` protocol reports them."""
        return Balances(
            MappingProxyType(
                {asset: Balance(self._free[asset], self._locked[asset]) for asset in self._free}
            )
        )


def trade_id_prefix(kind: str, tag: str | None = None) -> str:
    """The start of a simulated venue's trade ids: ``<kind>-<tag>``.

    The ledger stores a fill once per trade id for its whole life, across restarts and venue
    rebuilds, so every venue instance numbers its fills under its own ``tag``: by default 16
    random hex digits (a collision between two instances of one profile is a 1-in-2**64
    event); tests inject a fixed one for exact ids.
    """
    return f"{kind}-{secrets.token_hex(8) if tag is None else tag}"


class SimState:
    """Clock, rules, resting orders, ledger and counters of one simulated venue.

    ``trade_id_prefix`` starts the trade ids of fills (``<prefix>-1``, ``<prefix>-2``, ...);
    build it with :func:`trade_id_prefix` so that it is unique to this venue instance.
    """

    def __init__(
        self,
        rules: MarketRules,
        clock: Clock,
        ledger: Ledger,
        *,
        trade_id_prefix: str = "sim",
        order_time: Callable[[], float] | None = None,
    ) -> None:
        self.rules = rules
        self.clock = clock
        #: The market's time an order is booked at (what trades are compared with): the
        #: clock's calendar for the simulator, the feed's exchange time for the paper venue.
        self._order_time = order_time or clock.wall
        self.ledger = ledger
        self.orders = OwnOrders()
        self.places = 0
        self.cancels = 0
        self.rejects = 0
        self.fills = 0
        self._trade_id_prefix = trade_id_prefix
        self._trade_seq = 0
        self._order_seq = 0

    def stats(self) -> SimStats:
        """A snapshot of the counters."""
        return SimStats(self.places, self.cancels, self.rejects, self.fills)

    @property
    def untouched(self) -> bool:
        """True until an order is booked (or refused for funds): balances are the initial ones."""
        return self._order_seq == 0 and self.fills == 0

    def starting_balances(self) -> dict[str, Decimal] | None:
        """The initial balances (totals per asset) while the account is untouched and keeps
        balances; ``None`` otherwise (see :class:`~kasmm.venues.sim.account.SimulatedAccount`)."""
        if not self.ledger.enforce or not self.untouched:
            return None
        return self.ledger.totals()

    def restore_balances(self, balances: Mapping[str, Decimal]) -> None:
        """Start this untouched account from ``balances``, all free.

        :raises RuntimeError: the account has traded already, or keeps no balances (AS model).
        """
        if not self.ledger.enforce:
            raise RuntimeError("this market keeps no balances")
        if not self.untouched:
            raise RuntimeError("balances can only be restored before the first order")
        self.ledger.restore(balances)

    def add_order(self, request: OrderRequest, on_grid: bool = False) -> RestingOrder:
        """Lock the funds for an already validated ``request`` and book it at the clock's time.

        :param on_grid: the request's ``ticks`` are its price on the rules' grid (what
            :func:`~.orders.validate_request` returned); the order keeps them.
        :raises InsufficientFunds: the free balance cannot back the order (nothing is booked).
        """
        self._order_seq += 1
        order = RestingOrder(
            client_id=request.client_id,
            venue_id=VenueOrderId(str(self._order_seq)),
            side=request.side,
            price=request.price,
            size=request.size,
            remaining=request.size,
            created_at=self._order_time(),
            seq=self._order_seq,
            ticks=request.ticks if on_grid else -1,
        )
        self.ledger.lock(order)
        self.orders.add(order)
        return order

    def cancel(self, client_id: ClientOrderId) -> RestingOrder | None:
        """Remove the open order ``client_id`` and unlock its funds; ``None`` when not open."""
        order = self.orders.pop(client_id)
        if order is not None:
            self.ledger.release(order)
        return order

    def cancel_prefix(self, prefix: str) -> int:
        """Cancel every open order whose client id starts with ``prefix``; return the count."""
        count = 0
        for order in self.orders:
            if order.client_id.startswith(prefix):
                self.cancel(order.client_id)
                count += 1
        return count

    def fill(self, order: RestingOrder, price: Decimal, size: Decimal) -> OrderFilled:
        """Execute ``size`` of the resting ``order`` at ``price`` as a maker fill.

        Settles balances, shrinks the order (removing it when done) and returns the event.
        """
        fee = self.ledger.settle(order, price, size)
        self.orders.shrink(order, size)
        if order.remaining == ZERO:
            self.orders.pop(order.client_id)
            self.ledger.release(order)  # releases nothing unless the lock had a residue
        self._trade_seq += 1
        self.fills += 1
        return OrderFilled(
            Fill(
                trade_id=TradeId(f"{self._trade_id_prefix}-{self._trade_seq}"),
                client_id=order.client_id,
                side=order.side,
                price=price,
                size=size,
                fee=fee,
                fee_asset=self.ledger.quote,
                ts=self.clock.wall(),
                remaining=order.remaining,
                is_maker=True,
                venue_id=order.venue_id,
            )
        )

    def take(
        self, request: OrderRequest, takes: Sequence[tuple[Decimal, Decimal]]
    ) -> tuple[VenueOrderId, list[OrderFilled]]:
        """Settle an immediate-or-cancel ``request`` that executed ``takes`` (price, size) as a
        taker: the taker fee, balances, one ``OrderFilled`` per execution (``is_maker=False``,
        ``remaining`` = the order's size not yet executed after it). The order gets a venue id
        like a booked one (its fills name it) and never rests."""
        self._order_seq += 1
        venue_id = VenueOrderId(str(self._order_seq))
        ledger, fee_rate, side = self.ledger, self.rules.taker_fee, request.side
        left = request.size
        events: list[OrderFilled] = []
        for price, size in takes:
            fee = ledger.settle_taker(side, price, size, fee_rate)
            left -= size
            self._trade_seq += 1
            self.fills += 1
            events.append(
                OrderFilled(
                    Fill(
                        trade_id=TradeId(f"{self._trade_id_prefix}-{self._trade_seq}"),
                        client_id=request.client_id,
                        side=side,
                        price=price,
                        size=size,
                        fee=fee,
                        fee_asset=ledger.quote,
                        ts=self.clock.wall(),
                        remaining=left,
                        is_maker=False,
                        venue_id=venue_id,
                    )
                )
            )
        return venue_id, events


class MarketModel(Protocol):
    """What the venue needs from a market model (random walk, Avellaneda–Stoikov)."""

    #: False when any limit price is accepted (the AS model has no book to cross).
    enforces_post_only: bool

    @property
    def mid(self) -> float:
        """The model's true mid price (introspection for tests and benches)."""
        ...

    def start(self) -> None:
        """Initialise the market at the current clock time (called by the first ``connect``)."""
        ...

    def best(self, side: Side) -> Decimal | None:
        """Best price of other traders' liquidity on ``side`` (``None`` when there is none)."""
        ...

    def snapshot(self) -> Book:
        """The public book now."""
        ...

    def poll(self) -> VenueEvent | float:
        """The next event when one is ready; otherwise the time of the next market step.

        The caller brings its clock to that time (a sleep in real time, a jump in virtual
        time: the async venue and the synchronous backtest both drive the model this way),
        then calls :meth:`step`, then polls again. Nothing in the market changes before
        :meth:`step`, so a caller may stop at a horizon after a poll.
        """
        ...

    def step(self) -> None:
        """Process the market step :meth:`poll` timed (the clock stands at its time)."""
        ...

    def take(
        self, taker_side: Side, limit: Decimal, size: Decimal
    ) -> list[tuple[Decimal, Decimal]]:
        """Take other traders' liquidity for an immediate-or-cancel order, up to ``size`` at
        prices no worse than ``limit``, stopping before any of the account's own orders
        (:func:`~.ioc.take_within`); the taken liquidity stays taken until the market next
        replaces it. Returns the executions (price, size), best first.

        :raises OrderRejected: the market has no liquidity to take (the AS model).
        """
        ...

    def publish(self, events: Sequence[VenueEvent]) -> None:
        """Hand out ``events`` (after those already produced), then the book as it is then."""
        ...
