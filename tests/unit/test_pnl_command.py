"""``kasmm pnl``: a ledger with known fills and marks gives an exact per-day table.

The ledger: 1,000 KAS opened at 0.08 on 2026-12-01. Day 1 (UTC): a buy of 100 at 0.079 and a
sell of 100 at 0.0812 (0.01 USDT fee each), marked 0.0825 at 23:00. Day 2: marked 0.0800, a sell
of 200 at 0.0805 (fee 0.02), marked 0.081. By hand (average cost 0.0799090...):

* day 1: spread capture 100 x (0.0812 - 0.079909) = 0.1291, revaluation 1,000 x (0.0825 -
  0.079909) = 2.5909, fees 0.02, net 2.70, hold 1,000 x 0.0025 = 2.50, vs hold 0.20;
* day 2: spread capture 200 x (0.0805 - 0.079909) = 0.1182, net -1.62, hold -1.50, vs hold -0.12;
* together: net 1.08 = the PnL state's net at 0.081 (800 KAS left), hold 1.00, vs hold 0.08.

In Europe/Berlin (UTC+1 in December) the 23:00 UTC mark belongs to day 2, which moves the
day-1 revaluation to day 2 and leaves day 1 with net 0.20 and no hold.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from kasmm.cli import main
from kasmm.commands.pnl import pnl_command
from kasmm.core.types import ClientOrderId, Fill, Side, TradeId
from kasmm.report.daily import daily_pnl, total
from kasmm.store import Ledger
from kasmm.store.reader import LedgerReader

D = Decimal
UTC = dt.UTC


def at(day: int, hour: int, minute: int = 0) -> float:
    return dt.datetime(2026, 12, day, hour, minute, tzinfo=UTC).timestamp()


NOW = at(2, 15)


def fill(n: int, side: Side, price: str, size: str, fee: str, ts: float) -> Fill:
    return Fill(
        TradeId(f"t{n}"), ClientOrderId(f"c{n}"), side, D(price), D(size), D(fee), "USDT", ts
    )


def snapshot(ledger: Ledger, ts: float, mid: str, base: str, quote: str) -> None:
    equity = D(base) * D(mid) + D(quote)
    ledger.record_equity("kas", ts, equity, D(mid), D(base), D(quote))


def build(state: Path) -> Path:
    state.mkdir()
    path = state / "kasmm.sqlite"
    with Ledger(path) as ledger:
        ledger.set_opening("kas", D(1000), D("0.08"), at(1, 0))
        snapshot(ledger, at(1, 0, 1), "0.08", "1000", "100")
        ledger.record_fill("kas", fill(1, Side.BUY, "0.079", "100", "0.01", at(1, 10)))
        ledger.record_fill("kas", fill(2, Side.SELL, "0.0812", "100", "0.01", at(1, 11)))
        snapshot(ledger, at(1, 23), "0.0825", "1000", "100.2")
        snapshot(ledger, at(2, 12), "0.0800", "1000", "100.2")
        ledger.record_fill("kas", fill(3, Side.SELL, "0.0805", "200", "0.02", at(2, 13)))
        snapshot(ledger, at(2, 14), "0.081", "800", "116.28")
    return state


def profiles(tmp: Path, tz: str | None) -> Path:
    directory = tmp / "profiles"
    directory.mkdir()
    daily = f"kill_switch:\n  max_daily_loss: {{quote: 50, timezone: {tz}}}\n" if tz else ""
    text = textwrap.dedent(
        """\
        name: kas
        venue: {type: sim, tick: 0.000001}
        symbol: KAS/USDT
        modes:
          aggressive: {spread_bps: 20, size: 100}
          passive: {spread_bps: 40, size: 100}
        """
    )
    (directory / "kas.yaml").write_text(text + daily)
    return directory


def run(state: Path, **kwargs: object) -> tuple[int, str]:
    out = io.StringIO()
    code = pnl_command(state, now=NOW, out=out, **kwargs)  # type: ignore[arg-type]
    return code, out.getvalue()


def rows(text: str) -> dict[str, list[str]]:
    """First cell -> the other cells, of every table row."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        cells = line.split()
        if cells and (cells[0].startswith("2026-") or cells[0] in ("since", "1", "2")):
            key = " ".join(cells[:2]) if cells[0] in ("since", "1", "2") else cells[0]
            out[key] = cells[2:] if cells[0] in ("since", "1", "2") else cells[1:]
    return out


def test_per_day_table_in_utc(tmp_path: Path) -> None:
    state = build(tmp_path / "state")
    code, text = run(state, profiles_dir=profiles(tmp_path, None))
    assert code == 0, text
    assert text.splitlines()[0] == ("kas: last 7 day(s), days in UTC, money in USDT, mark 0.081000")
    #                   fills volume  spread  fees  reval   net    hold   vs hold
    assert rows(text) == {
        "2026-12-01": ["2", "16.02", "+0.13", "0.02", "+2.59", "+2.70", "+2.50", "+0.20"],
        "2026-12-02": ["1", "16.10", "+0.12", "0.02", "-1.72", "-1.62", "-1.50", "-0.12"],
        "2 day(s)": ["3", "32.12", "+0.25", "0.04", "+0.87", "+1.08", "+1.00", "+0.08"],
        "since start": ["3", "32.12", "+0.25", "0.04", "+0.87", "+1.08", "+1.00", "+0.08"],
    }


def test_days_follow_the_daily_loss_time_zone(tmp_path: Path) -> None:
    state = build(tmp_path / "state")
    code, text = run(state, profiles_dir=profiles(tmp_path, "Europe/Berlin"))
    assert code == 0, text
    assert "days in Europe/Berlin" in text
    table = rows(text)
    # The 23:00 UTC mark is 00:00 in Berlin: day 1 ends marked at 0.08.
    assert table["2026-12-01"] == ["2", "16.02", "+0.13", "0.02", "+0.09", "+0.20", "0.00", "+0.20"]
    assert table["2026-12-02"][4:] == ["+0.78", "+0.88", "+1.00", "-0.12"]
    utc = tmp_path / "utc"
    utc.mkdir()
    assert (
        table["since start"] == rows(run(state, profiles_dir=profiles(utc, None))[1])["since start"]
    )


def test_days_option_and_json_exact(tmp_path: Path) -> None:
    state = build(tmp_path / "state")
    code, text = run(state, days=1, as_json=True, profiles_dir=profiles(tmp_path, None))
    assert code == 0
    doc = json.loads(text)
    (prof,) = doc["profiles"]
    assert prof["profile"] == "kas" and prof["quote"] == "USDT" and prof["timezone"] == "UTC"
    assert [d["day"] for d in prof["days"]] == ["2026-12-02"]
    day = prof["days"][0]
    assert day["net"] == "-1.62"  # exact: the 28-digit average cost cancels out
    assert day["hold"] == "-1.5"
    assert day["volume_base"] == "200"
    assert day["fills"] == 1 and day["sells"] == 1 and day["buys"] == 0
    since = prof["since_start"]
    # Exact: the average cost's 28th digit shows (what the bot's own accounting holds).
    assert since["net"] == "1.079999999999999999999999999"
    assert since["hold"] == "1"
    # Exact strings add up: net = spread capture + revaluation - fees.
    assert D(since["spread_capture"]) + D(since["revaluation"]) - D(since["fees"]) == D(
        since["net"]
    )


def test_days_add_up_to_the_bot_accounting(tmp_path: Path) -> None:
    state = build(tmp_path / "state")
    with Ledger(state / "kasmm.sqlite") as ledger:
        opening = ledger.opening("kas")
        pnl = ledger.pnl_state("kas", "USDT", opening)
        fills, equity = ledger.fills("kas"), ledger.equity_series("kas")
    daily = daily_pnl(fills, opening, equity, "USDT", "UTC")
    assert daily.state == pnl
    parts = pnl.parts(D("0.081"))
    everything = total(list(daily.days))
    assert everything.spread_capture == parts.spread_capture
    assert everything.revaluation == parts.revaluation
    assert everything.fees == parts.fees
    assert everything.net == parts.net
    assert everything.hold == parts.hold
    assert everything.vs_hold == parts.vs_hold


def test_reads_while_a_writer_holds_the_ledger_open(tmp_path: Path) -> None:
    state = build(tmp_path / "state")
    with Ledger(state / "kasmm.sqlite") as writer:
        # A commit the reader has not seen yet: the next read sees it, nothing blocks.
        writer.record_fill("kas", fill(4, Side.BUY, "0.081", "100", "0", at(2, 14, 30)))
        with LedgerReader(state / "kasmm.sqlite") as reader:
            assert len(reader.accounting("kas").fills) == 4
            writer.record_fill("kas", fill(5, Side.BUY, "0.081", "100", "0", at(2, 14, 31)))
            assert len(reader.accounting("kas").fills) == 5
    code, text = run(state, profiles_dir=profiles(tmp_path, None))
    assert code == 0
    assert rows(text)["2026-12-02"][0] == "3"


def test_without_profile_files_utc_and_fees_as_quote(tmp_path: Path) -> None:
    state = build(tmp_path / "state")
    empty = tmp_path / "none"
    empty.mkdir()
    code, text = run(state, profiles_dir=empty)
    assert code == 0
    assert "money in quote" in text and "fees in USDT taken as quote" in text
    assert rows(text)["since start"][-4:] == ["+0.87", "+1.08", "+1.00", "+0.08"]


def test_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = build(tmp_path / "state")
    assert run(state, profiles=["nope"], profiles_dir=tmp_path)[0] == 2
    assert "no profile nope in the ledger" in capsys.readouterr().err
    assert run(state, days=0)[0] == 2
    assert run(tmp_path / "missing")[0] == 2
    assert "no ledger at" in capsys.readouterr().err


def test_cli_registration(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = build(tmp_path / "state")
    code = main(["pnl", "--state-dir", str(state), "--days", "3650", "--json"])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["profiles"][0]["profile"] == "kas"
    assert doc["profiles"][0]["since_start"]["hold"] == "1"
