"""Operator actions on a running supervisor: reset a halt, pause, resume, switch mode, reload.

They arrive through the control socket (:mod:`kasmm.daemon.control_socket`) from ``kasmm top``,
``kasmm pause``/``resume``/``mode``/``reload``; :func:`perform` carries one out and records
every action, with the operator's name and its result, in the ledger's ``operator_actions``.
Its effect is recorded where the ledger keeps such things:

* **reset**: the ledger's own reset (the same path as ``kasmm reset``): a ``reset`` risk event
  naming the operator; the bot sees it on its next halt check (every 2 s) and quotes again.
* **pause** / **resume**: a risk event of rule ``operator``, action ``pause`` (kind ``trip`` on
  pause, ``clear`` on resume, the operator in its details). A pause stops the profile's bot,
  which cancels its orders, and keeps the profile ``paused`` until resumed: across reloads
  (the supervisor keeps it) and across restarts (:func:`restore_pauses` reads the ledger).
* **mode**: a mode switch of source ``operator`` in the ledger, sent through the same channel
  as the scheduler's; a manual override that lasts (bot restarts included) until the next
  scheduled switch (the operator's name: in ``operator_actions``).
* **reload**: what SIGHUP does (``operator_actions`` with no profile).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from kasmm.errors import LedgerLost

if TYPE_CHECKING:
    from kasmm.store import AsyncLedger
    from kasmm.supervisor.core import Supervisor
    from kasmm.supervisor.runner import ProfileRunner

log = structlog.get_logger("kasmm.supervisor")

__all__ = ["ACTIONS", "OPERATOR_RULE", "ActionError", "ActionRequest", "perform", "restore_pauses"]

#: What the control socket accepts.
ACTIONS = ("reset", "pause", "resume", "mode", "reload")
#: The rule name of an operator's pause in the ledger's risk events.
OPERATOR_RULE = "operator"
MODES = ("aggressive", "passive")


class ActionError(Exception):
    """An action that cannot be carried out; the message is one line for the operator."""


@dataclass(frozen=True, slots=True)
class ActionRequest:
    """One operator action."""

    action: str
    operator: str
    profile: str | None = None
    mode: str | None = None


async def perform(
    sup: Supervisor,
    request: ActionRequest,
    reload: Callable[[], Awaitable[object]],
    wall_clock: Callable[[], float] = time.time,
) -> str:
    """Carry out ``request`` on ``sup``; return what was done (one line).

    :param reload: what SIGHUP does (the daemon's reload, with its systemd notifications).
    :raises ActionError: unknown action or profile, nothing to do (not halted, not paused,
        already paused), or the ledger refused the record (then nothing was changed).
    """
    done = await _carry_out(sup, request, reload, wall_clock)
    # Every action, with its operator, in the ledger's operator_actions (the tables the
    # effects go to, modes or risk events, have no operator column for all of them).
    details: dict[str, object] = {"result": done}
    if request.mode is not None:
        details["mode"] = request.mode
    try:
        await _record(
            sup,
            lambda ledger: ledger.record_operator_action(
                wall_clock(), request.operator, request.action, request.profile or None, details
            ),
        )
    except ActionError as exc:  # the action took effect: say so, and what was not recorded
        log.error("operator_action_not_recorded", action=request.action, error=str(exc))
    return done


async def _carry_out(
    sup: Supervisor,
    request: ActionRequest,
    reload: Callable[[], Awaitable[object]],
    wall_clock: Callable[[], float],
) -> str:
    who = request.operator
    if request.action == "reload":
        log.info("operator_action", action="reload", operator=who)
        await reload()
        return "reloaded"
    name = request.profile
    if not name:
        raise ActionError(f"{request.action} needs a profile")
    runner = _runner(sup, name, request.action)
    if request.action == "pause":
        return await _pause(sup, runner, who, wall_clock())
    if request.action == "resume":
        return await _resume(sup, runner, who, wall_clock())
    if request.action == "mode":
        return await _mode(sup, runner, request.mode, who, wall_clock())
    if request.action == "reset":
        return await _reset(sup, name, who, wall_clock())
    raise ActionError(f"unknown action {request.action!r} (one of {', '.join(ACTIONS)})")


def _runner(sup: Supervisor, name: str, action: str) -> ProfileRunner | None:
    """The profile's runner; None for a disabled profile (only a reset applies to it)."""
    runner = sup.slots.get(name)
    if runner is not None:
        return runner
    if name in sup.disabled:
        if action == "reset":
            return None
        raise ActionError(f"{name} is disabled (enabled: false in {sup.disabled[name]})")
    if action not in ACTIONS:
        raise ActionError(f"unknown action {action!r} (one of {', '.join(ACTIONS)})")
    raise ActionError(f"unknown profile {name!r}: not run by this supervisor")


async def _record(sup: Supervisor, write: Callable[[AsyncLedger], Awaitable[object]]) -> object:
    """Write to the ledger, if any; a refused write is an :class:`ActionError`."""
    if sup.ledger is None:
        return None
    try:
        return await write(sup.ledger)
    except LedgerLost as exc:
        sup.on_ledger_lost(exc)
        raise ActionError(f"ledger lost: {exc}") from None
    except Exception as exc:
        raise ActionError(f"ledger: {type(exc).__name__}: {exc}") from None


async def _pause(sup: Supervisor, runner: ProfileRunner | None, who: str, ts: float) -> str:
    assert runner is not None
    if runner.paused_by is not None:
        raise ActionError(f"{runner.name} is already paused (by {runner.paused_by})")
    details = {"operator": who}
    await _record(
        sup,
        lambda ledger: ledger.record_risk_event(
            runner.name, ts, "trip", OPERATOR_RULE, "pause", "paused", details
        ),
    )
    sup.paused[runner.name] = who
    runner.pause(who)
    log.info("operator_action", action="pause", profile=runner.name, operator=who)
    return f"{runner.name} paused by {who}: its orders are being cancelled"


async def _resume(sup: Supervisor, runner: ProfileRunner | None, who: str, ts: float) -> str:
    assert runner is not None
    if runner.paused_by is None:
        raise ActionError(f"{runner.name} is not paused")
    details = {"operator": who, "paused_by": runner.paused_by}
    await _record(
        sup,
        lambda ledger: ledger.record_risk_event(
            runner.name, ts, "clear", OPERATOR_RULE, "pause", "active", details
        ),
    )
    sup.paused.pop(runner.name, None)
    runner.resume()
    log.info("operator_action", action="resume", profile=runner.name, operator=who)
    return f"{runner.name} resumed by {who}"


async def _mode(
    sup: Supervisor, runner: ProfileRunner | None, mode: str | None, who: str, ts: float
) -> str:
    assert runner is not None
    if mode not in MODES:
        raise ActionError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "aggressive" and runner.loaded.profile.modes.aggressive is None:
        raise ActionError(f"{runner.name} defines no modes.aggressive")
    await _record(sup, lambda ledger: ledger.record_mode(runner.name, ts, mode, "operator"))
    runner.mode_override = mode
    live = runner.post_mode(mode)  # else the next bot starts in it (Supervisor.make_bot)
    log.info("operator_action", action="mode", profile=runner.name, mode=mode, operator=who)
    until = " until the next scheduled switch" if runner.loaded.profile.schedule else ""
    return f"{runner.name} switched to {mode} by {who}{until}" + ("" if live else " (on start)")


async def _reset(sup: Supervisor, name: str, who: str, ts: float) -> str:
    if sup.ledger is None:
        raise ActionError("no ledger: this supervisor has no halt to reset")
    cleared = await _record(sup, lambda ledger: ledger.reset(name, ts, who))
    if not cleared:
        raise ActionError(f"{name} is not halted")
    log.info("operator_action", action="reset", profile=name, operator=who)
    return f"{name}: halt cleared by {who}; quoting resumes within seconds"


async def restore_pauses(ledger: AsyncLedger) -> dict[str, str]:
    """Profiles an operator paused and nobody resumed, by the ledger (name -> who)."""
    paused: dict[str, str] = {}
    for name in await ledger.profiles():
        events = await ledger.risk_events(name)
        last = next(
            (e for e in reversed(events) if e.rule == OPERATOR_RULE and e.action == "pause"), None
        )
        if last is not None and last.kind == "trip":
            paused[name] = str(last.details.get("operator", "?"))
    if paused:
        log.info("operator_pauses_restored", profiles=sorted(paused))
    return paused
