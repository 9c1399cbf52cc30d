"""Portfolio members: what the portfolio manager reads of one (:class:`MemberReading`), what it
needs of one (:class:`Member`), and a supervisor's profile runner as one (:class:`RunnerMember`).

Read through the bot's frozen view (what status and metrics read too), told through the bot's
engine (``set_group``, ``external_trip``: both take effect on the bot's next decision). Each run
of the bot is a new identity: a restarted bot has not seen what its predecessor was told.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from kasmm.bot.stats import BotState
from kasmm.core.portfolio import MemberSnapshot
from kasmm.core.risk import Trip
from kasmm.core.skew import GroupSkew

if TYPE_CHECKING:
    from kasmm.supervisor.runner import ProfileRunner

__all__ = ["Member", "MemberReading", "RunnerMember"]


@dataclass(frozen=True, slots=True)
class MemberReading:
    """One member now, as the group reads it."""

    snapshot: MemberSnapshot
    #: The bot has quoted once: its balances are read and its ledger restored.
    ready: bool
    #: The rule of the halt the member holds (``None``: not halted).
    halt_rule: str | None
    #: The member's current bot run (a restart is a new run: it has not seen what was sent).
    run: object
    #: Decisions the run has taken (one after a trip was handed over, the trip is in force).
    decisions: int = 0
    #: The bot's lifecycle (``starting``, ``quoting``, ``stopped``, ...): what the member is
    #: shown as while it is not ready.
    lifecycle: str = "quoting"


class Member(Protocol):
    """What the manager needs of one running member (a profile runner and its bot)."""

    def reading(self) -> MemberReading | None:
        """The member now (``None``: no bot yet)."""
        ...

    def set_group(self, skew: GroupSkew | None) -> None:
        """Skew toward the group's target (``None``: toward the member's own)."""
        ...

    def external_trip(self, trip: Trip | None, source: str) -> None:
        """Hold ``trip`` from ``source`` (``None`` clears that source's pause)."""
        ...


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
            # The sweeps its balances show: the group takes them off its peak, not as a loss.
            bot.engine.transfers.moves(view.base),
        )
        ready = view.state is BotState.QUOTING
        return MemberReading(snapshot, ready, halt, bot, view.counters.decisions, view.state.value)

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
