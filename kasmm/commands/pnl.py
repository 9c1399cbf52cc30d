"""``kasmm pnl``: PnL attribution per profile and day, from the ledger (read-only).

Like Hummingbot's ``history`` and freqtrade's ``/daily``: for each profile, one row per local
day with fills, volume, spread capture, fees, revaluation, net, the hold benchmark and net vs
hold (see :mod:`kasmm.report.daily` for what each means and why the days add up to the
totals). The ledger is opened read-only, so this works on a running supervisor's state dir
(WAL: it reads the last commit and never blocks the bots) as well as on a stopped one's.

Profile files (``--profiles DIR``, default ``./profiles`` when it exists) give each profile its
quote asset (fees charged in base are valued at the fill price), its day boundaries (the
``max_daily_loss`` rule's time zone, else UTC) and its tick (for rounding). A profile the files
do not name is shown in UTC with fees taken as quote, and says so.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kasmm.obs.money import NumberFormat, plain
from kasmm.report.daily import DailyPnl, DayPnl, daily_pnl, local_day, total
from kasmm.report.gather import ProfileConfig, load_profile_configs, select_profiles
from kasmm.store import LedgerError
from kasmm.store.reader import LedgerReader
from kasmm.store.state_dir import ledger_path, resolve_state_dir

#: Days shown unless ``--days`` says otherwise (freqtrade's ``/daily`` default).
DEFAULT_DAYS = 7
#: Profile directory used when ``--profiles`` is not given and it exists.
DEFAULT_PROFILES = Path("profiles")

#: (header, right-aligned) of the table.
HEADERS: tuple[tuple[str, bool], ...] = (
    ("day", False),
    ("fills", True),
    ("volume", True),
    ("spread capture", True),
    ("fees", True),
    ("revaluation", True),
    ("net", True),
    ("hold", True),
    ("vs hold", True),
)


@dataclass(frozen=True)
class ProfilePnl:
    """One profile's days as computed, with what the display needs."""

    name: str
    quote: str | None  #: None: no profile file named it (fees taken as quote)
    fee_asset: str  #: the asset taken as quote for fees
    daily: DailyPnl
    shown: list[DayPnl]
    fmt: NumberFormat


def _fail(message: str) -> int:
    print(f"kasmm pnl: {message}", file=sys.stderr)
    return 2


def pnl_command(
    state_dir: Path | None,
    *,
    days: int = DEFAULT_DAYS,
    profiles: Sequence[str] | None = None,
    profiles_dir: Path | None = None,
    as_json: bool = False,
    now: float | None = None,
    out: TextIO | None = None,
) -> int:
    """Print the per-day table (or JSON) of ``profiles`` (default: every one in the ledger).

    :return: 0 when printed (an empty ledger prints that it is empty), 2 on usage errors: no
        ledger, an unreadable one, a bad ``--days``, a profile not in the ledger.
    """
    stream = out or sys.stdout
    if days < 1:
        return _fail(f"--days {days}: must be at least 1")
    path = ledger_path(resolve_state_dir(state_dir))
    if not path.is_file():
        return _fail(f"no ledger at {path} (pass the supervisor's --state-dir)")
    if profiles_dir is None and DEFAULT_PROFILES.is_dir():
        profiles_dir = DEFAULT_PROFILES
    if profiles_dir is not None and not profiles_dir.is_dir():
        return _fail(f"--profiles {profiles_dir}: not a directory")
    configs = load_profile_configs(profiles_dir)[0] if profiles_dir is not None else {}
    moment = time.time() if now is None else now
    try:
        with LedgerReader(path) as reader:
            known = reader.profiles()
            chosen, unknown = select_profiles(known, profiles)
            if unknown:
                held = ", ".join(known) if known else "no profiles at all"
                return _fail(
                    f"no profile {', '.join(unknown)} in the ledger at {path} (it holds {held})"
                )
            results = [
                _profile_pnl(name, reader, configs.get(name), days, moment) for name in chosen
            ]
    except LedgerError as exc:
        return _fail(str(exc))
    except ZoneInfoNotFoundError as exc:  # pragma: no cover - the profile loader checks zones
        return _fail(f"unknown time zone: {exc}")
    if as_json:
        doc = {"ledger": str(path), "days": days, "profiles": [_json(r) for r in results]}
        stream.write(json.dumps(doc, indent=2) + "\n")
        return 0
    if not results:
        print(f"The ledger at {path} holds no profiles yet.", file=stream)
    for i, result in enumerate(results):
        if i:
            print(file=stream)
        _print_profile(result, days, stream)
    return 0


def _profile_pnl(
    name: str, reader: LedgerReader, config: ProfileConfig | None, days: int, now: float
) -> ProfilePnl:
    records = reader.accounting(name)
    tz = config.timezone if config is not None else "UTC"
    # Without the profile file the quote asset is unknown: every fee is taken as quote.
    quote = config.quote if config is not None else None
    fee_quote = quote if quote is not None else _fee_asset(records.fills)
    daily = daily_pnl(
        records.fills,
        records.opening,
        records.equity,
        fee_quote,
        tz,
        transfers=records.transfers,
    )
    today = local_day(now, ZoneInfo(tz))
    fmt = NumberFormat.for_market(config.tick if config is not None else None, None, daily.mark)
    return ProfilePnl(name, quote, fee_quote, daily, daily.last(days, today), fmt)


def _fee_asset(fills: Sequence[Any]) -> str:
    """The asset the first fill's fee was charged in (taken as the quote asset)."""
    return str(fills[0].fee_asset) if fills else ""


def _cells(day: DayPnl, fmt: NumberFormat, label: str) -> list[str]:
    return [
        label,
        str(day.fills),
        fmt.money(day.volume_quote),
        fmt.money(day.spread_capture, sign=True),
        fmt.money(day.fees),
        fmt.money(day.revaluation, sign=True),
        fmt.money(day.net, sign=True),
        fmt.money(day.hold, sign=True),
        fmt.money(day.vs_hold, sign=True),
    ]


def _print_profile(result: ProfilePnl, days: int, out: TextIO) -> None:
    daily, fmt = result.daily, result.fmt
    unit = result.quote or "quote"
    note = ""
    if result.quote is None:
        note = f"; no profile file: fees in {result.fee_asset or 'any asset'} taken as quote"
    mark = f", mark {fmt.price(daily.mark)}" if daily.mark is not None else ""
    print(
        f"{result.name}: last {days} day(s), days in {daily.timezone}, money in {unit}{mark}{note}",
        file=out,
    )
    body = [_cells(d, fmt, d.day.isoformat()) for d in result.shown]
    totals = [_cells(total(list(daily.days)), fmt, "since start")]
    if result.shown:
        totals.insert(0, _cells(total(result.shown), fmt, f"{len(result.shown)} day(s)"))
    else:
        print("  no fills or equity snapshots in these days", file=out)
    headers = [h for h, _ in HEADERS]
    widths = [max(len(h), *(len(r[i]) for r in body + totals)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if right else c.ljust(w)
            for c, w, (_, right) in zip(cells, widths, HEADERS, strict=True)
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    for text in (line(headers), rule, *map(line, body), rule, *map(line, totals)):
        print(text, file=out)


def _day_json(day: DayPnl) -> dict[str, Any]:
    return {
        "fills": day.fills,
        "buys": day.buys,
        "sells": day.sells,
        "volume_base": plain(day.volume_base),
        "volume_quote": plain(day.volume_quote),
        "spread_capture": plain(day.spread_capture),
        "fees": plain(day.fees),
        "revaluation": plain(day.revaluation),
        "net": plain(day.net),
        "hold": plain(day.hold),
        "vs_hold": plain(day.vs_hold),
        "mark": None if day.mark is None else plain(day.mark),
    }


def _json(result: ProfilePnl) -> dict[str, Any]:
    """Exact decimal strings (never exponent notation): a machine sums them itself."""
    daily = result.daily
    return {
        "profile": result.name,
        "timezone": daily.timezone,
        "quote": result.quote,
        "days": [{"day": d.day.isoformat(), **_day_json(d)} for d in result.shown],
        "period": _day_json(total(result.shown)),
        "since_start": _day_json(total(list(daily.days))),
    }
