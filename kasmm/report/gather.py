"""Read what a report shows from the ledger (and, optionally, the profile files)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from kasmm.config.loader import load_paths
from kasmm.config.schema import Profile
from kasmm.config.to_core import quoting_params
from kasmm.core.params import QuotingParams
from kasmm.core.types import Fill, Side
from kasmm.obs.money import NumberFormat
from kasmm.report.analysis import (
    DrawdownPoint,
    PnlTrack,
    SideSummary,
    TargetPoint,
    drawdown_series,
    inventory_targets,
    pnl_track,
    side_summary,
)
from kasmm.report.daily import DailyPnl, daily_pnl
from kasmm.report.hedges import HedgeSummary, hedge_summary
from kasmm.report.mm import DayKpis, daily_kpis
from kasmm.report.orders import RestingOrder, resting_orders
from kasmm.store import EquitySnapshot, HaltRecord, Ledger, ModeChange, RiskEvent
from kasmm.store.settlement_book import SettlementBook


@dataclass(frozen=True, slots=True)
class ProfileConfig:
    """What the report takes from a profile file: asset names and the inventory target."""

    path: Path
    base: str
    quote: str
    params: QuotingParams  #: flattened as the bot does
    #: Where the profile's days start: its daily-loss rule's time zone, else UTC.
    timezone: str = "UTC"
    #: The venue's price tick when the profile states it (sim), for rounding.
    tick: Decimal | None = None

    @classmethod
    def of(cls, profile: Profile, path: Path) -> ProfileConfig:
        """Read ``profile`` the way the bot does."""
        daily = profile.kill_switch.max_daily_loss
        tick = getattr(profile.venue, "tick", None)
        return cls(
            path,
            profile.base,
            profile.quote,
            quoting_params(profile),
            timezone=daily.timezone if daily is not None else "UTC",
            tick=Decimal(str(tick)) if tick is not None else None,
        )


class _AnyEnv(Mapping[str, str]):
    """An environment in which every variable is set.

    The report reads profile files for their symbol and inventory target only; a live profile
    whose API keys are not in this shell's environment must still load (its ``${VAR}``
    references are checked, never used).
    """

    def __getitem__(self, key: str) -> str:
        return "unused-by-kasmm-report"

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def load_profile_configs(directory: Path) -> tuple[dict[str, ProfileConfig], list[str]]:
    """Valid profiles of ``directory`` by name, and one line per problem found there."""
    loaded = load_paths([directory], env=_AnyEnv())
    configs = {name: ProfileConfig.of(lp.profile, lp.path) for name, lp in loaded.profiles.items()}
    return configs, [str(issue) for issue in loaded.issues]


@dataclass(frozen=True)
class ProfileData:
    """Everything the report shows for one profile over the period ``[since, until]``."""

    name: str
    since: float | None
    until: float
    fills: list[Fill]  #: the period's fills, in time order
    equity: list[EquitySnapshot]  #: the period's snapshots, in time order
    orders: list[RestingOrder]
    risk_events: list[RiskEvent]  #: the period's, oldest first
    mode_changes: list[ModeChange]  #: the period's, oldest first
    mode_before: ModeChange | None  #: the mode in force when the period started
    active_halt: HaltRecord | None  #: a halt in force now (whatever the period)
    opening: tuple[Decimal, Decimal] | None
    pnl: PnlTrack
    buys: SideSummary
    sells: SideSummary
    drawdown: list[DrawdownPoint]
    config: ProfileConfig | None
    targets: list[TargetPoint] = field(default_factory=list)  #: empty without ``config``
    #: The period's PnL attribution per local day (the profile's daily-loss zone, else UTC).
    daily: DailyPnl | None = None
    #: The period's market-making KPIs and obligation compliance per local day (same zone).
    kpi_days: list[DayKpis] = field(default_factory=list)
    #: The period's hedging (``None``: the profile's fills were never hedged).
    hedges: HedgeSummary | None = None

    @property
    def fmt(self) -> NumberFormat:
        """How this profile's money and prices are shown: its tick when the profile file
        states one, else the price level of its last snapshot (:mod:`kasmm.obs.money`)."""
        tick = self.config.tick if self.config is not None else None
        mid = self.equity[-1].mid if self.equity else (self.daily.mark if self.daily else None)
        return NumberFormat.for_market(tick, None, mid)

    @property
    def has_data(self) -> bool:
        """True when the period holds anything to show."""
        return bool(
            self.fills or self.equity or self.orders or self.risk_events or self.mode_changes
        )

    @property
    def base_asset(self) -> str:
        """The base asset's name, or ``base`` when no profile file says."""
        return self.config.base if self.config is not None else "base"

    @property
    def quote_asset(self) -> str:
        """The quote asset's name, or ``quote`` when no profile file says."""
        return self.config.quote if self.config is not None else "quote"

    def time_range(self) -> tuple[float, float] | None:
        """First and last time with data in the period."""
        times = [f.ts for f in self.fills] + [s.ts for s in self.equity]
        times += [o.start for o in self.orders] + [o.end for o in self.orders]
        times += [e.ts for e in self.risk_events] + [m.ts for m in self.mode_changes]
        return (min(times), max(times)) if times else None


def gather(
    ledger: Ledger,
    profile: str,
    since: float | None,
    until: float,
    config: ProfileConfig | None,
) -> ProfileData:
    """Read ``profile``'s records for ``[since, until]`` and compute the report's figures."""
    all_fills = ledger.fills(profile)
    fills = sorted((f for f in all_fills if _within(f.ts, since, until)), key=lambda f: f.ts)
    equity = sorted(
        (s for s in ledger.equity_series(profile, since) if s.ts <= until), key=lambda s: s.ts
    )
    events = [e for e in ledger.risk_events(profile) if _within(e.ts, since, until)]
    modes = ledger.mode_changes(profile)
    in_period = [m for m in modes if _within(m.ts, since, until)]
    before = [m for m in modes if since is not None and m.ts < since]
    opening = ledger.opening(profile)
    # Fees in another asset are valued at the fill price; without the profile the quote asset
    # is unknown and the fee column shows fees per asset only.
    quote = config.quote if config is not None else ""
    # kasmm pnl's stand-in for the quote asset: the first fill's fee asset (no quote sweep is
    # then mistaken for base leaving).
    accounting_quote = quote or (all_fills[0].fee_asset if all_fills else "")
    transfers = SettlementBook(ledger).booked_transfers(profile)
    track = pnl_track(all_fills, opening, accounting_quote, since, transfers)
    # An order the ledger still has live rests until the profile's last recorded activity: a
    # run that died leaves its last orders "open" in the ledger (the venue cancels them).
    activity = [f.ts for f in all_fills if f.ts <= until] + [s.ts for s in equity]
    orders_end = max(activity) if activity else until
    orders = resting_orders(ledger.path, profile, since, orders_end)
    # The whole series: the mark at the period's start comes from before it.
    daily = daily_pnl(
        all_fills,
        opening,
        ledger.equity_series(profile),
        accounting_quote,
        config.timezone if config is not None else "UTC",
        since=since,
        until=until,
        transfers=transfers,
    )
    # Every row: a row's increment needs the previous row of its run, maybe before ``since``.
    kpi_days = daily_kpis(
        ledger.kpi_series(profile),
        config.timezone if config is not None else "UTC",
        since=since,
        until=until,
    )
    hedged = ledger.hedged_fills(profile)
    hedges = hedge_summary(hedged, since, until) if hedged else None
    targets: list[TargetPoint] = []
    if config is not None:
        targets = inventory_targets(equity, config.params, config.base, config.quote)
    return ProfileData(
        name=profile,
        since=since,
        until=until,
        fills=fills,
        equity=equity,
        orders=orders,
        risk_events=events,
        mode_changes=in_period,
        mode_before=before[-1] if before else None,
        active_halt=ledger.active_halt(profile),
        opening=opening,
        pnl=track,
        buys=side_summary(fills, Side.BUY),
        sells=side_summary(fills, Side.SELL),
        drawdown=drawdown_series(equity, transfers, accounting_quote),
        config=config,
        targets=targets,
        daily=daily,
        kpi_days=kpi_days,
        hedges=hedges,
    )


def _within(ts: float, since: float | None, until: float) -> bool:
    return (since is None or ts >= since) and ts <= until


def select_profiles(
    known: Sequence[str], wanted: Sequence[str] | None
) -> tuple[list[str], list[str]]:
    """The profiles to report (``wanted`` in the ledger, in order; else all), and unknown ones."""
    if not wanted:
        return list(known), []
    chosen: list[str] = []
    for name in wanted:
        if name in known and name not in chosen:
            chosen.append(name)
    return chosen, [name for name in wanted if name not in known]
