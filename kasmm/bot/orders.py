"""The bot's own orders: what rests at the venue, how a round goes out, what came back.

Part of the engine (:mod:`kasmm.bot.engine`), synchronous and clock-free like it: it records
every order event in the engine's outbox and counts in the engine's counters. The round plan
(:meth:`OwnOrders.plan_round`) decides which actions may go out together: a full requote with
the balance to cover it is one wave, so it costs one round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from kasmm.bot.commands import Command, Log, RecordOrder
from kasmm.bot.stats import BotStats
from kasmm.core.grid import Grid
from kasmm.core.ids import ClientIdFactory
from kasmm.core.types import (
    ZERO,
    CancelOrder,
    ClientOrderId,
    Fill,
    OpenOrder,
    OrderAction,
    OrderIntent,
    OrderRequest,
    PlaceOrder,
    Side,
)
from kasmm.errors import (
    InsufficientFunds,
    OrderNotFound,
    OrderRejected,
    PostOnlyWouldCross,
    RequestTimedOut,
    VenueError,
)
from kasmm.store import OrderOpened, OrderStatusChanged
from kasmm.venues.base import IocOutcome

ReplaceMode = Literal["cancel_first", "place_first"]


@dataclass(frozen=True, slots=True, init=False)
class Wave:
    """Order actions that go out together (see :meth:`OwnOrders.plan_round`)."""

    cancels: tuple[ClientOrderId, ...] = ()
    places: tuple[PlaceOrder, ...] = ()

    def __init__(
        self, cancels: tuple[ClientOrderId, ...] = (), places: tuple[PlaceOrder, ...] = ()
    ) -> None:
        # Written out, not generated: see "Hot values" in kasmm/core/types.py.
        object.__setattr__(self, "cancels", cancels)
        object.__setattr__(self, "places", places)


@dataclass(frozen=True, slots=True, init=False)
class Budget:
    """The balances a round may spend: totals (resting orders' share is taken out here)."""

    base: Decimal
    quote: Decimal
    maker_fee: Decimal

    def __init__(self, base: Decimal, quote: Decimal, maker_fee: Decimal) -> None:
        # Written out, not generated: see "Hot values" in kasmm/core/types.py.
        object.__setattr__(self, "base", base)
        object.__setattr__(self, "quote", quote)
        object.__setattr__(self, "maker_fee", maker_fee)


class OwnOrders:
    """The orders of this run resting at the venue, and the outcomes of the bot's requests."""

    def __init__(
        self,
        ids: ClientIdFactory,
        stats: BotStats,
        outbox: list[Command],
        replace_mode: ReplaceMode,
        on_error: Any,
        *,
        journaled: bool = True,
        debug_logs: bool = True,
    ) -> None:
        self.ids = ids
        #: Order events are recorded for a ledger (a backtest has none: nothing is built).
        self.journaled = journaled
        #: Someone listens to debug events (else the per-order ones are not even built).
        self.debug_logs = debug_logs
        self.stats = stats
        self.replace_mode = replace_mode
        #: Resting orders by client id (this run's; sizes as last reported).
        self.open_orders: dict[ClientOrderId, OpenOrder] = {}
        #: Immediate-or-cancel orders the venue answered with a rest it cancelled: a partial
        #: fill of one reported after the answer must not make its row live again.
        self.iocs_closed: set[ClientOrderId] = set()
        #: The market's integer grid once the venue connected with usable rules: each open
        #: order is measured on it once (placed, filled) so reconciliation compares integers.
        self.grid: Grid | None = None
        self._outbox = outbox
        self.error = on_error
        #: Levels that mark placements held outside the quotes, with their role, and where
        #: their ids go as the venue accepts them (the engine's ``held``; :meth:`hold_level`).
        self._held_levels: dict[int, str] = {}
        self._held: dict[ClientOrderId, str] = {}

    def hold_level(self, level: int, role: str, held: dict[ClientOrderId, str]) -> None:
        """Placements at ``level`` (below 0: never a quote's) are held outside the quotes as
        ``role``: each one's client id goes to ``held`` when the venue accepts it, before any
        later decision could reconcile it as a quote (a post-only rebalance order)."""
        self._held_levels[level] = role
        self._held = held

    def _log(self, level: str, event: str, **fields: Any) -> None:
        self._outbox.append(Log(level, event, fields))

    def _record(self, entry: OrderOpened | OrderStatusChanged) -> None:
        self._outbox.append(RecordOrder(entry))

    def filled(self, fill: Fill) -> None:
        """A stored fill of one of this profile's orders: its status, its remaining size."""
        if self.journaled:
            status = "filled" if fill.remaining <= 0 else "partially_filled"
            if status == "filled" or fill.client_id not in self.iocs_closed:
                self._record(OrderStatusChanged(fill.client_id, status, fill.ts))
        order = self.open_orders.get(fill.client_id)
        if order is None:
            return
        if fill.remaining <= 0:
            del self.open_orders[fill.client_id]
        else:
            self.open_orders[fill.client_id] = _with_remaining(order, fill.remaining)

    def closed(self, client_id: ClientOrderId, reason: str, ts: float) -> None:
        """The venue took an order off the book for another reason than a fill."""
        if self.open_orders.pop(client_id, None) is not None and self.journaled:
            self._record(OrderStatusChanged(client_id, "cancelled", ts, reason=reason))

    def plan_round(
        self, actions: tuple[OrderAction, ...], budget: Budget | None
    ) -> tuple[Wave, ...]:
        """Order the round's actions into waves; every action of a wave goes out at once.

        ``cancel_first``: the cancels, together with every placement the free balance already
        covers; then the placements that need what the cancels free (or that would cross one
        of the bot's own orders being cancelled). ``place_first``: the placements that fit,
        then the cancels, then the rest, so the book is never empty while the balance allows.
        """
        cancel_ids: list[ClientOrderId] = []
        place_list: list[PlaceOrder] = []
        for a in actions:
            if isinstance(a, CancelOrder):
                cancel_ids.append(a.client_id)
            elif isinstance(a, PlaceOrder):
                place_list.append(a)
        cancels, places = tuple(cancel_ids), tuple(place_list)
        now, later = self._split_by_budget(places, cancels, budget)
        # Only the waves with something in them.
        waves: list[Wave] = []
        if self.replace_mode == "place_first":
            if now:
                waves.append(Wave(places=now))
            if cancels:
                waves.append(Wave(cancels=cancels))
        elif cancels or now:
            waves.append(Wave(cancels=cancels, places=now))
        if later:
            waves.append(Wave(places=later))
        return tuple(waves)

    def _split_by_budget(
        self,
        places: tuple[PlaceOrder, ...],
        cancelling: tuple[ClientOrderId, ...],
        budget: Budget | None,
    ) -> tuple[tuple[PlaceOrder, ...], tuple[PlaceOrder, ...]]:
        """The placements the free balance covers now (in order), and those that must wait
        (``budget`` None: the account has no balances to respect, as in the as2008 model).

        ``cancelling``: the round's cancels (a handful: a tuple is searched as fast as a set
        is built)."""
        if not places or budget is None:
            return places, ()
        free_quote, free_base = budget.quote, budget.base
        lowest_ask = highest_bid = None
        for order in self.open_orders.values():
            if order.side is Side.BUY:
                free_quote -= order.price * order.remaining
                if order.client_id in cancelling and (
                    highest_bid is None or order.price > highest_bid
                ):
                    highest_bid = order.price
            else:
                free_base -= order.remaining
                if order.client_id in cancelling and (
                    lowest_ask is None or order.price < lowest_ask
                ):
                    lowest_ask = order.price
        fee = 1 + max(budget.maker_fee, ZERO)
        now: list[PlaceOrder] = []
        later: list[PlaceOrder] = []
        for place in places:
            intent = place.intent
            if intent.side is Side.BUY:
                need = intent.price * intent.size * fee
                fits = need <= free_quote and (lowest_ask is None or intent.price < lowest_ask)
                if fits:
                    free_quote -= need
            else:
                fits = intent.size <= free_base and (
                    highest_bid is None or intent.price > highest_bid
                )
                if fits:
                    free_base -= intent.size
            (now if fits else later).append(place)
        return tuple(now), tuple(later)

    def request_for(self, intent: OrderIntent) -> OrderRequest:
        """The venue request for ``intent``, with a new client id of this run."""
        return OrderRequest(
            client_id=self.ids.next(),
            side=intent.side,
            price=intent.price,
            size=intent.size,
            post_only=True,
            ticks=intent.ticks,
            lots=intent.lots,
        )

    def placed(
        self, request: OrderRequest, level: int, order: OpenOrder, sent_at: float, wall: float
    ) -> None:
        """The venue accepted ``request`` (sent at interval time ``sent_at``).

        The order's age (renewal) is measured from when it was sent, whatever the venue
        stamped it with.
        """
        if self.journaled:
            self._record(
                OrderOpened(
                    request.client_id, request.side, request.price, request.size, wall, "open",
                    level, order.venue_id, None,
                )
            )  # fmt: skip
        grid = self.grid
        ticks = lots = -1
        if grid is not None:
            # The intent's ticks and lots when they spell the accepted order on this grid (the
            # usual answer: as requested), else measured (a cached lookup against a division).
            # A venue that echoes the request (the simulator) hands back the grid's own cached
            # Decimals: identity answers before a value comparison (a grid value is never NaN).
            t, n = request.ticks, request.lots
            price, remaining = order.price, order.remaining
            same_price = False
            if t > 0:
                p = grid.price(t)
                same_price = p is price or p == price
            ticks = t if same_price else grid.exact_ticks(price)
            same_size = False
            if n >= 0:
                s = grid.size(n)
                same_size = s is remaining or s == remaining
            lots = n if same_size else grid.exact_lots(remaining)
        self.open_orders[order.client_id] = OpenOrder(
            client_id=order.client_id,
            side=order.side,
            price=order.price,
            size=order.size,
            remaining=order.remaining,
            created_at=sent_at,
            venue_id=order.venue_id,
            level=level,
            ticks=ticks,
            lots=lots,
            grid=grid,
        )
        self.stats.orders_placed += 1
        self.stats.placed_size += order.size
        self.stats.consecutive_errors = 0
        if level < 0 and self._held_levels:
            role = self._held_levels.get(level)
            if role is not None:
                self._held[order.client_id] = role
        if self.debug_logs:
            self._log(
                "debug",
                "order_placed",
                side=request.side.value,
                price=str(request.price),
                size=str(request.size),
                client_id=request.client_id,
            )

    def rejected(
        self,
        request: OrderRequest,
        level: int,
        error: OrderRejected | InsufficientFunds,
        wall: float,
    ) -> None:
        """The venue refused ``request`` (post-only cross, funds, a rule): a normal outcome."""
        reason = (
            "post_only"
            if isinstance(error, PostOnlyWouldCross)
            else "funds"
            if isinstance(error, InsufficientFunds)
            else str(error)
        )
        self.stats.orders_rejected += 1
        self.stats.consecutive_errors = 0
        if self.journaled:
            self._record(
                OrderOpened(
                    request.client_id, request.side, request.price, request.size, wall,
                    "rejected", level, None, reason,
                )
            )  # fmt: skip
        if isinstance(error, PostOnlyWouldCross):
            if self.debug_logs:
                self._log("debug", "order_rejected", reason="post_only", side=request.side.value)
        elif not isinstance(error, InsufficientFunds):
            self._log("warning", "order_rejected", reason=reason, side=request.side.value)

    def ioc_answered(self, request: OrderRequest, outcome: IocOutcome, wall: float) -> None:
        """The venue answered an immediate-or-cancel order of this profile (a hedge, a
        rebalance order). It never
        rests: its row (written before it was sent, by whoever asked for it) ends ``filled``,
        or ``cancelled`` with what the venue did with the rest. Its fills come as any fill;
        it counts as a placement (the fill ratio and order-to-trade ratio include it)."""
        self.stats.consecutive_errors = 0
        self.stats.orders_placed += 1
        self.stats.placed_size += request.size
        if not self.journaled:
            return
        cid, vid = outcome.client_id, outcome.venue_id
        if outcome.status == "filled":
            self._record(OrderStatusChanged(cid, "filled", wall, vid))
        else:
            reason = "ioc_partial" if outcome.status == "partial" else "ioc_expired"
            self._record(OrderStatusChanged(cid, "cancelled", wall, vid, reason))
            if outcome.status == "partial":
                self.iocs_closed.add(cid)

    def ioc_failed(self, request: OrderRequest, error: VenueError, wall: float) -> None:
        """An immediate-or-cancel order of this profile failed: refused (a rule, funds), its
        answer lost (``unknown``: its fills, if any, still come as fills), or another error
        (counted like any failed request)."""
        if isinstance(error, RequestTimedOut):
            status, reason = "unknown", "timeout"
            self.error(error)
        elif isinstance(error, OrderRejected | InsufficientFunds):
            status, reason = (
                "rejected",
                "funds" if isinstance(error, InsufficientFunds) else str(error),
            )
            self.stats.orders_rejected += 1
            self.stats.consecutive_errors = 0
        else:
            status, reason = "rejected", type(error).__name__
            self.error(error)
        if self.journaled:
            self._record(OrderStatusChanged(request.client_id, status, wall, reason=reason))
        self._log("warning", "ioc_failed", client_id=request.client_id, reason=reason)

    def outcome_unknown(self, request: OrderRequest, level: int, wall: float) -> None:
        """A lost answer the lookup could not resolve: the order may rest (the audit cancels
        it if so). The error itself is counted by :meth:`error`."""
        if not self.journaled:
            return
        self._record(
            OrderOpened(
                request.client_id, request.side, request.price, request.size, wall,
                "unknown", level, None, "timeout",
            )
        )  # fmt: skip

    def cancelled(self, client_id: ClientOrderId, error: VenueError | None, wall: float) -> None:
        """The outcome of a cancel: done (``None``), gone already (``OrderNotFound``), or
        failed (the order stays tracked and is cancelled again next round)."""
        if error is None:
            self.stats.orders_cancelled += 1
            if self.journaled:
                self._record(OrderStatusChanged(client_id, "cancelled", wall))
            if self.debug_logs:
                self._log("debug", "order_cancelled", client_id=client_id)
        elif isinstance(error, OrderNotFound):
            # Already gone (filled or expired): a fill event may still be on its way, and
            # moves the order to ``filled`` if so.
            self.stats.cancel_not_found += 1
            if self.journaled:
                self._record(OrderStatusChanged(client_id, "cancelled", wall, reason="gone"))
        else:
            self.error(error)
            return
        self.stats.consecutive_errors = 0
        self.open_orders.pop(client_id, None)

    def stopped_order(self, client_id: ClientOrderId, found: bool, wall: float) -> None:
        """An order cancelled by a stop (``found``: the venue still had it)."""
        if found:
            self.stats.orders_cancelled += 1
            if self.journaled:
                self._record(OrderStatusChanged(client_id, "cancelled", wall, reason="stop"))
        self.open_orders.pop(client_id, None)

    def untracked(self, listed: Sequence[OpenOrder]) -> tuple[ClientOrderId, ...]:
        """Orders of this profile the venue lists but the engine does not know (placements
        whose outcome stayed unknown, cancels answered "unknown order" while the order still
        rests): the driver cancels them."""
        return tuple(
            o.client_id
            for o in listed
            if self.ids.is_own(o.client_id) and o.client_id not in self.open_orders
        )

    def untracked_cancelled(self, client_id: ClientOrderId, found: bool, wall: float) -> None:
        """The driver cancelled an untracked order (``found``: the venue still had it)."""
        if found:
            self.stats.orders_cancelled += 1
            if self.journaled:
                self._record(OrderStatusChanged(client_id, "cancelled", wall, reason="untracked"))
        self.stats.untracked_cancelled += 1
        self._log("warning", "untracked_order_cancelled", client_id=client_id)


def _with_remaining(order: OpenOrder, remaining: Decimal) -> OpenOrder:
    grid: Grid | None = order.grid
    return OpenOrder(
        client_id=order.client_id,
        side=order.side,
        price=order.price,
        size=order.size,
        remaining=remaining,
        created_at=order.created_at,
        venue_id=order.venue_id,
        level=order.level,
        ticks=order.ticks,
        lots=-1 if grid is None else grid.exact_lots(remaining),
        grid=grid,
    )
