"""One profile's market-making bot.

The data path: a venue event goes into the bot, which runs the pure core (quoting -> risk gate
-> reconciliation) and executes the resulting order actions through the venue. Readers
(metrics, status, the backtest report, ``kasmm run``) see a frozen :class:`BotView`.
"""

from kasmm.bot.account import Inventory
from kasmm.bot.driver import Bot
from kasmm.bot.engine import BALANCE_REFRESH_S, EQUITY_SNAPSHOT_S, HALT_CHECK_S, ORDER_AUDIT_S
from kasmm.bot.stats import BotState, BotStats
from kasmm.bot.stop import SHUTDOWN_DEADLINE_S, SHUTDOWN_RETRY_S
from kasmm.bot.view import BotView, Counters, Engaged

__all__ = [
    "BALANCE_REFRESH_S",
    "EQUITY_SNAPSHOT_S",
    "HALT_CHECK_S",
    "ORDER_AUDIT_S",
    "SHUTDOWN_DEADLINE_S",
    "SHUTDOWN_RETRY_S",
    "Bot",
    "BotState",
    "BotStats",
    "BotView",
    "Counters",
    "Engaged",
    "Inventory",
]
