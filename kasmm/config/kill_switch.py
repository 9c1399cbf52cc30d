"""The ``kill_switch:`` block: one rule per risk, each with the action a trip takes.

Rules apply to one profile; the rules that span profiles (portfolios) are in
:mod:`kasmm.config.portfolios`, and the hedge residual rule in :mod:`kasmm.config.cross_venue`.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from kasmm.config.fields import KillAction, PositiveDecimal, PositiveFloat, StrictModel

_ACTION_DESCRIPTION = (
    "What a trip does. halt: cancel every order and stop quoting until `kasmm reset PROFILE` "
    "(restarting kasmm does not clear a halt: it is kept in the ledger). pause: cancel every "
    "order and resume after pause_s. reduce_only: quote only the side that brings inventory "
    "back toward the target."
)


class KillRule(StrictModel):
    """Common fields of every kill-switch rule."""

    action: KillAction = Field("halt", description=_ACTION_DESCRIPTION)
    pause_s: PositiveFloat | None = Field(
        None, description="Seconds to pause; required with action: pause, refused otherwise."
    )


class MaxDrawdownRule(KillRule):
    """Trip when equity falls this far below its running peak."""

    quote: PositiveDecimal | None = Field(
        None, description="Limit in quote currency below the equity peak."
    )
    pct: Annotated[float, Field(gt=0, le=100, allow_inf_nan=False)] | None = Field(
        None, description="Limit in percent of peak equity (either limit trips the rule)."
    )


class MaxDailyLossRule(KillRule):
    """Trip when today's PnL (in ``timezone``) falls below ``-quote``."""

    quote: PositiveDecimal = Field(description="Loss limit for one day, in quote currency.")
    timezone: str = Field("UTC", description="IANA time zone in which a day starts at 00:00.")


class MaxInventoryDeviationRule(KillRule):
    """Trip when the base share deviates from target by more than ``share``."""

    action: KillAction = Field("reduce_only", description=_ACTION_DESCRIPTION)
    share: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = Field(
        description="Largest allowed |base share - target share| (0.3 = 30 points of share)."
    )


class StaleBookRule(KillRule):
    """Trip when the book has not changed for ``seconds``, however often it arrives."""

    action: KillAction = Field("pause", description=_ACTION_DESCRIPTION)
    seconds: PositiveFloat = Field(
        description="Longest time the book may stay unchanged, in seconds, before the rule trips."
    )


#: The default ``mid_jump`` rule. One book update moving the mid 5 % is ~a whole day's move of
#: KAS (2 bps per sqrt second is ~5.9 % a day) in a fraction of a second: a bad print, a wrong
#: or stale book, or a crash under way, where quotes priced off that mid are the likeliest to
#: be picked off. Pausing 30 s lets the book settle; ordinary volatility never comes close.
DEFAULT_MID_JUMP_PCT = 5.0
DEFAULT_MID_JUMP_PAUSE_S = 30.0


class MidJumpRule(KillRule):
    """Trip when the mid moves more than ``pct`` in one update (or the book is crossed)."""

    action: KillAction = Field("pause", description=_ACTION_DESCRIPTION)
    pct: Annotated[float, Field(gt=0, le=100, allow_inf_nan=False)] = Field(
        description="Largest allowed move of the mid between two book updates, in percent."
    )


class CountRule(KillRule):
    """Trip when a count reaches ``count``."""

    count: Annotated[int, Field(ge=1)] = Field(
        description="Limit: the rule trips when the count goes beyond it."
    )


class KillSwitchConfig(StrictModel):
    """Kill-switch rules; each applies to this profile only. ``null`` turns a rule off."""

    max_drawdown: MaxDrawdownRule | None = Field(
        None,
        description="Trip when equity falls quote (or pct %) below its running peak. A ccxt "
        "profile must set it, or set it to null explicitly to run without one.",
    )
    max_daily_loss: MaxDailyLossRule | None = Field(
        None,
        description="Trip when today's PnL falls below -quote. A ccxt profile must set it, or "
        "set it to null explicitly to run without one.",
    )
    max_inventory_deviation: MaxInventoryDeviationRule | None = Field(
        None,
        description="Trip when the base share is more than share away from the target "
        "(default action reduce_only).",
    )
    stale_book: StaleBookRule | None = Field(
        StaleBookRule(seconds=10.0, action="pause", pause_s=5.0),
        description="Trip when the book has not changed for seconds, however often it arrives "
        "(on by default: pause 5 s after 10 s; null turns it off).",
    )
    mid_jump: MidJumpRule | None = Field(
        MidJumpRule(pct=DEFAULT_MID_JUMP_PCT, action="pause", pause_s=DEFAULT_MID_JUMP_PAUSE_S),
        description="Trip when one book update moves the mid more than pct %, or the book is "
        "crossed. On by default (5 %, pause 30 s): such a jump is a bad print, a wrong book or "
        "a crash under way, where quotes are likeliest to be picked off; ordinary volatility "
        "(KAS ~6 % a day) never comes close. null turns it off.",
    )
    max_consecutive_errors: CountRule | None = Field(
        CountRule(count=10, action="pause", pause_s=30.0),
        description="Trip after count venue errors in a row (on by default: pause 30 s after "
        "10; null turns it off).",
    )
    max_order_actions_per_minute: CountRule | None = Field(
        None,
        description="Trip when the order actions (placements and cancels) of the last minute "
        "reach count: a guard against a runaway requote loop.",
    )
