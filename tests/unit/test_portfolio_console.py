"""``kasmm top``: a portfolio is a row under the profiles, with its state and aggregate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable

from kasmm.commands.status import render_table
from kasmm.console import rows
from kasmm.console.app import COLUMNS, TopApp, group_row
from kasmm.console.plain import render_plain
from tests.unit.test_console import STATUS, fake_supervisor, row_cells, text_of

pytestmark = pytest.mark.anyio

GROUP: dict[str, Any] = {
    "name": "kas",
    "state": "halted",
    "halt_reason": "portfolio_max_drawdown: 620 > 500",
    "members": {"alpha": "halted", "broken": "stopped"},
    "waiting_for": [],
    "target_share": None,
    "target_base": "50000",
    "base": "110000.5",
    "quote": "4200.1",
    "mark": "0.0800125",
    "value": "8801.415",
    "equity": "13001.515",
    "share": 0.677,
    "deviation": 0.4425,
    "excess_base": "60000.5",
    "pnl": "-620.123456",
    "daily_pnl": "-620.1",
    "drawdown": "620.123456789",
}


def test_group_cells() -> None:
    cells = dict(zip(COLUMNS, group_row(GROUP), strict=True))
    assert cells["PROFILE"] == "[kas]"
    assert cells["STATE"] == "halted: portfolio_max_drawdown: 620 > 500"
    assert cells["MID"] == "0.080012"  # six significant digits without a tick
    assert cells["INVENTORY"] == "110000.5"
    # A base target shown as the share it is worth at the group's mark.
    assert cells["SHARE/TARGET"] == "68% / 31%"
    assert cells["NET"] == "-620.12"
    assert cells["ORDERS"] == "2 members"
    assert cells["LAST ERROR"] == "deviation +0.44, drawdown 620.12"


def test_a_group_waiting_for_members_says_so() -> None:
    row = {"name": "kas", "state": "active", "waiting_for": ["b"], "members": {"a": "x"}}
    assert rows.group_state(row) == "active: waiting for b"
    assert group_row(row)[9] == "-"  # no share before it is measured


async def test_top_shows_the_group_row_under_the_profiles(tmp_path: Path) -> None:
    status = {**STATUS, "portfolios": [GROUP]}
    async with fake_supervisor(tmp_path, status) as fake:
        app = TopApp(fake.source(), interval=0.2)
        async with app.run_test(size=(220, 50)) as pilot:
            await pilot.pause()
            table: DataTable[Any] = app.query_one(DataTable)
            assert table.row_count == 4
            assert row_cells(app, "portfolio:kas")[:2] == [
                "[kas]",
                "halted: portfolio_max_drawdown: 620 > 500",
            ]
            # Selected, it shows its members and figures.
            table.move_cursor(row=3)
            await pilot.pause()
            detail = text_of(app, "#detail")
            assert detail.startswith("portfolio kas\nstate halted: portfolio_max_drawdown")
            assert "members: alpha halted, broken stopped" in detail
            assert "reset each member" in detail
            # A group row is no profile: reset on it asks nothing and sends nothing.
            await pilot.press("r")
            await pilot.pause()
            assert fake.requests == []


def test_kasmm_status_prints_a_line_per_portfolio() -> None:
    text = render_table({**STATUS, "portfolios": [GROUP]})
    lines = text.splitlines()
    at = next(i for i, ln in enumerate(lines) if ln.startswith("portfolio "))
    # After the profile table, before the config errors.
    assert lines[at - 1] == "" and lines[at + 2].startswith("config errors")
    line = lines[at]
    assert line == (
        "portfolio kas: halted: portfolio_max_drawdown: 620 > 500  members=alpha, broken"
        "  base=110000.5  share=68% / 31%  equity=13001.52  pnl=-620.12"
    )


def test_plain_top_shows_each_portfolio() -> None:
    text = render_plain({**STATUS, "portfolios": [GROUP]})
    assert "\nportfolio kas\nstate halted: portfolio_max_drawdown: 620 > 500\n" in text
