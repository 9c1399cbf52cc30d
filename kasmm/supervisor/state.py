"""A profile's state: the one enum that the supervisor, ``/status``, ``/metrics`` and systemd's
``STATUS=`` line share, and the one place where the state a reader sees is derived.

A :class:`~kasmm.supervisor.runner.ProfileRunner` sets only its own lifecycle (``starting``,
``quoting``, ``restarting``, ``failed``, ``stopped``); while its bot runs, what a reader sees is
the bot's state refined by the risk gate (a quoting bot whose gate is halted shows ``halted``).
:func:`displayed_state` is that rule, written once. Metrics export a narrower, stable label set
(:data:`METRIC_STATES`, the values the alert rules in ``dashboards/alerts.yml`` select), mapped
by :func:`metric_state`.

Stdlib only: metrics and the systemd notifier import this without loading the supervisor.
"""

from __future__ import annotations

import enum

__all__ = ["METRIC_STATES", "RUNNER_OWNED", "ProfileState", "displayed_state", "metric_state"]


class ProfileState(enum.StrEnum):
    """What a profile is doing, as ``kasmm status``, ``/status`` and ``/metrics`` show it."""

    #: A bot attempt is starting (connecting, restoring, waiting for its first book).
    STARTING = "starting"
    #: Quotes are live and the risk gate is open.
    QUOTING = "quoting"
    #: Quoting only the side that reduces inventory (a kill-switch rule).
    REDUCE_ONLY = "reduce_only"
    #: A kill-switch pause (orders cancelled, quoting resumes by itself), or an operator's
    #: (``kasmm pause``: the bot stopped, nothing starts until ``kasmm resume``).
    PAUSED = "paused"
    #: A kill-switch halt: orders cancelled until ``kasmm reset``.
    HALTED = "halted"
    #: The last attempt failed; the next starts after the restart backoff.
    RESTARTING = "restarting"
    #: Gave up (or credentials refused): waits for the cool-down or a reload.
    FAILED = "failed"
    #: Cancelling its orders on the way out.
    STOPPING = "stopping"
    #: Stopped (removed, disabled, or the supervisor is shutting down).
    STOPPED = "stopped"


#: Runner states that say everything by themselves: the bot (if any) is not consulted. A
#: runner is ``paused`` only by an operator (its bot is stopped until resumed).
RUNNER_OWNED: frozenset[ProfileState] = frozenset(
    {ProfileState.RESTARTING, ProfileState.FAILED, ProfileState.STOPPED, ProfileState.PAUSED}
)

#: Values of ``kasmm_profile_state{state=...}`` (exactly one is 1 per profile).
METRIC_STATES: tuple[ProfileState, ...] = (
    ProfileState.STARTING,
    ProfileState.QUOTING,
    ProfileState.PAUSED,
    ProfileState.HALTED,
    ProfileState.FAILED,
    ProfileState.RESTARTING,
    ProfileState.STOPPED,
)

#: A quoting bot as its risk gate's trading state (``kasmm.core.risk.TradingState`` values).
_QUOTING_AS: dict[str, ProfileState] = {
    "active": ProfileState.QUOTING,
    "reduce_only": ProfileState.REDUCE_ONLY,
    "paused": ProfileState.PAUSED,
    "halted": ProfileState.HALTED,
}

#: Metrics keep the label set the alert rules were written for: a reduce-only profile still
#: quotes (``kasmm_trading_state`` tells it apart), and stopping is part of stopped.
_METRIC_AS: dict[ProfileState, ProfileState] = {
    ProfileState.REDUCE_ONLY: ProfileState.QUOTING,
    ProfileState.STOPPING: ProfileState.STOPPED,
}


def displayed_state(runner: str, bot: str | None, trading: str | None) -> ProfileState:
    """The state a reader sees.

    :param runner: the runner's own state (a :class:`ProfileState` value).
    :param bot: the current bot's state (``kasmm.bot.BotState`` value), ``None`` before the
        first bot is built.
    :param trading: the bot's risk-gate trading state (``active``, ``reduce_only``, ``paused``,
        ``halted``); only read while the bot quotes.
    """
    state = ProfileState(runner)
    if state in RUNNER_OWNED:
        return state
    if bot is None:
        return ProfileState.STARTING
    if bot == ProfileState.QUOTING:
        return _QUOTING_AS.get(trading or "active", ProfileState.QUOTING)
    return ProfileState(bot)


def metric_state(state: ProfileState) -> ProfileState:
    """``state`` as one of :data:`METRIC_STATES`."""
    return _METRIC_AS.get(state, state)
