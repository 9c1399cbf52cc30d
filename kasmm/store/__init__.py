"""Persistence: the SQLite ledger of orders, fills, equity, modes and risk events.

:class:`Ledger` is the synchronous API over one database file shared by every profile;
:class:`AsyncLedger` runs the same calls in a worker thread for the event loop.
"""

from kasmm.store.async_ledger import AsyncLedger
from kasmm.store.db import DuplicateOrderError, LedgerError, UnknownOrderError
from kasmm.store.kpis import KpiRecord
from kasmm.store.ledger import (
    Ledger,
    OrderJournalEntry,
    OrderOpened,
    OrderStatusChanged,
    local_midnight,
)
from kasmm.store.migrations import LATEST_VERSION, MIGRATIONS, SchemaError, migrate
from kasmm.store.records import (
    LIVE_STATUSES,
    EquitySnapshot,
    HaltRecord,
    ModeChange,
    OrderEvent,
    OrderStatus,
    RiskEvent,
)

__all__ = [
    "LATEST_VERSION",
    "LIVE_STATUSES",
    "MIGRATIONS",
    "AsyncLedger",
    "DuplicateOrderError",
    "EquitySnapshot",
    "HaltRecord",
    "KpiRecord",
    "Ledger",
    "LedgerError",
    "ModeChange",
    "OrderEvent",
    "OrderJournalEntry",
    "OrderOpened",
    "OrderStatus",
    "OrderStatusChanged",
    "RiskEvent",
    "SchemaError",
    "UnknownOrderError",
    "local_midnight",
    "migrate",
]
