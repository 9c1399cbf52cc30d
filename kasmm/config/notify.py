"""``_notify.yaml``: where the supervisor's notifications go, and which events it sends.

The file sits next to the profiles (files starting with ``_`` are not profiles) and is hot
reloaded with them. Each target is one Apprise URL held in a secret: the file names the
variable (``url: ${KASMM_TELEGRAM_URL}``), the value (``tgram://BOT_TOKEN/CHAT_ID``) comes from
the environment or ``$CREDENTIALS_DIRECTORY`` like exchange credentials, and is never printed.

This module is the structural pass (pydantic, frozen, unknown keys refused) plus the cross-field
checks (:func:`notify_checks`: unique target names, time zones) and the secrets pass
(:func:`unusable_urls`: unresolved references, URLs Apprise cannot use). The loader turns every
finding into a ``file:line:col`` issue.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BeforeValidator, Field, StringConstraints

from kasmm.config.checks import valid_timezone
from kasmm.config.locate import FieldPath
from kasmm.config.schema import NonNegativeFloat, PositiveFloat, SecretRef, StrictModel
from kasmm.config.secrets import MissingSecret, resolve_secret

__all__ = [
    "EVENT_KINDS",
    "EVENT_LEVELS",
    "LEVELS",
    "NOTIFY_FILES",
    "DailySummary",
    "EventKind",
    "EventRule",
    "NotifyEvents",
    "NotifyFile",
    "NotifyRateLimit",
    "NotifyTarget",
    "notify_checks",
    "unusable_urls",
]

#: The file names the loader reads (the first one found wins, like ``_accounts.yaml``).
NOTIFY_FILES = ("_notify.yaml", "_notify.yml")

EventKind = Literal[
    "halt",
    "pause",
    "profile_failed",
    "profile_recovered",
    "config_error",
    "ledger_trouble",
    "lock_busy",
    "daily_summary",
    "obligation_breach",
    "settlement_requested",
    "settlement_pending",
    "settlement_confirmed",
    "settlement_failed",
]
#: Every kind, in declaration order: derived from the type, so the two never disagree.
EVENT_KINDS: tuple[EventKind, ...] = get_args(EventKind)

Level = Literal["info", "warning", "critical"]
#: Levels in increasing order of urgency (a target's ``min_level`` drops the lower ones).
LEVELS: tuple[Level, ...] = ("info", "warning", "critical")
#: How urgent each event is: what ``min_level`` compares, and the Apprise message type.
EVENT_LEVELS: Mapping[EventKind, Level] = {
    "halt": "critical",
    "ledger_trouble": "critical",
    "profile_failed": "critical",
    "pause": "warning",
    "lock_busy": "warning",
    "config_error": "warning",
    "obligation_breach": "warning",
    "settlement_pending": "warning",
    "settlement_failed": "warning",
    "profile_recovered": "info",
    "settlement_requested": "info",
    "settlement_confirmed": "info",
    "daily_summary": "info",
}

TargetName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
LocalTime = Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]


def _rule_shorthand(value: Any) -> Any:
    """``halt: false`` is ``halt: {enabled: false}`` (and ``true`` the defaults)."""
    return {"enabled": value} if isinstance(value, bool) else value


class EventRule(StrictModel):
    """Whether an event is sent, and how long an identical one is not sent again."""

    enabled: bool = Field(True, description="Send this event.")
    dedup_window_s: NonNegativeFloat = Field(
        600.0,
        description="An identical event (same kind, profile and reason) within this many "
        "seconds of the last one sent is dropped (0: never).",
    )


Rule = Annotated[EventRule, BeforeValidator(_rule_shorthand)]


class DailySummary(StrictModel):
    """One message a day with every profile's state and PnL."""

    at: LocalTime = Field(description="Local time of day, HH:MM (24 h).")
    timezone: str = Field("UTC", description="IANA time zone of `at`, e.g. Europe/Berlin.")


class NotifyEvents(StrictModel):
    """The events to send (every one but the daily summary is on unless set to ``false``)."""

    halt: Rule = Field(default_factory=EventRule, description="A kill switch halted a profile.")
    pause: Rule = Field(default_factory=EventRule, description="A kill switch paused a profile.")
    profile_failed: Rule = Field(
        default_factory=EventRule, description="A profile gave up restarting (state failed)."
    )
    profile_recovered: Rule = Field(
        default_factory=EventRule, description="A failed profile quotes again."
    )
    config_error: Rule = Field(
        default_factory=EventRule,
        description="A reload found invalid files, or the profile directory is missing.",
    )
    ledger_trouble: Rule = Field(
        default_factory=EventRule,
        description="The ledger was lost (every profile stops) or its check fails.",
    )
    lock_busy: Rule = Field(
        default_factory=EventRule,
        description="A profile cannot start: another process holds its lock.",
    )
    obligation_breach: Rule = Field(
        default_factory=EventRule,
        description="A profile falls below its market-making obligations over a whole window "
        "(obligations: in the profile), and when it meets them again.",
    )
    settlement_requested: Rule = Field(
        default_factory=EventRule,
        description="A sweep to the Kaspa wallet was requested (_settlement.yaml).",
    )
    settlement_pending: Rule = Field(
        default_factory=EventRule,
        description="A sweep's withdrawal request got no answer: it is being looked up, "
        "never sent again.",
    )
    settlement_confirmed: Rule = Field(
        default_factory=EventRule,
        description="A sweep arrived in the wallet with the confirmations required.",
    )
    settlement_failed: Rule = Field(
        default_factory=EventRule,
        description="A sweep failed (nothing left the exchange, or it came back), or a "
        "scheduled settlement run failed.",
    )
    daily_summary: DailySummary | None = Field(
        None, description="A daily state and PnL summary at a local time (off unless set)."
    )

    def rule(self, kind: EventKind) -> EventRule | None:
        """The rule of ``kind`` (``None``: the daily summary, which has a schedule instead)."""
        value = getattr(self, kind)
        return value if isinstance(value, EventRule) else None

    def enabled(self, kind: EventKind) -> bool:
        """Whether ``kind`` is sent at all."""
        if kind == "daily_summary":
            return self.daily_summary is not None
        rule = self.rule(kind)
        return rule is not None and rule.enabled


class NotifyRateLimit(StrictModel):
    """A target's token bucket: ``burst`` messages at once, then ``per_hour``."""

    burst: int = Field(5, ge=1, le=1000, description="Messages that may go out at once.")
    per_hour: PositiveFloat = Field(30.0, description="Messages per hour after the burst.")


class NotifyTarget(StrictModel):
    """One place notifications go: an Apprise URL (Telegram, Slack, ntfy, e-mail, webhook)."""

    name: TargetName = Field(description="Name in logs and metrics (never the URL).")
    url: SecretRef = Field(
        description="${VAR} holding the Apprise URL, e.g. tgram://TOKEN/CHAT or ntfy://topic."
    )
    events: tuple[EventKind, ...] | None = Field(
        None, description="Only these events (default: every enabled event)."
    )
    min_level: Level = Field("info", description="Drop events less urgent than this.")
    rate_limit: NotifyRateLimit = Field(default_factory=NotifyRateLimit)

    def wants(self, kind: EventKind) -> bool:
        """Whether this target takes ``kind`` (its event filter and minimum level)."""
        if self.events is not None and kind not in self.events:
            return False
        return LEVELS.index(EVENT_LEVELS[kind]) >= LEVELS.index(self.min_level)


class NotifyFile(StrictModel):
    """The ``_notify.yaml`` file: notification targets and the events they get."""

    targets: tuple[NotifyTarget, ...] = Field(
        (), description="Where notifications go (none: notifications are off)."
    )
    events: NotifyEvents = Field(default_factory=NotifyEvents)
    retries: int = Field(3, ge=0, le=10, description="Retries of a failed delivery.")
    retry_backoff_s: PositiveFloat = Field(
        2.0, description="Wait before the first retry; doubled for each further one."
    )
    timeout_s: PositiveFloat = Field(10.0, le=120, description="Deadline of one delivery.")
    queue_size: int = Field(
        100, ge=1, le=10_000, description="Messages waiting per target before new ones drop."
    )


def notify_checks(cfg: NotifyFile) -> list[tuple[FieldPath, str]]:
    """Cross-field problems: duplicate target names, unknown time zones."""
    out: list[tuple[FieldPath, str]] = []
    seen: dict[str, int] = {}
    for i, target in enumerate(cfg.targets):
        if target.name in seen:
            message = f"duplicate target name (already used by targets[{seen[target.name]}])"
            out.append((("targets", i, "name"), message))
        seen.setdefault(target.name, i)
    summary = cfg.events.daily_summary
    if summary is not None and not valid_timezone(summary.timezone):
        out.append(
            (
                ("events", "daily_summary", "timezone"),
                f"unknown time zone {summary.timezone[:64]!r} "
                "(use an IANA name such as 'Europe/Berlin')",
            )
        )
    return out


def unusable_urls(
    cfg: NotifyFile, env: Mapping[str, str], credentials_dir: Path | None
) -> list[tuple[FieldPath, str]]:
    """Targets whose URL reference does not resolve, or resolves to no Apprise service.

    Messages name the variable, never its value.
    """
    out: list[tuple[FieldPath, str]] = []
    for i, target in enumerate(cfg.targets):
        try:
            url = resolve_secret(target.url, env, credentials_dir)
        except MissingSecret as exc:
            out.append((("targets", i, "url"), exc.messages[0]))
            continue
        if not apprise_accepts(url.get_secret_value()):
            out.append(
                (
                    ("targets", i, "url"),
                    f"{target.url} does not hold a URL Apprise supports "
                    "(see https://github.com/caronc/apprise/wiki)",
                )
            )
    return out


def apprise_accepts(url: str) -> bool:
    """Whether Apprise builds a notification service from ``url`` (no I/O is done)."""
    # Imported here: only a directory with a _notify.yaml pays for Apprise's import.
    from kasmm.alerts.deliver import load_apprise
    from kasmm.alerts.redact import register_url

    register_url(url)  # Apprise logs a URL it cannot parse
    apprise = load_apprise()
    try:
        return apprise.Apprise.instantiate(url) is not None
    except Exception:
        return False
