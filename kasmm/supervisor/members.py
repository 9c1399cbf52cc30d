"""A supervisor's profile runner as a portfolio :class:`~kasmm.supervisor.portfolios.Member`.

Read through the bot's frozen view (what status and metrics read too), told through the bot's
engine (``set_group``, ``external_trip``: both take effect on the bot's next decision). Each run
of the bot is a new identity: a restarted bot has not seen what its predecessor was told.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kasmm.bot.stats import BotState
from kasmm.core.portfolio import MemberSnapshot
from kasmm.core.risk import Trip
from kasmm.core.skew import GroupSkew
from kasmm.supervisor.portfolios import MemberReading

if TYPE_CHECKING:
    from kasmm.supervisor.runner import ProfileRunner

__all__ = ["RunnerMember"]


class RunnerMember:
    """A supervisor's profile runner as a :class:`Member`: read through its bot's view, told
    through its bot's engine."""

    def __init__(self, runner: ProfileRunner) -> None:
        self.runner = runner

    def reading(self) -> MemberReading | None:
        """The member's bot now (``None``: no bot yet)."""
        bot = self.runner.bot
        if bot is None:
            return None
        view = bot.view()
        halt = next((e.rule for e in view.engaged if e.action == "halt"), None)
        mid = view.mid if view.mid is not None and view.mid.is_finite() and view.mid > 0 else None
        snapshot = MemberSnapshot(
            view.profile,
            view.inventory_base,
            view.inventory_quote,
            mid,
            view.net_pnl,
            view.trading_state.value,
        )
        ready = view.state is BotState.QUOTING
        return MemberReading(snapshot, ready, halt, bot, view.counters.decisions)

    def set_group(self, skew: GroupSkew | None) -> None:
        """Hand the group's skew to the running bot's engine."""
        bot = self.runner.bot
        if bot is not None:
            bot.engine.set_group(skew)

    def external_trip(self, trip: Trip | None, source: str) -> None:
        """Hand the group's trip to the running bot's engine."""
        bot = self.runner.bot
        if bot is not None:
            bot.engine.external_trip(trip, source)
