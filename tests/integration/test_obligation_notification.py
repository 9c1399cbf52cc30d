"""A running supervisor sends an obligation breach, and its end, to a loopback webhook.

A sim profile with obligations quotes for real; its bot's view is then wrapped so that the
obligation reads breached (as the engine reports it after a whole window below the required
share: windows are at least a minute, too long to wait for here), then met again. The watcher
must send exactly one ``obligation_breach`` message for each change, through Apprise's
``json://`` to a plain HTTP receiver on loopback.
"""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import anyio
import pytest

from kasmm.bot import BotView
from kasmm.supervisor import Supervisor
from tests.integration.test_notifications import Receiver
from tests.support import eventually

PROFILE = textwrap.dedent(
    """\
    name: mm
    venue:
      type: sim
      market: {book_interval_s: 0.05}
    symbol: KAS/USDT
    modes:
      aggressive: {spread_bps: 20, size: 1000, levels: 1}
      passive: {spread_bps: 20, size: 1000, levels: 1}
    refresh: {fallback_interval_s: 0.2}
    obligations:
      max_spread_bps: 50
      min_uptime_pct: 95
      window_s: 3600
    """
)

NOTIFY = """\
targets:
  - name: hook
    url: ${KASMM_HOOK_URL}
    events: [obligation_breach]
"""


class Verdict:
    """Wraps a real bot; its view's obligation reads ``breached`` at ``share``."""

    def __init__(self, bot: object, breached: bool, share: float) -> None:
        self.bot, self.breached, self.share = bot, breached, share

    def view(self) -> BotView:
        view: BotView = self.bot.view()  # type: ignore[attr-defined]
        assert view.obligation is not None
        status = dataclasses.replace(view.obligation, breached=self.breached, share=self.share)
        return dataclasses.replace(view, obligation=status)


@pytest.mark.anyio
async def test_a_breach_and_its_end_reach_a_loopback_webhook(tmp_path: Path) -> None:
    receiver = Receiver()
    receiver.thread.start()
    try:
        (tmp_path / "mm.yaml").write_text(PROFILE)
        (tmp_path / "_notify.yaml").write_text(NOTIFY)
        env = {"KASMM_HOOK_URL": f"json://127.0.0.1:{receiver.port}/hook"}
        sup = Supervisor(tmp_path, env=env)
        async with anyio.create_task_group() as tg:
            await tg.start(sup.run)
            slot = sup.slots["mm"]
            await eventually(lambda: slot.bot is not None and slot.bot.view().asks, within_s=20)
            real = slot.bot
            assert real is not None and real.view().obligation is not None
            slot.bot = Verdict(real, True, 0.8312)  # type: ignore[assignment]
            await eventually(lambda: len(receiver.posts) == 1, within_s=10)
            slot.bot = Verdict(real, False, 0.9612)  # type: ignore[assignment]
            await eventually(lambda: len(receiver.posts) == 2, within_s=10)
            await eventually(lambda: sup.notifier.counts[("obligation_breach", "sent")] == 2)
            slot.bot = real
            tg.cancel_scope.cancel()
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
        receiver.thread.join(5)
    # Exactly these two: nothing while it was met before, one message per change.
    assert receiver.titles() == [
        "kasmm: mm breaches its obligations",
        "kasmm: mm meets its obligations again",
    ]
    (_, breach), (_, met) = receiver.posts
    assert breach["title"] == "kasmm: mm breaches its obligations"
    assert breach["message"] == (
        "mm met its market-making obligations (both sides quoted, spread, depth) 83.1% of "
        "the last 1 h 00 min, below the required 95.0%."
    )
    assert breach["type"] == "warning"
    assert met["title"] == "kasmm: mm meets its obligations again"
    assert met["message"] == (
        "mm met its market-making obligations 96.1% of the last 1 h 00 min (required 95.0%)."
    )
