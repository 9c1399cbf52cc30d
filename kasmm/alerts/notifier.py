"""The supervisor's notification service: queued, deduplicated, rate-limited, never blocking.

:meth:`Notifier.publish` is a plain function the event loop calls wherever something happened
(the watcher of :mod:`kasmm.alerts.watch`, the ledger-lost hook). It never awaits, never
raises and never blocks: it drops an identical event seen within its kind's dedup window,
takes a token from each interested target's bucket, and puts the alert in that target's
bounded queue. A full queue drops the alert (counted, logged once until there is room again);
an empty bucket drops it too (counted, and the next message says how many were not sent).

Each target has one worker task that takes its queue in order and sends each message in a
worker thread (``anyio.to_thread.run_sync``, its own small thread limiter; Apprise blocks on
the network), with a deadline per attempt and retries with doubling backoff. A target that
hangs or fails delays only its own queue. Failures are logged with the target's name and
service (never the URL) and counted: ``kasmm_notifications_total{event,outcome}``.

Nothing here can fail a bot or the supervisor: every entry point contains its own errors.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import anyio
import structlog
from anyio.abc import TaskGroup, TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from kasmm.alerts.deliver import AppriseSender, Sender
from kasmm.alerts.events import Alert
from kasmm.alerts.redact import redact, register_url, service_of
from kasmm.config.notify import EVENT_KINDS, EventKind, NotifyFile, NotifyTarget
from kasmm.config.secrets import MissingSecret, resolve_secret

log = structlog.get_logger("kasmm.alerts")

__all__ = ["OUTCOMES", "Notifier"]

#: Values of ``kasmm_notifications_total{outcome=...}``.
OUTCOMES: tuple[str, ...] = ("sent", "failed", "deduplicated", "rate_limited", "dropped")
#: Deliveries in flight at once across every target (each holds a thread while it waits).
_THREADS = 4


@dataclass
class _Bucket:
    """``capacity`` tokens, refilled at ``per_s``; time is passed in."""

    capacity: float
    per_s: float
    tokens: float
    last: float

    def take(self, now: float) -> bool:
        self.tokens = min(self.capacity, self.tokens + max(0.0, now - self.last) * self.per_s)
        self.last = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


@dataclass(frozen=True, slots=True)
class _Queued:
    alert: Alert
    #: Alerts the rate limit dropped since the previous one queued (this one says so).
    suppressed: int


@dataclass(eq=False)
class _Target:
    config: NotifyTarget
    url: str
    send: MemoryObjectSendStream[_Queued]
    receive: MemoryObjectReceiveStream[_Queued]
    bucket: _Bucket
    #: Alerts the rate limit dropped since the last one queued (the next one says so).
    suppressed: int = 0
    rate_logged: bool = False
    full_logged: bool = False
    started: bool = False
    stopped: anyio.Event = field(default_factory=anyio.Event)

    @property
    def service(self) -> str:
        return service_of(self.url)

    def same_channel(self, other: NotifyTarget, url: str, queue_size: int) -> bool:
        """Whether a reload can keep this target's queue, worker and bucket."""
        return (
            url == self.url
            and other.rate_limit == self.config.rate_limit
            and queue_size == self.send.statistics().max_buffer_size
        )


class Notifier:
    """Sends the supervisor's events to the targets of ``_notify.yaml``.

    :param sender: delivers one message, blocking (default: :class:`AppriseSender`).
    :param clock: monotonic seconds, for dedup windows and rate limits.
    :param env: where ``${VAR}`` URLs are looked up (default ``os.environ``), then
        ``credentials_dir`` (default ``$CREDENTIALS_DIRECTORY``).
    :param sleep: waits between retries (tests pass a fake).
    """

    def __init__(
        self,
        *,
        sender: Sender | None = None,
        clock: Callable[[], float] = time.monotonic,
        env: Mapping[str, str] | None = None,
        credentials_dir: Path | None = None,
        sleep: Callable[[float], Awaitable[object]] = anyio.sleep,
    ) -> None:
        self.sender: Sender = sender or AppriseSender()
        self.clock = clock
        self.env = env
        self.credentials_dir = credentials_dir
        self._sleep = sleep
        self.config: NotifyFile | None = None
        #: ``(event, outcome)`` -> count, for ``kasmm_notifications_total``.
        self.counts: Counter[tuple[str, str]] = Counter()
        self._targets: dict[str, _Target] = {}
        self._retired: list[_Target] = []
        self._sent_at: dict[tuple[str, ...], float] = {}
        self._signature: tuple[NotifyFile | None, tuple[str, ...]] = (None, ())
        self._tg: TaskGroup | None = None
        self._threads = anyio.CapacityLimiter(_THREADS)

    # --- configuration ----------------------------------------------------------------

    @property
    def active(self) -> bool:
        """Whether any target is configured."""
        return bool(self._targets)

    def wants(self, kind: EventKind) -> bool:
        """Whether an event of ``kind`` would go anywhere (callers skip building it if not)."""
        cfg = self.config
        if cfg is None or not cfg.events.enabled(kind):
            return False
        return any(t.config.wants(kind) for t in self._targets.values())

    def configure(self, cfg: NotifyFile | None) -> None:
        """Apply a (re)loaded ``_notify.yaml`` (``None``: no file, notifications off).

        A target whose URL and rate limit are unchanged keeps its queue and bucket; a removed
        one sends what it has queued, then stops. A URL that no longer resolves is logged (by
        target name and variable) and that target is left out.
        """
        try:
            self._configure(cfg)
        except Exception as exc:  # never let a notification problem fail a reload
            log.error("notify_configure_failed", error=redact(f"{type(exc).__name__}: {exc}"))

    def _configure(self, cfg: NotifyFile | None) -> None:
        resolved: list[tuple[NotifyTarget, str]] = []
        for target in cfg.targets if cfg is not None else ():
            try:
                secret = resolve_secret(target.url, self.env, self.credentials_dir)
            except MissingSecret as exc:
                log.error("notify_target_unusable", target=target.name, error=exc.messages[0])
                continue
            register_url(secret.get_secret_value())
            resolved.append((target, secret.get_secret_value()))
        signature = (cfg, tuple(url for _target, url in resolved))
        if signature == self._signature:
            return  # a reload that changed nothing here
        self._signature = signature
        self.config = cfg
        queue_size = cfg.queue_size if cfg is not None else 1
        wanted: dict[str, _Target] = {}
        for target, url in resolved:
            old = self._targets.get(target.name)
            if old is not None and old.same_channel(target, url, queue_size):
                old.config = target
                wanted[target.name] = old
                continue
            send, receive = anyio.create_memory_object_stream[_Queued](queue_size)
            limit = target.rate_limit
            bucket = _Bucket(limit.burst, limit.per_hour / 3600.0, limit.burst, self.clock())
            wanted[target.name] = _Target(target, url, send, receive, bucket)
        for name, old in self._targets.items():
            if wanted.get(name) is not old:
                old.send.close()  # its worker sends what is queued, then ends
                self._retired.append(old)
        self._targets = wanted
        if self._tg is not None:
            for channel in wanted.values():
                self._start(channel)
        log.info(
            "notifications_configured",
            targets=[f"{t.config.name} ({t.service})" for t in wanted.values()],
            events=[k for k in EVENT_KINDS if cfg is not None and cfg.events.enabled(k)],
        )

    # --- publishing -------------------------------------------------------------------

    def publish(self, alert: Alert) -> None:
        """Queue ``alert`` for every target that wants it; never blocks, never raises."""
        try:
            self._publish(alert)
        except Exception as exc:
            log.error("notify_publish_failed", kind=alert.kind, error=f"{type(exc).__name__}")

    def _publish(self, alert: Alert) -> None:
        cfg = self.config
        if cfg is None or not self._targets or not cfg.events.enabled(alert.kind):
            return
        now = self.clock()
        rule = cfg.events.rule(alert.kind)
        window = rule.dedup_window_s if rule is not None else 0.0
        last = self._sent_at.get(alert.key)
        if last is not None and now - last < window:
            self.counts[(alert.kind, "deduplicated")] += 1
            log.debug("notification_deduplicated", kind=alert.kind, since_s=round(now - last))
            return
        if len(self._sent_at) > 4096:  # bounded: forget what no window can still cover
            rules = (cfg.events.rule(k) for k in EVENT_KINDS)
            longest = max((r.dedup_window_s for r in rules if r is not None), default=0.0)
            self._sent_at = {k: t for k, t in self._sent_at.items() if now - t < longest}
        self._sent_at[alert.key] = now
        for target in self._targets.values():
            if target.config.wants(alert.kind):
                self._enqueue(target, alert, now)

    def _enqueue(self, target: _Target, alert: Alert, now: float) -> None:
        name = target.config.name
        if not target.bucket.take(now):
            self.counts[(alert.kind, "rate_limited")] += 1
            target.suppressed += 1
            if not target.rate_logged:
                target.rate_logged = True
                log.warning("notification_rate_limited", target=name, kind=alert.kind)
            return
        try:
            target.send.send_nowait(_Queued(alert, target.suppressed))
        except anyio.WouldBlock:
            self.counts[(alert.kind, "dropped")] += 1
            if not target.full_logged:
                target.full_logged = True
                log.warning(
                    "notification_queue_full",
                    target=name,
                    kind=alert.kind,
                    queued=target.send.statistics().current_buffer_used,
                )
            return
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            return
        target.full_logged = False
        target.suppressed = 0
        target.rate_logged = False

    # --- delivery ---------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run the targets' workers until cancelled (start it in the supervisor's group)."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            for target in self._targets.values():
                self._start(target)
            task_status.started()
            try:
                await anyio.sleep_forever()
            finally:
                self._tg = None

    async def aclose(self, deadline_s: float = 5.0) -> None:
        """Send what is queued (within ``deadline_s``), then stop: the supervisor's last words
        (a lost ledger, a halt seen while stopping) still go out. Call it shielded."""
        targets = [*self._targets.values(), *self._retired]
        for target in targets:
            target.send.close()
        with anyio.move_on_after(deadline_s):
            for target in targets:
                if target.started:
                    await target.stopped.wait()
            # Workers cancelled with the supervisor's scope left their queues: send them here.
            for target in targets:
                while True:
                    try:
                        queued = target.receive.receive_nowait()
                    except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                        break
                    await self._deliver(target, queued)
        for target in targets:
            target.receive.close()
        self._retired.clear()

    def _start(self, target: _Target) -> None:
        if not target.started and self._tg is not None:
            target.started = True
            self._tg.start_soon(self._work, target, name=f"notify:{target.config.name}")

    async def _work(self, target: _Target) -> None:
        try:
            async for queued in target.receive:
                await self._deliver(target, queued)
        finally:
            target.stopped.set()
            if target in self._retired and target.receive.statistics().current_buffer_used == 0:
                target.receive.close()
                self._retired.remove(target)

    async def _deliver(self, target: _Target, queued: _Queued) -> None:
        """Send an alert to ``target`` with retries; count and log the outcome."""
        cfg = self.config or NotifyFile()
        alert = queued.alert
        body = alert.body
        if queued.suppressed:
            body += f"\n({queued.suppressed} earlier notifications were not sent: rate limit)"
        attempts = cfg.retries + 1
        for attempt in range(1, attempts + 1):
            why = await self._send_once(target, alert, body, cfg.timeout_s)
            if why is None:
                self.counts[(alert.kind, "sent")] += 1
                log.info(
                    "notification_sent",
                    target=target.config.name,
                    service=target.service,
                    kind=alert.kind,
                    attempt=attempt,
                )
                return
            log.warning(
                "notification_failed",
                target=target.config.name,
                service=target.service,
                kind=alert.kind,
                attempt=attempt,
                retrying=attempt < attempts,
                error=why,
            )
            if attempt < attempts:
                await self._sleep(cfg.retry_backoff_s * 2 ** (attempt - 1))
        self.counts[(alert.kind, "failed")] += 1

    async def _send_once(
        self, target: _Target, alert: Alert, body: str, limit_s: float
    ) -> str | None:
        call = partial(self.sender, target.url, alert.title, body, alert.level, limit_s)
        # Apprise has its own deadline; this one holds even if a service ignores it (the
        # thread is abandoned, and finishes or times out on its own).
        with anyio.move_on_after(limit_s + 1.0):
            try:
                return await anyio.to_thread.run_sync(
                    call, abandon_on_cancel=True, limiter=self._threads
                )
            except Exception as exc:
                return redact(f"{type(exc).__name__}: {exc}")
        return f"no answer within {limit_s:g} s"
