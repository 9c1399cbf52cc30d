"""Hedging one profile's fills on another venue: a pure state machine, events in, orders out.

Cross-exchange market making quotes on a venue A and offsets every fill there with an
immediate-or-cancel (IOC) order on a venue B, so that inventory stays flat across the two and
A's spread is earned without A's inventory risk. Everything that decides lives here; the
supervisor's hedging task (:mod:`kasmm.supervisor.hedging`) feeds it A's stored fills, B's book
and rules, B's answers and B's fills, and carries out the one order it asks for at a time.

Rules of the road:

* A's fills are *exposures*, kept per trade id (the ledger links each hedge order to the A fills
  it covers). Exposures of opposite sides net against each other first (oldest first), so the
  open ones are always of one side and their sum is the net to hedge.
* The first unhedged fill opens a window of ``window_s``; when it ends the net is sent as one
  IOC on B (opposite side, rounded down to B's lot, priced at most ``max_slippage_bps`` through
  B's top of book, rounded to B's tick toward less slippage). A net below ``min_base`` or B's
  minimums is carried until the next fill.
* One hedge order is in flight at a time. It is *settled* once B answered and B's fills add up
  to the answer (or ``retry_s`` after the answer: the venue's answer counts then). The part of
  its covers it did not fill goes back to the open exposures and is sent again ``retry_s``
  later, against the book of then.
* The residual is A's net filled minus what B offset: ``a_net + b_net`` (both signed by side).
  :func:`unhedged_trip` turns a residual beyond ``max_unhedged_base`` into a kill-switch trip.

Every transition is a method returning a new frozen :class:`HedgeState`; nothing here reads a
clock (``now`` is the interval clock, passed in) or touches a venue.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from kasmm.core.exposure import Exposure, absorb, residual_changes, take
from kasmm.core.risk import KillAction, Trip
from kasmm.core.rules import BPS, ceil_to, floor_to, round_size, size_ok
from kasmm.core.types import ZERO, Book, ClientOrderId, MarketRules, Side, TradeId

__all__ = [
    "UNHEDGED_RULE",
    "Exposure",
    "HedgeParams",
    "HedgeState",
    "InFlight",
    "SendIoc",
    "Settled",
    "hedge_price",
    "links_of",
    "residual_changes",
    "unhedged_trip",
]

#: The rule name of the residual's trips (``Engine.external_trip(trip, "hedge")``).
UNHEDGED_RULE = "max_unhedged_base"


@dataclass(frozen=True, slots=True)
class HedgeParams:
    """A profile's ``hedge:`` block, in the core's units."""

    window_s: float
    min_base: Decimal
    max_slippage_bps: Decimal
    retry_s: float
    max_unhedged_base: Decimal
    action: KillAction = "pause"
    #: How long one pause of the residual rule lasts; it trips again while the residual stays
    #: beyond the limit (short enough to resume soon after, long enough not to log a trip a
    #: second while the hedge venue is down).
    pause_s: float = 5.0


@dataclass(frozen=True, slots=True)
class SendIoc:
    """Send an IOC on B: ``side`` (opposite to A's net), at most ``price``, ``size`` base,
    covering ``covers`` of A's fills (their parts add up to ``size``). ``mid``: B's mid when
    it was priced (what its slippage is measured against)."""

    side: Side
    price: Decimal
    size: Decimal
    covers: tuple[Exposure, ...]
    mid: Decimal | None
    #: Fills netted to nothing since the last order (a buy and a sell of the same size): the
    #: order hedges the net they are part of, so it is linked to them too.
    netted: tuple[TradeId, ...] = ()

    @property
    def linked(self) -> tuple[TradeId, ...]:
        """Every A fill it is linked to with nothing of its own to offset."""
        return (*(t for c in self.covers for t in c.netted), *self.netted)


def links_of(order: SendIoc) -> tuple[tuple[TradeId, Decimal], ...]:
    """The A fills ``order`` is linked to, each once, with the base of it the order offsets
    (0 for a fill netted into a cover or netted to nothing)."""
    out: dict[TradeId, Decimal] = {}
    for c in order.covers:
        out[c.trade_id] = out.get(c.trade_id, ZERO) + c.open
    for t in order.linked:
        out.setdefault(t, ZERO)
    return tuple(out.items())


@dataclass(frozen=True, slots=True)
class InFlight:
    """The hedge order sent and not settled yet, with what came back so far."""

    client_id: ClientOrderId
    order: SendIoc
    sent_at: float
    #: B's fills of it seen so far (base, and their price x size for the average price).
    filled: Decimal = ZERO
    notional: Decimal = ZERO
    fill_ids: frozenset[TradeId] = frozenset()
    #: The venue's answer: the base it filled (``None``: no answer yet, or the answer was lost).
    reported: Decimal | None = None
    #: When it is settled whatever came back: ``retry_s`` after the venue answered (or the
    #: answer was lost), at once when it was refused. ``None``: no answer yet.
    settle_at: float | None = None


@dataclass(frozen=True, slots=True)
class Settled:
    """A hedge order's result: what it offset of each A fill, and its average price."""

    client_id: ClientOrderId
    side: Side
    size: Decimal
    hedged: Decimal
    #: ``(A trade id, base of it this order was sent to offset, base it did offset)``.
    parts: tuple[tuple[TradeId, Decimal, Decimal], ...]
    average_price: Decimal | None
    #: How far the average price was through B's mid at send, in bps (``None``: no fill or
    #: no mid). Positive is a cost.
    slippage_bps: float | None
    #: Fills netted into its covers or to nothing before it (linked to it, with nothing of
    #: their own to offset).
    netted: tuple[TradeId, ...] = ()


def hedge_price(
    side: Side,
    book: Book,
    rules: MarketRules,
    max_bps: Decimal,
    own: Decimal | None = None,
) -> Decimal | None:
    """The IOC's limit price: at most ``max_bps`` through the top of ``book`` (the others'
    liquidity) on the side it takes, rounded to the tick toward less slippage (a buy down, a
    sell up), and a tick short of ``own`` (the hedge profile's own best order on that side:
    an IOC reaching it would trade with itself, which venues refuse); ``None`` when that side
    of the book is empty or no price is left."""
    through = max_bps / BPS
    tick = rules.tick
    if side is Side.BUY:
        ask = book.best_ask
        price = None if ask is None else floor_to(ask * (1 + through), tick)
        if price is not None and own is not None:
            price = min(price, ceil_to(own, tick) - tick)
            if ask is not None and price < ask:
                return None
    else:
        bid = book.best_bid
        price = None if bid is None else ceil_to(bid * (1 - through), tick)
        if price is not None and own is not None:
            price = max(price, floor_to(own, tick) + tick)
            if bid is not None and price > bid:
                return None
    return price if price is not None and price > ZERO else None


@dataclass(frozen=True, slots=True)
class HedgeState:
    """What one hedging profile has left to offset, and the hedge order in flight."""

    open: tuple[Exposure, ...] = ()
    in_flight: InFlight | None = None
    #: When the next order may go (the window's end, or a retry); ``None``: nothing waiting.
    due_at: float | None = None
    #: Fills netted to nothing since the last order, linked to the next one.
    netted: tuple[TradeId, ...] = ()
    #: A's fills taken in and B's hedge fills counted, signed by side (+ buys).
    a_net: Decimal = ZERO
    b_net: Decimal = ZERO
    #: Hedge orders sent, base they offset, and the sum and count of their slippages.
    orders_sent: int = 0
    hedged_base: Decimal = ZERO
    slippage_bps_sum: float = 0.0
    slippage_count: int = 0

    # --- readings -------------------------------------------------------------------------

    @property
    def residual(self) -> Decimal:
        """A's net filled minus what B offset (signed: + means A's side holds more base)."""
        return self.a_net + self.b_net

    def per_fill(self) -> dict[TradeId, Decimal]:
        """Each A fill not fully offset, and the base of it still unhedged. The covers of the
        order in flight count whole until it is settled (its fills are attributed then)."""
        out: dict[TradeId, Decimal] = {}
        covers = self.in_flight.order.covers if self.in_flight is not None else ()
        for e in (*covers, *self.open):
            out[e.trade_id] = out.get(e.trade_id, ZERO) + e.open
        return out

    @property
    def average_slippage_bps(self) -> float | None:
        """Mean slippage of the settled orders with a fill (bps through B's mid at send)."""
        return self.slippage_bps_sum / self.slippage_count if self.slippage_count else None

    # --- A's side -------------------------------------------------------------------------

    def recovered(self, exposures: tuple[Exposure, ...], now: float) -> HedgeState:
        """The state after a restart: what the ledger says is still unhedged, taken in as if
        just filled, due at once."""
        state = self
        for e in exposures:
            open_, dropped = absorb(state.open, e)
            netted = (*state.netted, *dropped)
            state = replace(state, open=open_, a_net=state.a_net + e.signed, netted=netted)
        return replace(state, due_at=now if state.open else None)

    def on_fill(
        self, trade_id: TradeId, side: Side, size: Decimal, now: float, params: HedgeParams
    ) -> HedgeState:
        """A stored fill of A: net it against the open exposures, open the window."""
        exposure = Exposure(trade_id, side, size)
        open_, dropped = absorb(self.open, exposure)
        due = now + params.window_s
        if self.due_at is not None:
            due = min(due, self.due_at)
        return replace(
            self,
            open=open_,
            a_net=self.a_net + exposure.signed,
            due_at=due,
            netted=(*self.netted, *dropped),
        )

    # --- deciding -------------------------------------------------------------------------

    def decide(
        self,
        now: float,
        book: Book | None,
        rules: MarketRules | None,
        params: HedgeParams,
        own: tuple[Decimal | None, Decimal | None] = (None, None),
    ) -> tuple[HedgeState, SendIoc | None, Settled | None]:
        """At ``now``: settle an order whose time is up, then the order to send, if due.

        :param book: B's book without B's own orders (the liquidity an IOC can take).
        :param own: B's own best bid and ask (an IOC stops a tick short of them).
        :return: the new state, the order to send (then call :meth:`sent`), and the order
            settled now, if any.
        """
        state, settled = self, None
        flight = state.in_flight
        if flight is not None:
            if not state.ready() and (flight.settle_at is None or now < flight.settle_at):
                return state, None, None
            state, settled = state._settle(now, params)
        if state.due_at is None or now < state.due_at:
            return state, None, settled
        net = sum((e.signed for e in state.open), ZERO)
        if net == ZERO:
            return replace(state, due_at=None), None, settled
        if book is None or rules is None:  # B has no book yet (or is down): try again later
            return replace(state, due_at=now + params.retry_s), None, settled
        side = Side.SELL if net > ZERO else Side.BUY
        price = hedge_price(
            side, book, rules, params.max_slippage_bps, own[0] if side is Side.SELL else own[1]
        )
        if price is None:
            return replace(state, due_at=now + params.retry_s), None, settled
        size = round_size(abs(net), rules.lot)
        if size < params.min_base or not size_ok(price, size, rules, check_notional=True):
            return replace(state, due_at=None), None, settled  # carried to the next fill
        covers, _ = take(state.open, size)
        return state, SendIoc(side, price, size, covers, book.mid, state.netted), settled

    def sent(self, order: SendIoc, client_id: ClientOrderId, now: float) -> HedgeState:
        """``order`` went out as ``client_id``: its covers leave the open exposures."""
        covers, rest = take(self.open, order.size)
        assert covers == order.covers, "the open exposures changed between decide and sent"
        return replace(
            self,
            open=rest,
            in_flight=InFlight(client_id, order, now),
            due_at=None,
            orders_sent=self.orders_sent + 1,
            netted=self.netted[len(order.netted) :],
        )

    # --- B's side -------------------------------------------------------------------------

    def on_hedge_fill(
        self, client_id: ClientOrderId, trade_id: TradeId, size: Decimal, price: Decimal
    ) -> HedgeState:
        """A stored fill of the hedge order in flight (others: unchanged)."""
        flight = self.in_flight
        if flight is None or flight.client_id != client_id or trade_id in flight.fill_ids:
            return self
        flight = replace(
            flight,
            filled=flight.filled + size,
            notional=flight.notional + size * price,
            fill_ids=flight.fill_ids | {trade_id},
        )
        signed = size if flight.order.side is Side.BUY else -size
        return replace(self, in_flight=flight, b_net=self.b_net + signed)

    def on_answer(
        self, client_id: ClientOrderId, filled: Decimal | None, now: float, params: HedgeParams
    ) -> HedgeState:
        """B answered the order: it filled ``filled`` base (``None``: the answer was lost, so
        its fills decide). It is settled once its fills add up to that, or ``retry_s`` on."""
        flight = self.in_flight
        if flight is None or flight.client_id != client_id:
            return self
        flight = replace(flight, reported=filled, settle_at=now + params.retry_s)
        return replace(self, in_flight=flight)

    def on_refused(self, client_id: ClientOrderId, now: float) -> HedgeState:
        """B refused the order, or could not be asked (it executed nothing): settled on the
        next decision; what it covered is sent again ``retry_s`` later."""
        flight = self.in_flight
        if flight is None or flight.client_id != client_id:
            return self
        return replace(self, in_flight=replace(flight, reported=ZERO, settle_at=now))

    def ready(self) -> bool:
        """The order in flight can be settled now: answered, and its fills add up."""
        flight = self.in_flight
        return (
            flight is not None
            and flight.settle_at is not None
            and flight.reported is not None
            and flight.filled >= flight.reported
        )

    def _settle(self, now: float, params: HedgeParams) -> tuple[HedgeState, Settled]:
        flight = self.in_flight
        assert flight is not None
        order = flight.order
        reported = flight.reported if flight.reported is not None else flight.filled
        hedged = min(order.size, max(flight.filled, reported))
        extra = hedged - flight.filled  # the venue says it filled more than we saw fills of
        b_net = self.b_net + (extra if order.side is Side.BUY else -extra)
        left = hedged
        parts: list[tuple[TradeId, Decimal, Decimal]] = []
        back: list[Exposure] = []
        for cover in order.covers:
            done = min(left, cover.open)
            left -= done
            parts.append((cover.trade_id, cover.open, done))
            if cover.open > done:  # its netted fills are linked to this order already
                back.append(replace(cover, open=cover.open - done, netted=()))
        open_, netted = self.open, self.netted
        for cover in reversed(back):  # each goes to the front: the oldest ends up first
            open_, dropped = absorb(open_, cover, front=True)
            netted = (*netted, *dropped)
        average = flight.notional / flight.filled if flight.filled > ZERO else None
        if average is None and hedged > ZERO:
            average = order.price  # filled, fills not seen: at worst its limit
        slippage = None
        mid = order.mid
        if average is not None and mid is not None and mid > ZERO:
            through = average - mid if order.side is Side.BUY else mid - average
            slippage = float(through / mid * BPS)
        settled = Settled(
            flight.client_id,
            order.side,
            order.size,
            hedged,
            tuple(parts),
            average,
            slippage,
            order.linked,
        )
        state = replace(
            self,
            open=open_,
            netted=netted,
            in_flight=None,
            b_net=b_net,
            due_at=_after_settle(self.due_at, now + params.retry_s if hedged < order.size else None)
            if open_
            else None,
            hedged_base=self.hedged_base + hedged,
            slippage_bps_sum=self.slippage_bps_sum + (slippage or 0.0),
            slippage_count=self.slippage_count + (slippage is not None),
        )
        return state, settled


def _after_settle(due: float | None, retry: float | None) -> float | None:
    """The next send after a settlement: the sooner of a fill's window and the retry of what
    the order left (each ``None`` when there is none)."""
    if due is None:
        return retry
    return due if retry is None else min(due, retry)


def unhedged_trip(state: HedgeState, params: HedgeParams, now: float) -> Trip | None:
    """The ``max_unhedged_base`` trip while ``|residual|`` is beyond the limit, else ``None``."""
    residual = abs(state.residual)
    if residual <= params.max_unhedged_base:
        return None
    return Trip(
        rule=UNHEDGED_RULE,
        action=params.action,
        value=float(residual),
        limit=float(params.max_unhedged_base),
        ts=now,
        detail=f"unhedged residual {state.residual} base",
        pause_s=params.pause_s if params.action == "pause" else None,
    )
