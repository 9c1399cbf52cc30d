"""The bot's lifecycle state and counters (read through :class:`kasmm.bot.view.BotView`)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from decimal import Decimal


class BotState(enum.StrEnum):
    """Lifecycle of a bot as reported by ``status`` and metrics."""

    STARTING = "starting"
    QUOTING = "quoting"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


@dataclass
class BotStats:
    """Counters for the summary, status and metrics. Mutated only by the bot's own task."""

    decisions: int = 0
    quotes_sent: int = 0
    orders_placed: int = 0
    orders_cancelled: int = 0
    orders_rejected: int = 0
    cancel_not_found: int = 0
    venue_errors: int = 0
    kill_switch_trips: int = 0
    balance_drifts: int = 0
    trips_by_rule: dict[str, int] = field(default_factory=dict)
    consecutive_errors: int = 0
    book_updates: int = 0
    bad_books: int = 0
    untracked_cancelled: int = 0
    last_error: str | None = None
    #: This run's placed size (accepted orders), filled size and fills: the fill ratio and
    #: the order-to-trade ratio (the PnL's counts include earlier runs').
    placed_size: Decimal = Decimal(0)
    filled_size: Decimal = Decimal(0)
    fills: int = 0
