"""Cross-field checks, run after the structural (pydantic) pass.

Each check takes a structurally valid :class:`~kasmm.config.schema.Profile` and returns a list of
findings ``(field path, message)``; the loader turns the path into ``line:col`` (a path to a field
the user did not write points at its closest written parent). :data:`CHECKS` names them all.
No check touches the network.

The checks across profiles (they need every profile of a load) and the warnings live in their
own modules and are re-exported here: :func:`prefix_collisions`
(:mod:`kasmm.config.account_checks`), :func:`world_conflicts` (:mod:`kasmm.config.world_checks`),
:func:`hedge_problems` (:mod:`kasmm.config.cross_venue_checks`) and :func:`run_warnings`
(:mod:`kasmm.config.warning_checks`).
"""

from __future__ import annotations

import functools
import zoneinfo
from collections.abc import Callable

from kasmm.config.account_checks import prefix_collisions
from kasmm.config.cross_venue_checks import check_hedge, check_reference, hedge_problems
from kasmm.config.locate import FieldPath
from kasmm.config.quoting_checks import check_quoting_settings
from kasmm.config.schema import (
    SUPPORTED_EXCHANGES,
    AS2008Market,
    AvellanedaStoikovStrategy,
    CcxtVenueConfig,
    KillRule,
    ModeConfig,
    PaperVenueConfig,
    Profile,
    SessionEndHorizon,
    SimVenueConfig,
)
from kasmm.config.warning_checks import WARNINGS, run_warnings, warn_spread
from kasmm.config.world_checks import check_sim_world, world_conflicts

__all__ = [
    "CHECKS",
    "DEFAULT_TARGET_SHARE",
    "WARNINGS",
    "Check",
    "Finding",
    "check_hedge",
    "check_quoting_settings",
    "check_reference",
    "hedge_problems",
    "prefix_collisions",
    "run_checks",
    "run_warnings",
    "warn_spread",
    "world_conflicts",
]

Finding = tuple[FieldPath, str]
Check = Callable[[Profile], list[Finding]]

DEFAULT_TARGET_SHARE = 0.5  #: inventory target when neither target_share nor target_base is set


def check_inventory(p: Profile) -> list[Finding]:
    """min_share <= target_share <= max_share; one target only; min_base <= max_base."""
    inv = p.inventory
    out: list[Finding] = []
    if inv.min_share > inv.max_share:
        out.append(
            (
                ("inventory", "min_share"),
                f"min_share ({inv.min_share:g}) must not exceed max_share ({inv.max_share:g})",
            )
        )
    elif inv.target_share is not None or inv.target_base is None:
        target = DEFAULT_TARGET_SHARE if inv.target_share is None else inv.target_share
        if not inv.min_share <= target <= inv.max_share:
            bounds = f"[min_share {inv.min_share:g}, max_share {inv.max_share:g}]"
            if inv.target_share is not None:
                out.append(
                    (("inventory", "target_share"), f"target_share {target:g} is outside {bounds}")
                )
            else:
                side = "min_share" if target < inv.min_share else "max_share"
                out.append(
                    (
                        ("inventory", side),
                        f"the default target_share {target:g} is outside {bounds}; "
                        "set target_share or move the bounds",
                    )
                )
    if inv.target_share is not None and inv.target_base is not None:
        out.append((("inventory", "target_base"), "set target_share or target_base, not both"))
    if inv.min_base is not None and inv.max_base is not None and inv.min_base > inv.max_base:
        out.append(
            (
                ("inventory", "min_base"),
                f"min_base ({inv.min_base}) must not exceed max_base ({inv.max_base})",
            )
        )
    return out


def _spread_written(mode: ModeConfig) -> str:
    """A mode's total spread as its file states it (the sum of per-side spreads, if given)."""
    if mode.bid_spread_bps is None or mode.ask_spread_bps is None:
        return f"{mode.spread_bps:g} bps"
    return f"bid {mode.bid_spread_bps:g} + ask {mode.ask_spread_bps:g} = {mode.spread_bps:g} bps"


def check_mode_spreads(p: Profile) -> list[Finding]:
    """The passive mode quotes at least as wide as the aggressive one (total spreads)."""
    agg, pas = p.modes.aggressive, p.modes.passive
    if agg is None or pas.spread_bps >= agg.spread_bps:
        return []
    field = "spread_bps" if pas.bid_spread_bps is None else "bid_spread_bps"
    return [
        (
            ("modes", "passive", field),
            f"passive spread ({_spread_written(pas)}) must be at least the aggressive spread "
            f"({_spread_written(agg)})",
        )
    ]


def check_modes_defined(p: Profile) -> list[Finding]:
    """``modes.aggressive`` may be left out only when neither ``mode`` nor the schedule uses it."""
    if p.modes.aggressive is not None:
        return []
    out: list[Finding] = []
    if p.mode == "aggressive":
        out.append((("mode",), "mode aggressive needs modes.aggressive (it is not defined)"))
    out.extend(
        (
            ("schedule", i, "mode"),
            "this entry switches to mode aggressive, but modes.aggressive is not defined",
        )
        for i, entry in enumerate(p.schedule)
        if entry.mode == "aggressive"
    )
    return out


def check_exchange(p: Profile) -> list[Finding]:
    """A ccxt or paper venue names a supported exchange."""
    venue = p.venue
    if (
        isinstance(venue, CcxtVenueConfig | PaperVenueConfig)
        and venue.exchange not in SUPPORTED_EXCHANGES
    ):
        return [
            (
                ("venue", "exchange"),
                f"unsupported exchange {venue.exchange[:40]!r}; supported: "
                + ", ".join(SUPPORTED_EXCHANGES),
            )
        ]
    return []


@functools.cache
def exchange_has_testnet(exchange: str) -> bool:
    """Whether installed ccxt knows a test URL for ``exchange`` (no network is used)."""
    import ccxt

    cls = getattr(ccxt, exchange, None)
    if cls is None:
        return False
    urls = getattr(cls(), "urls", None) or {}
    return bool(urls.get("test"))


def check_sandbox(p: Profile) -> list[Finding]:
    """``sandbox: true`` only on exchanges for which ccxt has a testnet."""
    venue = p.venue
    if (
        isinstance(venue, CcxtVenueConfig)
        and venue.sandbox
        and venue.exchange in SUPPORTED_EXCHANGES
        and not exchange_has_testnet(venue.exchange)
    ):
        return [
            (
                ("venue", "sandbox"),
                f"ccxt has no sandbox (testnet) for {venue.exchange}; set sandbox: false",
            )
        ]
    return []


def check_ws_url(p: Profile) -> list[Finding]:
    """``ws_url`` only where the exchange's websocket URL is a setting (not KuCoin's)."""
    venue = p.venue
    if not (isinstance(venue, CcxtVenueConfig) and venue.ws_url is not None):
        return []
    from kasmm.venues.ccxt.exchanges import FLAVOURS

    flavour = FLAVOURS.get(venue.exchange)
    if flavour is not None and not flavour.ws_sections:
        return [
            (
                ("venue", "ws_url"),
                f"{venue.exchange} takes its websocket endpoint from the REST API's answer "
                "(bullet token), so it follows rest_url; remove ws_url",
            )
        ]
    return []


def check_kill_rules(p: Profile) -> list[Finding]:
    """``action: pause`` needs ``pause_s``; ``pause_s`` only with pause; drawdown needs a limit."""
    out: list[Finding] = []
    ks = p.kill_switch
    for name in type(ks).model_fields:
        rule = getattr(ks, name)
        if not isinstance(rule, KillRule):
            continue
        where: FieldPath = ("kill_switch", name, "pause_s")
        if rule.action == "pause" and rule.pause_s is None:
            out.append((where, "action 'pause' requires pause_s (seconds to pause)"))
        elif rule.action != "pause" and rule.pause_s is not None:
            out.append((where, f"pause_s only applies to action 'pause' (action is {rule.action})"))
    dd = ks.max_drawdown
    if dd is not None and dd.quote is None and dd.pct is None:
        out.append((("kill_switch", "max_drawdown"), "set quote or pct (or both)"))
    return out


#: Loss limits a live (ccxt) profile must state: set, or ``null`` to run without one knowingly.
LIVE_LOSS_LIMITS = ("max_drawdown", "max_daily_loss")


def check_live_limits(p: Profile) -> list[Finding]:
    """A ccxt profile sets ``max_drawdown`` and ``max_daily_loss``, or ``null`` explicitly.

    Real money without a loss limit is refused unless the file says so: a rule that is merely
    left out (or a missing ``kill_switch``) is an error at the closest written parent.
    """
    if not isinstance(p.venue, CcxtVenueConfig):
        return []
    ks = p.kill_switch
    stated = ks.model_fields_set if "kill_switch" in p.model_fields_set else set()
    return [
        (
            ("kill_switch", name),
            f"a live (ccxt) profile needs kill_switch.{name}; set a limit, or "
            f"'{name}: null' to trade without one",
        )
        for name in LIVE_LOSS_LIMITS
        if getattr(ks, name) is None and name not in stated
    ]


#: Keys some systems ship that are not real IANA zones (machine-dependent or placeholders).
_NOT_ZONES = frozenset({"localtime", "Factory", "posixrules"})


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


@functools.cache
def valid_timezone(name: str) -> bool:
    """Whether ``name`` is an IANA time zone key known to this system."""
    zones = _zones()
    if name in _NOT_ZONES or name.startswith(("posix/", "right/")):
        return False
    if zones and name not in zones:
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def check_timezones(p: Profile) -> list[Finding]:
    """Every time zone is a valid IANA key (e.g. ``Europe/Berlin``, ``UTC``)."""
    places: list[tuple[FieldPath, str]] = [
        (("schedule", i, "timezone"), entry.timezone) for i, entry in enumerate(p.schedule)
    ]
    strategy = p.strategy
    if isinstance(strategy, AvellanedaStoikovStrategy) and isinstance(
        strategy.horizon, SessionEndHorizon
    ):
        places.append((("strategy", "horizon", "timezone"), strategy.horizon.timezone))
    if p.kill_switch.max_daily_loss is not None:
        places.append(
            (("kill_switch", "max_daily_loss", "timezone"), p.kill_switch.max_daily_loss.timezone)
        )
    return [
        (where, f"unknown time zone {tz[:64]!r} (use an IANA name such as 'Europe/Berlin')")
        for where, tz in places
        if not valid_timezone(tz)
    ]


@functools.cache
def cron_error(expr: str) -> str | None:
    """Why ``expr`` is not a valid five-field crontab expression, or ``None``.

    Uses the scheduler's own parser, so what validates is exactly what will run.
    """
    from kasmm.schedule import compile_cron

    try:
        compile_cron(expr, "UTC")
    except Exception as exc:  # any failure means an invalid expression
        return str(exc)[:200] or type(exc).__name__
    return None


def check_cron(p: Profile) -> list[Finding]:
    """Every schedule entry's cron expression parses."""
    out: list[Finding] = []
    for i, entry in enumerate(p.schedule):
        err = cron_error(entry.cron)
        if err is not None:
            out.append((("schedule", i, "cron"), f"invalid cron expression: {err}"))
    return out


def check_sim_balances(p: Profile) -> list[Finding]:
    """A random_walk or replay sim, or a paper venue, starts with balances of both assets
    (as2008 ignores balances)."""
    venue = p.venue
    if not isinstance(venue, SimVenueConfig | PaperVenueConfig):
        return []
    if isinstance(venue, SimVenueConfig) and isinstance(venue.market, AS2008Market):
        return []
    missing = [a for a in dict.fromkeys((p.base, p.quote)) if a not in venue.balances]
    if not missing:
        return []
    return [
        (
            ("venue", "balances"),
            f"balances must include {' and '.join(missing)} (the assets of {p.symbol})",
        )
    ]


def check_symbol(p: Profile) -> list[Finding]:
    """Base and quote differ."""
    if p.base == p.quote:
        return [(("symbol",), f"base and quote assets must differ (got {p.symbol})")]
    return []


CHECKS: dict[str, Check] = {
    "symbol": check_symbol,
    "reference": check_reference,
    "exchange": check_exchange,
    "sandbox": check_sandbox,
    "ws_url": check_ws_url,
    "sim_balances": check_sim_balances,
    "sim_world": check_sim_world,
    "modes_defined": check_modes_defined,
    "mode_spreads": check_mode_spreads,
    "quoting_settings": check_quoting_settings,
    "inventory": check_inventory,
    "kill_rules": check_kill_rules,
    "live_limits": check_live_limits,
    "timezones": check_timezones,
    "cron": check_cron,
    "hedge": check_hedge,
}


def run_checks(profile: Profile) -> list[Finding]:
    """Run every check in :data:`CHECKS`; a check that crashes is reported, not raised."""
    out: list[Finding] = []
    for name, check in CHECKS.items():
        try:
            out.extend(check(profile))
        except Exception as exc:  # never crash on a config
            out.append(((), f"internal error in check {name}: {type(exc).__name__}"))
    return out
