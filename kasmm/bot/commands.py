"""What the engine asks its driver to do besides order actions: store, log, read.

The engine never performs I/O. Each call into it may leave commands in its outbox; the driver
takes them (:meth:`kasmm.bot.engine.Engine.take`) and carries them out in order. Order actions
themselves (:class:`kasmm.core.types.PlaceOrder`, :class:`~kasmm.core.types.CancelOrder`) come
back from :meth:`~kasmm.bot.engine.Engine.decide`, because the driver executes them as one round.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from kasmm.core.risk import Trip
from kasmm.core.types import OrderRequest
from kasmm.store import KpiRecord, OrderJournalEntry


class Job(enum.Enum):
    """Periodic venue or ledger reads the engine finds due (:meth:`Engine.due`)."""

    READ_BALANCES = "read_balances"
    AUDIT_ORDERS = "audit_orders"
    CHECK_HALT = "check_halt"


@dataclass(frozen=True, slots=True, init=False)
class Log:
    """A structured log event (``level`` is a structlog method name)."""

    level: str
    event: str
    fields: Mapping[str, Any]

    def __init__(self, level: str, event: str, fields: Mapping[str, Any]) -> None:
        # Written out, not generated: see "Hot values" in kasmm/core/types.py.
        object.__setattr__(self, "level", level)
        object.__setattr__(self, "event", event)
        object.__setattr__(self, "fields", fields)


@dataclass(frozen=True, slots=True, init=False)
class RecordOrder:
    """An order event for the ledger (buffered; written with the round)."""

    entry: OrderJournalEntry

    def __init__(self, entry: OrderJournalEntry) -> None:
        # Written out, not generated: see "Hot values" in kasmm/core/types.py.
        object.__setattr__(self, "entry", entry)


@dataclass(frozen=True, slots=True, init=False)
class StoreTrips:
    """Kill-switch trips to store before the round's cancels go out (a halt must survive a
    crash right after it)."""

    trips: tuple[Trip, ...]
    state: str
    wall: float

    def __init__(self, trips: tuple[Trip, ...], state: str, wall: float) -> None:
        # Written out, not generated: see "Hot values" in kasmm/core/types.py.
        object.__setattr__(self, "trips", trips)
        object.__setattr__(self, "state", state)
        object.__setattr__(self, "wall", wall)


@dataclass(frozen=True, slots=True, init=False)
class StoreOpening:
    """Where accounting starts (the first book of a profile's first run)."""

    position: Decimal
    mark: Decimal
    wall: float

    def __init__(self, position: Decimal, mark: Decimal, wall: float) -> None:
        # Written out, not generated: see "Hot values" in kasmm/core/types.py.
        object.__setattr__(self, "position", position)
        object.__setattr__(self, "mark", mark)
        object.__setattr__(self, "wall", wall)


@dataclass(frozen=True, slots=True, init=False)
class StoreEquity:
    """An equity snapshot (drawdown peak, daily PnL, reports)."""

    wall: float
    equity: Decimal
    mid: Decimal
    base: Decimal
    quote: Decimal

    def __init__(
        self, wall: float, equity: Decimal, mid: Decimal, base: Decimal, quote: Decimal
    ) -> None:
        # Written out, not generated: see "Hot values" in kasmm/core/types.py.
        object.__setattr__(self, "wall", wall)
        object.__setattr__(self, "equity", equity)
        object.__setattr__(self, "mid", mid)
        object.__setattr__(self, "base", base)
        object.__setattr__(self, "quote", quote)


@dataclass(frozen=True, slots=True, init=False)
class StoreKpis:
    """The market-making KPI counters of this run, stored with each equity snapshot (per-day
    reports sum their increments within a run)."""

    record: KpiRecord

    def __init__(self, record: KpiRecord) -> None:
        # Written out, not generated: see "Hot values" in kasmm/core/types.py.
        object.__setattr__(self, "record", record)


@dataclass(frozen=True, slots=True, init=False)
class StoreDrift:
    """A balance difference beyond dust found by a balance read (the venue's figure wins)."""

    wall: float
    asset: str
    local: Decimal
    venue: Decimal

    def __init__(self, wall: float, asset: str, local: Decimal, venue: Decimal) -> None:
        # Written out, not generated: see "Hot values" in kasmm/core/types.py.
        object.__setattr__(self, "wall", wall)
        object.__setattr__(self, "asset", asset)
        object.__setattr__(self, "local", local)
        object.__setattr__(self, "venue", venue)


@dataclass(frozen=True, slots=True, init=False)
class StoreTransfer:
    """A settlement sweep booked as a transfer (``direction`` ``out``, or ``back`` for a failed
    withdrawal returned): stored with the value that lowers the stored equity peak."""

    key: str
    direction: str
    asset: str
    amount: Decimal
    mark: Decimal
    value: Decimal
    wall: float

    def __init__(
        self,
        key: str,
        direction: str,
        asset: str,
        amount: Decimal,
        mark: Decimal,
        value: Decimal,
        wall: float,
    ) -> None:
        # Written out, not generated: see "Hot values" in kasmm/core/types.py.
        object.__setattr__(self, "key", key)
        object.__setattr__(self, "direction", direction)
        object.__setattr__(self, "asset", asset)
        object.__setattr__(self, "amount", amount)
        object.__setattr__(self, "mark", mark)
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "wall", wall)


@dataclass(frozen=True, slots=True, init=False)
class PlaceIoc:
    """Send an immediate-or-cancel order of the engine's (a rebalance order) through the venue
    stack hedges use (:meth:`kasmm.bot.executor.Executor.place_ioc` live, the backtest driver's
    ``send_ioc``), after the ledger holds the row recorded just before this command; then hand
    the answer, or the failure, to :meth:`kasmm.bot.rebalancer.Rebalancer.answered`."""

    request: OrderRequest

    def __init__(self, request: OrderRequest) -> None:
        # Written out, not generated: see "Hot values" in kasmm/core/types.py.
        object.__setattr__(self, "request", request)


Command = (
    Log
    | RecordOrder
    | StoreTrips
    | StoreOpening
    | StoreEquity
    | StoreKpis
    | StoreDrift
    | StoreTransfer
    | PlaceIoc
)
