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
from kasmm.store import KpiRecord, OrderJournalEntry


class Job(enum.Enum):
    """Periodic venue or ledger reads the engine finds due (:meth:`Engine.due`)."""

    READ_BALANCES = "read_balances"
    AUDIT_ORDERS = "audit_orders"
    CHECK_HALT = "check_halt"


@dataclass(frozen=True, slots=True)
class Log:
    """A structured log event (``level`` is a structlog method name)."""

    level: str
    event: str
    fields: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class RecordOrder:
    """An order event for the ledger (buffered; written with the round)."""

    entry: OrderJournalEntry


@dataclass(frozen=True, slots=True)
class StoreTrips:
    """Kill-switch trips to store before the round's cancels go out (a halt must survive a
    crash right after it)."""

    trips: tuple[Trip, ...]
    state: str
    wall: float


@dataclass(frozen=True, slots=True)
class StoreOpening:
    """Where accounting starts (the first book of a profile's first run)."""

    position: Decimal
    mark: Decimal
    wall: float


@dataclass(frozen=True, slots=True)
class StoreEquity:
    """An equity snapshot (drawdown peak, daily PnL, reports)."""

    wall: float
    equity: Decimal
    mid: Decimal
    base: Decimal
    quote: Decimal


@dataclass(frozen=True, slots=True)
class StoreKpis:
    """The market-making KPI counters of this run, stored with each equity snapshot (per-day
    reports sum their increments within a run)."""

    record: KpiRecord


@dataclass(frozen=True, slots=True)
class StoreDrift:
    """A balance difference beyond dust found by a balance read (the venue's figure wins)."""

    wall: float
    asset: str
    local: Decimal
    venue: Decimal


Command = Log | RecordOrder | StoreTrips | StoreOpening | StoreEquity | StoreKpis | StoreDrift
