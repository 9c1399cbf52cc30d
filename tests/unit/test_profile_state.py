"""The state a reader (status, metrics, systemd's STATUS=) sees, derived in one place."""

from __future__ import annotations

import pytest

from kasmm.bot import BotState
from kasmm.core.risk import TradingState
from kasmm.supervisor.state import METRIC_STATES, ProfileState, displayed_state, metric_state

S = ProfileState


@pytest.mark.parametrize(
    ("runner", "bot", "trading", "shown"),
    [
        # The runner's own verdicts win over whatever its last bot says.
        (S.FAILED, BotState.FAILED, None, S.FAILED),
        (S.RESTARTING, BotState.STOPPED, None, S.RESTARTING),
        (S.STOPPED, BotState.QUOTING, TradingState.ACTIVE, S.STOPPED),
        (S.FAILED, None, None, S.FAILED),
        # No bot built yet.
        (S.STARTING, None, None, S.STARTING),
        # The bot's lifecycle.
        (S.STARTING, BotState.STARTING, TradingState.ACTIVE, S.STARTING),
        (S.QUOTING, BotState.STOPPING, TradingState.ACTIVE, S.STOPPING),
        (S.QUOTING, BotState.STOPPED, TradingState.ACTIVE, S.STOPPED),
        (S.STARTING, BotState.FAILED, None, S.FAILED),
        # A quoting bot, refined by its risk gate.
        (S.QUOTING, BotState.QUOTING, TradingState.ACTIVE, S.QUOTING),
        (S.QUOTING, BotState.QUOTING, TradingState.REDUCE_ONLY, S.REDUCE_ONLY),
        (S.QUOTING, BotState.QUOTING, TradingState.PAUSED, S.PAUSED),
        (S.QUOTING, BotState.QUOTING, TradingState.HALTED, S.HALTED),
    ],
)
def test_displayed_state(
    runner: ProfileState, bot: BotState | None, trading: TradingState | None, shown: ProfileState
) -> None:
    assert displayed_state(runner, bot, trading) is shown


def test_every_bot_and_trading_state_has_a_profile_state() -> None:
    for bot in BotState:
        for trading in TradingState:
            assert isinstance(displayed_state(S.QUOTING, bot, trading), ProfileState)


def test_metrics_keep_the_label_set_the_alert_rules_select() -> None:
    assert [s.value for s in METRIC_STATES] == [
        "starting", "quoting", "paused", "halted", "failed", "restarting", "stopped",
    ]  # fmt: skip
    assert {metric_state(s) for s in ProfileState} == set(METRIC_STATES)
    assert metric_state(S.REDUCE_ONLY) is S.QUOTING and metric_state(S.STOPPING) is S.STOPPED
