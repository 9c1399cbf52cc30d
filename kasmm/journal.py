"""What one bot writes to the ledger, and what it reads back on start.

The bot talks to this class only, never to SQLite: fills are committed before the bot acts on
them (and a fill seen twice is acted on once); order events are buffered during a requote round
and written in one transaction after the round was handed to the venue, so the ledger is never
on the book -> order path. Without a ledger (``kasmm run`` without a state directory) the
journal still de-duplicates fills in memory.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import structlog

from kasmm.core.pnl import PnlState
from kasmm.core.risk import Trip
from kasmm.core.types import ZERO, ClientOrderId, Fill, OpenOrder, OrderRequest, VenueOrderId
from kasmm.store import (
    AsyncLedger,
    KpiRecord,
    OrderJournalEntry,
    OrderOpened,
    OrderStatusChanged,
)
from kasmm.store.pnl_replay import transfer_value
from kasmm.store.settlements import BookedTransfer, SweepRecord, TransferDirection
from kasmm.venues.sim.account import simulated_account

_log = structlog.get_logger("kasmm.journal")

#: Statuses after which an order cannot rest at the venue any more.
_FINAL = frozenset({"filled", "cancelled", "rejected"})
#: Trade ids remembered in memory for de-duplication (the ledger remembers all of them).
_SEEN_TRADES = 10_000


@dataclass(frozen=True)
class Restored:
    """A profile's durable state, as the ledger had it at start."""

    opening: tuple[Decimal, Decimal] | None
    pnl: PnlState | None
    peak_equity: Decimal | None
    halt: Trip | None
    day_start_equity: Decimal | None = None
    #: The settlement sweeps the profile booked as transfers, oldest first, and the wall
    #: time accounting opened (sweeps before it are the opening's history).
    transfers: tuple[BookedTransfer, ...] = ()
    opened_at: float | None = None


class BotJournal:
    """One profile's view of the ledger."""

    def __init__(self, profile: str, quote_asset: str, ledger: AsyncLedger | None) -> None:
        self.profile = profile
        self.quote_asset = quote_asset
        self.ledger = ledger
        self._orders: list[OrderJournalEntry] = []
        self._seen: OrderedDict[str, None] = OrderedDict()

    async def restore(self, tz: str, now: float) -> Restored:
        """Opening position, PnL (from stored fills), peak equity, an active halt, and the
        equity at the start of the local day in ``tz`` (for the daily-loss rule)."""
        if self.ledger is None:
            return Restored(None, None, None, None)
        opening = await self.ledger.opening(self.profile)
        pnl = (
            await self.ledger.pnl_state(self.profile, self.quote_asset, opening)
            if opening is not None
            else None
        )
        peak = await self.ledger.peak_equity(self.profile)
        record = await self.ledger.active_halt(self.profile)
        halt = None
        if record is not None:
            details: dict[str, Any] = dict(record.details)
            halt = Trip(
                rule=record.rule,
                action="halt",
                value=_float(details.get("value")),
                limit=_float(details.get("limit")),
                ts=record.ts,
                detail=str(details.get("detail", "")),
            )
        start = await self.ledger.day_start(self.profile, tz, now)
        transfers = tuple(await self.ledger.booked_transfers(self.profile))
        day_start = None
        if start is not None:
            # The day's start forgets what settlement took out after the snapshot it comes
            # from (the peak was lowered when each was stored): the day's PnL measures trading
            # only. What left before that snapshot is in it already, also when the day starts
            # from its own first snapshot (none before midnight).
            taken, day_start = start
            day_start -= sum(
                (transfer_value(t, self.quote_asset) for t in transfers if t.ts > taken), start=ZERO
            )
        opened_at = await self.ledger.opened_at(self.profile)
        return Restored(opening, pnl, peak, halt, day_start, transfers, opened_at)

    async def booked_transfers(self) -> tuple[tuple[BookedTransfer, ...], float | None]:
        """The transfers this profile booked and the wall time its accounting opened."""
        if self.ledger is None:
            return (), None
        booked = tuple(await self.ledger.booked_transfers(self.profile))
        return booked, await self.ledger.opened_at(self.profile)

    async def sweeps(self, account: str, since: float) -> list[SweepRecord]:
        """The settlement sweeps of exchange account ``account`` requested since ``since``
        (any process may have made them); none without a ledger."""
        if self.ledger is None:
            return []
        return await self.ledger.sweeps(account, None if since == math.inf else since)

    async def transfer(
        self,
        key: str,
        direction: TransferDirection,
        asset: str,
        amount: Decimal,
        mark: Decimal,
        value: Decimal,
        ts: float,
    ) -> None:
        """Store the booking of a sweep as a transfer, lowering the stored equity peak by its
        ``value`` in the same transaction (a key is booked once: the ledger's key)."""
        if self.ledger is not None:
            await self.ledger.book_transfer(
                self.profile, key, direction, asset, amount, mark, ts, value
            )

    async def set_opening(self, position: Decimal, mark: Decimal, ts: float) -> None:
        """Store where accounting starts (first run of this profile only)."""
        if self.ledger is not None:
            await self.ledger.set_opening(self.profile, position, mark, ts)

    async def fill(self, fill: Fill) -> bool:
        """Commit a fill; ``False`` when it was seen before (the bot must then ignore it).

        The trade id counts as seen only once the ledger has it: a write that raised leaves it
        unseen, so the venue's redelivery of the same fill is stored, not dropped. Errors
        (:class:`~kasmm.errors.LedgerLost` among them) propagate unchanged.
        """
        if fill.trade_id in self._seen:
            return False
        stored = True
        if self.ledger is not None:
            stored = await self.ledger.record_fill(self.profile, fill)
        self._seen[fill.trade_id] = None
        if len(self._seen) > _SEEN_TRADES:
            self._seen.popitem(last=False)
        return stored

    async def knows_order(self, client_id: ClientOrderId) -> bool:
        """True when the ledger has a record of order ``client_id`` of this profile."""
        if self.ledger is None:
            return False
        return bool(await self.ledger.order_history(self.profile, client_id))

    async def close_live_orders(self, keep: set[ClientOrderId], ts: float, reason: str) -> int:
        """Buffer ``cancelled`` for every order the ledger holds as live except ``keep``
        (those still rest at the venue); return how many. Orders buffered in this journal
        count with the status they are about to get."""
        if self.ledger is None:
            return 0
        pending = {e.client_id: e.status for e in self._orders}  # the last buffered status
        live = dict.fromkeys(await self.ledger.open_orders(self.profile))
        live.update(dict.fromkeys(cid for cid, status in pending.items() if status not in _FINAL))
        closed = 0
        for cid in live:
            if cid in keep or pending.get(cid) in _FINAL:
                continue
            self._orders.append(OrderStatusChanged(cid, "cancelled", ts, None, reason))
            closed += 1
        return closed

    # --- order events (buffered) ---------------------------------------------------------

    def order_opened(
        self,
        request: OrderRequest,
        order: OpenOrder | None,
        ts: float,
        level: int,
        status: str = "open",
        reason: str | None = None,
    ) -> None:
        """An order request came back: ``open`` (``order`` given), ``rejected`` or ``unknown``."""
        self._orders.append(
            OrderOpened(
                client_id=request.client_id,
                side=request.side,
                price=request.price,
                size=request.size,
                ts=ts,
                status=status,
                level=level,
                venue_id=order.venue_id if order is not None else None,
                reason=reason,
            )
        )

    def record(self, entry: OrderJournalEntry) -> None:
        """Buffer an order event (written by :meth:`flush`)."""
        self._orders.append(entry)

    def order_status(
        self,
        client_id: ClientOrderId,
        status: str,
        ts: float,
        venue_id: VenueOrderId | None = None,
        reason: str | None = None,
    ) -> None:
        """A recorded order changed status (cancelled, filled, partially_filled, ...)."""
        self._orders.append(OrderStatusChanged(client_id, status, ts, venue_id, reason))

    async def flush(self) -> None:
        """Write buffered order events in one transaction."""
        if not self._orders:
            return
        entries, self._orders = self._orders, []
        if self.ledger is not None:
            await self.ledger.journal_orders(self.profile, entries)

    # --- rare events ----------------------------------------------------------------------

    async def trips(self, trips: tuple[Trip, ...], state: str, ts: float) -> None:
        """Store kill-switch trips with the numbers that caused them, at wall time ``ts``
        (a trip's own ``ts`` is on the bot's interval clock)."""
        if self.ledger is None:
            return
        for t in trips:
            await self.ledger.record_risk_event(
                self.profile,
                ts,
                "trip",
                t.rule,
                t.action,
                state,
                {"value": t.value, "limit": t.limit, "detail": t.detail},
            )

    async def halt_cleared(self) -> bool:
        """True when an operator has reset this profile's halt in the ledger."""
        if self.ledger is None:
            return False
        return await self.ledger.active_halt(self.profile) is None

    async def balance_drift(self, ts: float, asset: str, local: Decimal, venue: Decimal) -> None:
        """Store a balance difference beyond dust (the venue's figure is adopted)."""
        if self.ledger is not None:
            await self.ledger.record_balance_drift(self.profile, ts, asset, local, venue)

    async def mode(self, ts: float, mode: str, source: str) -> None:
        """Store a mode change."""
        if self.ledger is not None:
            await self.ledger.record_mode(self.profile, ts, mode, source)

    async def equity(
        self, ts: float, equity: Decimal, mid: Decimal, base: Decimal, quote: Decimal
    ) -> None:
        """Store an equity snapshot (also moves the stored peak)."""
        if self.ledger is not None:
            await self.ledger.record_equity(self.profile, ts, equity, mid, base, quote)

    async def kpis(self, record: KpiRecord) -> None:
        """Store this run's cumulative market-making KPI counters."""
        if self.ledger is not None:
            await self.ledger.record_kpis(self.profile, record)

    # --- a simulated account resuming its ledger -------------------------------------------

    async def restore_simulated_balances(
        self, venue: object, base: str, quote: str, ts: float
    ) -> dict[str, Decimal] | None:
        """Start a simulated venue (sim, replay, paper) from the balances its ledger implies.

        Call after ``connect`` and before anything reads the venue's balances. On a fresh ledger
        the venue's configured balances are stored as its opening balances (at wall time
        ``ts``) and apply; later starts resume from the opening balances plus every stored fill,
        whatever the configuration says now. Nothing happens without a ledger, for a real
        exchange, for the as2008 model (no balances) or for a venue that has traded already.

        :return: the balances restored, or None when the venue keeps what it has.
        """
        account = simulated_account(venue)
        if self.ledger is None or account is None:
            return None
        configured = account.starting_balances()
        if configured is None:
            return None
        await self.ledger.record_opening_balances(self.profile, configured, ts)
        implied = await self.ledger.implied_balances(self.profile, base, quote)
        if implied is None or _same_balances(implied, configured):
            return None
        account.restore_balances(implied)
        _log.info(
            "balances_restored",
            profile=self.profile,
            balances={asset: str(v) for asset, v in sorted(implied.items())},
            configured={asset: str(v) for asset, v in sorted(configured.items())},
        )
        return implied


def _same_balances(a: Mapping[str, Decimal], b: Mapping[str, Decimal]) -> bool:
    """Equal amounts of every asset (an asset missing from one side holds zero)."""
    return all(a.get(asset, ZERO) == b.get(asset, ZERO) for asset in a.keys() | b.keys())


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
