"""What a notification says: one frozen :class:`Alert` per event, built by small functions.

Each builder takes plain values (a profile's name, the reason, the numbers) and returns the
title, body and deduplication key; nothing here reads a clock, a bot or a file, so the wording
is tested as plain data. The key decides what "identical" means for the dedup window: the same
profile halted by the same rule is one event however often it is seen; a different rule is a
new one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from kasmm.config.notify import EVENT_LEVELS, EventKind, Level

__all__ = [
    "Alert",
    "ProfileSummary",
    "config_error",
    "daily_summary",
    "halted",
    "ledger_trouble",
    "lock_busy",
    "paused",
    "profile_failed",
    "profile_recovered",
]

#: Notifications are read on a phone: long lists are cut here.
_MAX_LINES = 20


@dataclass(frozen=True, slots=True)
class Alert:
    """One notification, before it is sent to any target."""

    kind: EventKind
    title: str
    body: str
    #: What makes two alerts the same event (within the kind's dedup window).
    key: tuple[str, ...]

    @property
    def level(self) -> Level:
        """How urgent the event is (a target's ``min_level`` compares it)."""
        return EVENT_LEVELS[self.kind]


def halted(profile: str, reason: str | None) -> Alert:
    """A kill switch halted ``profile``: it quotes nothing until ``kasmm reset``."""
    why = reason or "a kill-switch rule"
    return Alert(
        "halt",
        f"kasmm: {profile} HALTED",
        f"{profile} halted ({why}). Every order was cancelled; it quotes nothing until "
        f"`kasmm reset {profile}`.",
        ("halt", profile, _rule_of(reason)),
    )


def paused(profile: str, reason: str | None) -> Alert:
    """A kill switch paused ``profile`` (it resumes by itself)."""
    why = reason or "a kill-switch rule"
    return Alert(
        "pause",
        f"kasmm: {profile} paused",
        f"{profile} paused ({why}); orders cancelled, quoting resumes by itself.",
        ("pause", profile, _rule_of(reason)),
    )


def profile_failed(profile: str, error: str | None) -> Alert:
    """``profile`` gave up restarting (or its credentials were refused)."""
    return Alert(
        "profile_failed",
        f"kasmm: {profile} FAILED",
        f"{profile} failed: {error or 'unknown error'}. It retries on a reload (SIGHUP) and "
        "after its cool-down.",
        ("profile_failed", profile),
    )


def profile_recovered(profile: str, state: str) -> Alert:
    """A ``failed`` profile runs again."""
    return Alert(
        "profile_recovered",
        f"kasmm: {profile} recovered",
        f"{profile} recovered; now {state}.",
        ("profile_recovered", profile),
    )


def lock_busy(profile: str, error: str | None) -> Alert:
    """``profile`` cannot start: another process holds its lock."""
    return Alert(
        "lock_busy",
        f"kasmm: {profile} cannot start",
        f"{profile} cannot start: {error or 'its lock is held by another process'}.",
        ("lock_busy", profile),
    )


def config_error(errors: Sequence[str]) -> Alert:
    """A reload found invalid files (each error as ``file:line:col: ...``)."""
    lines = list(errors[:_MAX_LINES])
    if len(errors) > _MAX_LINES:
        lines.append(f"... and {len(errors) - _MAX_LINES} more (kasmm status)")
    count = len(errors)
    return Alert(
        "config_error",
        f"kasmm: {count} configuration error{'s' if count != 1 else ''}",
        "The last good versions keep running.\n" + "\n".join(lines),
        ("config_error", *sorted(errors)),
    )


def ledger_trouble(what: str, error: str) -> Alert:
    """The ledger was lost (every profile stops) or cannot be checked."""
    return Alert(
        "ledger_trouble",
        f"kasmm: ledger {what}",
        f"The ledger {what}: {error}",
        ("ledger_trouble", what, error),
    )


@dataclass(frozen=True, slots=True)
class ProfileSummary:
    """One profile's line of the daily summary."""

    name: str
    state: str
    quote: str
    net_pnl: Decimal | None = None
    #: Net PnL change since the previous summary this process sent (``None``: first one).
    change: Decimal | None = None
    fills: int | None = None
    fees: Decimal | None = None
    inventory_base: Decimal | None = None
    halt_reason: str | None = None


def daily_summary(day: str, profiles: Sequence[ProfileSummary]) -> Alert:
    """One line per profile: state, net PnL (and its change), fills, fees, inventory."""
    lines = [_summary_line(p) for p in profiles[:_MAX_LINES]]
    if len(profiles) > _MAX_LINES:
        lines.append(f"... and {len(profiles) - _MAX_LINES} more (kasmm status)")
    return Alert(
        "daily_summary",
        f"kasmm daily summary {day}",
        "\n".join(lines) or "no profiles running",
        ("daily_summary", day),
    )


def _summary_line(p: ProfileSummary) -> str:
    parts = [f"{p.name}: {p.state}"]
    if p.halt_reason:
        parts[0] += f" ({p.halt_reason})"
    if p.net_pnl is not None:
        pnl = f"net PnL {money(p.net_pnl)} {p.quote}"
        if p.change is not None:
            pnl += f" ({money(p.change, sign=True)} since the last summary)"
        parts.append(pnl)
    if p.fills is not None:
        parts.append(f"{p.fills} fills")
    if p.fees is not None:
        parts.append(f"fees {money(p.fees)} {p.quote}")
    if p.inventory_base is not None:
        parts.append(f"inventory {money(p.inventory_base)}")
    return ", ".join(parts)


def money(value: Decimal, *, sign: bool = False) -> str:
    """Four decimals (never an exponent, never 28 digits, never ``-0.0000``)."""
    if not value.is_finite():
        return str(value)
    rounded = round(value, 4) + 0  # + 0 turns a negative zero into zero
    return f"{rounded:+.4f}" if sign else f"{rounded:.4f}"


def _rule_of(reason: str | None) -> str:
    """The rule of a ``rule: numbers`` reason (the numbers change every time it is seen)."""
    if not reason:
        return ""
    return reason.split(":", 1)[0].strip()
