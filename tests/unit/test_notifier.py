"""The notifier: dedup, per-target rate limits, bounded queues, retries, redaction, shutdown."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from io import StringIO
from typing import Any

import anyio
import pytest
import structlog
from structlog.testing import capture_logs

from kasmm.alerts import events
from kasmm.alerts.deliver import AppriseSender
from kasmm.alerts.notifier import Notifier
from kasmm.config.notify import Level, NotifyFile
from kasmm.obs.logs import configure_logging
from tests.support import eventually

CANARY = "CANARY-n0tify-s3cret-7f3a"
URL = f"json://127.0.0.1:9/hook/{CANARY}"


@dataclass
class FakeSender:
    """Records every call; fails the first ``fail`` calls; may block until released."""

    fail: int = 0
    error: str = "service said no"
    raises: bool = False
    gate: threading.Event | None = None
    calls: list[tuple[str, str, str, Level]] = field(default_factory=list)

    def __call__(
        self, url: str, title: str, body: str, level: Level, timeout_s: float
    ) -> str | None:
        if self.gate is not None:
            self.gate.wait(10)
        self.calls.append((url, title, body, level))
        if len(self.calls) <= self.fail:
            if self.raises:
                raise ConnectionError(f"cannot reach {url}")
            return self.error
        return None

    @property
    def bodies(self) -> list[str]:
        return [body for _url, _title, body, _level in self.calls]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def config(**overrides: Any) -> NotifyFile:
    data: dict[str, Any] = {"targets": [{"name": "hook", "url": "${HOOK}"}], "retries": 0}
    data.update(overrides)
    return NotifyFile.model_validate(data)


def make(sender: FakeSender, cfg: NotifyFile | None = None, **kwargs: Any) -> Notifier:
    notifier = Notifier(sender=sender, env={"HOOK": URL}, **kwargs)
    notifier.configure(cfg or config())
    return notifier


async def run_until(notifier: Notifier, predicate: Any) -> None:
    async with anyio.create_task_group() as tg:
        await tg.start(notifier.run)
        await eventually(predicate, within_s=5)
        tg.cancel_scope.cancel()
    await notifier.aclose()


@pytest.mark.anyio
async def test_identical_event_is_sent_once_within_its_window() -> None:
    sender, clock = FakeSender(), Clock()
    notifier = make(sender, config(events={"halt": {"dedup_window_s": 60}}), clock=clock)
    halt = events.halted("p1", "max_drawdown: 6 > 5")
    notifier.publish(halt)
    notifier.publish(events.halted("p1", "max_drawdown: 7 > 5"))  # same rule: same event
    notifier.publish(events.halted("p2", "max_drawdown: 6 > 5"))  # another profile
    clock.now += 61
    notifier.publish(halt)  # the window has passed
    await run_until(notifier, lambda: len(sender.calls) == 3)
    assert [title for _u, title, _b, _l in sender.calls] == [
        "kasmm: p1 HALTED",
        "kasmm: p2 HALTED",
        "kasmm: p1 HALTED",
    ]
    assert notifier.counts[("halt", "deduplicated")] == 1
    assert notifier.counts[("halt", "sent")] == 3
    assert sender.calls[0][3] == "critical"


@pytest.mark.anyio
async def test_rate_limit_drops_and_the_next_message_says_how_many() -> None:
    sender, clock = FakeSender(), Clock()
    cfg = config(
        targets=[{"name": "hook", "url": "${HOOK}", "rate_limit": {"burst": 2, "per_hour": 60}}]
    )
    notifier = make(sender, cfg, clock=clock)
    with capture_logs() as logs:
        async with anyio.create_task_group() as tg:
            await tg.start(notifier.run)
            for i in range(5):
                notifier.publish(events.profile_failed(f"p{i}", "boom"))
            await eventually(lambda: len(sender.calls) == 2)
            assert notifier.counts[("profile_failed", "rate_limited")] == 3
            clock.now += 60  # one token back (60 per hour)
            notifier.publish(events.profile_failed("p9", "boom"))
            await eventually(lambda: len(sender.calls) == 3)
            tg.cancel_scope.cancel()
        await notifier.aclose()
    assert "3 earlier notifications were not sent: rate limit" in sender.bodies[2]
    assert "earlier" not in sender.bodies[1]
    limited = [e for e in logs if e["event"] == "notification_rate_limited"]
    assert len(limited) == 1 and limited[0]["target"] == "hook"


@pytest.mark.anyio
async def test_full_queue_drops_without_blocking_and_logs_once() -> None:
    gate = threading.Event()
    sender = FakeSender(gate=gate)
    cfg = config(
        queue_size=2,
        targets=[{"name": "hook", "url": "${HOOK}", "rate_limit": {"burst": 100}}],
    )
    notifier = make(sender, cfg)
    with capture_logs() as logs:
        async with anyio.create_task_group() as tg:
            await tg.start(notifier.run)
            notifier.publish(events.profile_failed("p0", "x"))
            # The worker takes the first one and blocks in the sender's thread.
            await eventually(
                lambda: notifier._targets["hook"].receive.statistics().current_buffer_used == 0
            )
            for i in range(1, 7):
                notifier.publish(events.profile_failed(f"p{i}", "x"))  # returns at once
            assert notifier.counts[("profile_failed", "dropped")] == 4
            gate.set()
            await eventually(lambda: len(sender.calls) == 3)
            tg.cancel_scope.cancel()
        await notifier.aclose()
    assert [c[1] for c in sender.calls] == [f"kasmm: p{i} FAILED" for i in range(3)]
    full = [e for e in logs if e["event"] == "notification_queue_full"]
    assert len(full) == 1 and full[0]["target"] == "hook"


@pytest.mark.anyio
async def test_retries_with_doubling_backoff_then_counts_the_failure() -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    sender = FakeSender(fail=2)
    notifier = make(sender, config(retries=3, retry_backoff_s=0.5), sleep=sleep)
    notifier.publish(events.halted("p1", "max_drawdown: 6 > 5"))
    await run_until(notifier, lambda: notifier.counts[("halt", "sent")] == 1)
    assert len(sender.calls) == 3 and waits == [0.5, 1.0]

    always = FakeSender(fail=99)
    notifier = make(always, config(retries=2, retry_backoff_s=0.5), sleep=sleep)
    notifier.publish(events.halted("p1", "max_drawdown: 6 > 5"))
    await run_until(notifier, lambda: notifier.counts[("halt", "failed")] == 1)
    assert len(always.calls) == 3 and notifier.counts[("halt", "sent")] == 0


@pytest.mark.anyio
async def test_a_failing_target_never_prints_its_url() -> None:
    """The canary secret is in the URL; the sender's exception quotes the URL (as requests'
    do). Neither kasmm's log lines nor Apprise's own may show it."""

    async def no_sleep(seconds: float) -> None:
        return None

    sender = FakeSender(fail=99, raises=True)
    notifier = make(sender, config(retries=1), sleep=no_sleep)
    stream = StringIO()
    configure_logging("json", "debug", stream)
    try:
        notifier.publish(events.halted("p1", "max_drawdown: 6 > 5"))
        await run_until(notifier, lambda: notifier.counts[("halt", "failed")] == 1)
        # A real Apprise delivery to a closed port, and an unparseable URL: Apprise logs both.
        real = AppriseSender()
        why = await anyio.to_thread.run_sync(lambda: real(URL, "t", "b", "critical", 2.0))
        assert why is not None and CANARY not in why
        bad = f"tgram://{CANARY}"
        assert await anyio.to_thread.run_sync(lambda: real(bad, "t", "b", "info", 1.0)) is not None
    finally:
        structlog.reset_defaults()
        configure_logging("console", "info", StringIO())
    text = stream.getvalue()
    assert "notification_failed" in text and '"service":"json"' in text
    assert "Unparseable" in text  # Apprise's own line went through, redacted
    assert CANARY not in text
    assert "ConnectionError" in text


@pytest.mark.anyio
async def test_events_and_levels_are_filtered_per_target() -> None:
    sender = FakeSender()
    cfg = config(
        targets=[
            {"name": "pager", "url": "${HOOK}", "min_level": "critical"},
            {"name": "chat", "url": "${HOOK}", "events": ["profile_recovered"]},
        ],
        events={"pause": False},
    )
    notifier = make(sender, cfg)
    assert not notifier.wants("pause") and notifier.wants("halt")
    notifier.publish(events.paused("p1", "stale_book: 31 > 30"))  # disabled
    notifier.publish(events.profile_recovered("p1", "quoting"))  # chat only
    notifier.publish(events.halted("p1", None))  # pager only
    await run_until(notifier, lambda: len(sender.calls) == 2)
    assert sorted(c[1] for c in sender.calls) == ["kasmm: p1 HALTED", "kasmm: p1 recovered"]


@pytest.mark.anyio
async def test_close_sends_what_is_queued_even_when_the_workers_were_cancelled() -> None:
    sender = FakeSender()
    notifier = make(sender)
    async with anyio.create_task_group() as tg:
        await tg.start(notifier.run)
        tg.cancel_scope.cancel()  # as the daemon's shutdown cancels the supervisor's group
    notifier.publish(events.ledger_trouble("lost; every profile stops", "kasmm.sqlite deleted"))
    with anyio.CancelScope(shield=True):
        await notifier.aclose(deadline_s=5)
    assert [c[1] for c in sender.calls] == ["kasmm: ledger lost; every profile stops"]


@pytest.mark.anyio
async def test_reload_keeps_a_target_removes_another_and_off_means_silent() -> None:
    sender = FakeSender()
    notifier = make(sender)
    kept = notifier._targets["hook"]
    with capture_logs() as logs:
        notifier.configure(config())  # unchanged: nothing happens
        assert notifier._targets["hook"] is kept
        notifier.configure(config(events={"halt": False}))  # same channel, new events
        assert notifier._targets["hook"] is kept and not notifier.wants("halt")
    assert [e["event"] for e in logs] == ["notifications_configured"]
    notifier.configure(None)
    assert not notifier.active
    notifier.publish(events.halted("p1", None))
    assert sender.calls == [] and not notifier.counts
    await notifier.aclose()


def test_publish_never_raises() -> None:
    class Broken(Notifier):
        def _publish(self, alert: events.Alert) -> None:
            raise RuntimeError("bug")

    with capture_logs() as logs:
        Broken(sender=FakeSender()).publish(events.halted("p1", None))
    assert logs[0]["event"] == "notify_publish_failed"


def test_messages_round_money_and_cut_long_lists() -> None:
    from decimal import Decimal

    row = events.ProfileSummary(
        "p1",
        "quoting",
        "USDT",
        net_pnl=Decimal("5.920788990000000000000000772"),
        change=Decimal("-0E-7"),
        fills=12,
        fees=Decimal("0E-7"),
        inventory_base=Decimal("1000"),
    )
    summary = events.daily_summary("2026-12-05", [row])
    assert summary.body == (
        "p1: quoting, net PnL 5.9208 USDT (+0.0000 since the last summary), 12 fills, "
        "fees 0.0000 USDT, inventory 1000.0000"
    )
    many = events.config_error([f"f{i}.yaml:1:1: -: bad" for i in range(25)])
    assert many.title == "kasmm: 25 configuration errors"
    assert many.body.splitlines()[-1] == "... and 5 more (kasmm status)"
