"""The gates a scheduled settlement passes to the plan, read from the account's running bots.

A sweep must never leave the exchange while a profile of the account is in trouble (issue 20,
Deliver 4): the plan (:func:`kasmm.core.settlement.plan_settlement`) holds every sweep of an
account whose :class:`~kasmm.core.settlement.Gates` name a halted profile or a stale feed. The
supervisor knows both from its runners, and this module turns them into gates, per member:

* **halted**: the bot's risk gate is halted (a kill switch tripped; cleared by ``kasmm reset``).
* **paused by an operator** (``kasmm pause``, the console) counts as halted. An operator who
  stops a profile is looking into something (a bad fill, a venue incident, an inventory that
  looks wrong); moving money off the account meanwhile changes the very balances being looked
  at, and the need the plan protects cannot be confirmed without a running bot. Resume the
  profile, or settle by hand (``kasmm settle --execute``), to move money anyway.
* **stale feed**: the bot's book is older than the profile's ``stale_book`` kill-switch limit
  (:data:`DEFAULT_STALE_S` when that rule is off), or there is no bot to read at all (starting,
  restarting, failed, or not run by this supervisor): a mark that cannot be trusted sizes no
  sweep. Run scheduled settlement in the supervisor that runs every profile of the account.

A disabled profile (``enabled: false``) rests no orders and needs nothing: it gates nothing. A
kill-switch *pause* (seconds long, resumes by itself) is not a gate: its book age says whether
the feed is alive.

Pure apart from :func:`look_at`, which reads one runner (the bot's view) the way ``/status``
does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kasmm.core.risk import TradingState
from kasmm.core.settlement import Gates
from kasmm.supervisor.state import RUNNER_OWNED

if TYPE_CHECKING:
    from kasmm.config.schema import Profile
    from kasmm.supervisor.runner import ProfileRunner

__all__ = ["DEFAULT_STALE_S", "MemberLook", "account_gates", "look_at", "stale_limit"]

#: The stale-feed limit of a profile whose ``stale_book`` rule is off.
DEFAULT_STALE_S = 10.0


@dataclass(frozen=True, slots=True)
class MemberLook:
    """One member profile of an account, as the supervisor sees it now."""

    name: str
    enabled: bool = True
    #: A bot runs for it here and its view could be read.
    live: bool = False
    operator_paused: bool = False
    halted: bool = False
    book_age_s: float | None = None
    stale_after_s: float = DEFAULT_STALE_S


def account_gates(members: Iterable[MemberLook], pending: frozenset[str] = frozenset()) -> Gates:
    """The account's gates from its members (see the module docstring for the rules)."""
    halted: list[str] = []
    stale: list[str] = []
    for m in sorted(members, key=lambda m: m.name):
        if not m.enabled:
            continue
        if m.operator_paused or m.halted:
            halted.append(m.name)
            continue
        if not m.live or m.book_age_s is None or m.book_age_s > m.stale_after_s:
            stale.append(m.name)
    return Gates(halted_profiles=tuple(halted), stale_feeds=tuple(stale), pending=pending)


def stale_limit(profile: Profile) -> float:
    """The profile's stale-book limit in seconds (:data:`DEFAULT_STALE_S` when the rule is off)."""
    rule = profile.kill_switch.stale_book
    return DEFAULT_STALE_S if rule is None else float(rule.seconds)


def look_at(name: str, runner: ProfileRunner | None, profile: Profile | None) -> MemberLook:
    """Member ``name`` as its runner shows it (``runner`` ``None``: not run here; ``profile``
    ``None``: not loaded, so unknown and treated as enabled)."""
    enabled = True if profile is None else profile.enabled
    limit = DEFAULT_STALE_S if profile is None else stale_limit(profile)
    if runner is None:
        return MemberLook(name, enabled=enabled, stale_after_s=limit)
    if runner.paused_by is not None:
        return MemberLook(name, enabled=enabled, operator_paused=True, stale_after_s=limit)
    bot = runner.bot
    view = bot.view() if bot is not None and runner.state not in RUNNER_OWNED else None
    if view is None:
        return MemberLook(name, enabled=enabled, stale_after_s=limit)
    return MemberLook(
        name,
        enabled=enabled,
        live=True,
        halted=view.trading_state is TradingState.HALTED,
        book_age_s=view.book_age_s,
        stale_after_s=limit,
    )
