"""``kasmm top`` headless (Textual's ``run_test`` and pilot) against a fake supervisor: a
``/status`` server on loopback and a control socket that records what it is sent."""

from __future__ import annotations

import io
import threading
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest
from rich.text import Text
from textual.widgets import DataTable, Static

from kasmm.console.app import COLUMNS, Confirm, TopApp
from kasmm.console.plain import render_plain, run_plain
from kasmm.console.source import ConsoleSource
from kasmm.control import serve_control
from kasmm.daemon.control_socket import serve_control_socket, socket_path

pytestmark = pytest.mark.anyio

STATUS: dict[str, Any] = {
    "supervisor": {
        "pid": 4242,
        "uptime_s": 75.0,
        "profiles_total": 2,
        "healthy": False,
        "health": "failed profiles: broken",
        "config_errors": ["/p/bad.yaml:3:5: bad: modes: field required"],
    },
    "profiles": [
        {
            "name": "alpha",
            "file": "/p/alpha.yaml",
            "venue": "sim",
            "symbol": "KAS/USDT",
            "state": "halted",
            "mode": "passive",
            "halt_reason": "max_drawdown: 6 > 5",
            "engaged": [{"rule": "max_drawdown", "action": "halt", "why": "6 > 5"}],
            "mid": "0.0800125",
            "own_bid": "0.079900",
            "own_ask": "0.080100",
            "own_spread_bps": 25.0,
            "kpis": {
                "seconds": 600.0,
                "uptime_both": 0.9312,
                "uptime_bid": 0.97,
                "uptime_ask": 0.95,
                "spread_bps_now": 25.0,
                "spread_bps_avg": 24.31,
                "depth_now": {"0.5": 240.04, "1": 240.04, "2": 480.1},
                "depth_avg": {"0.5": 230.0, "1": 235.0, "2": 470.0},
                "fill_ratio": 0.0425,
                "order_to_trade": 12.5,
            },
            "obligation": {
                "share": 0.9012,
                "required": 0.95,
                "window_s": 3600.0,
                "observed_s": 600.0,
                "breached": True,
            },
            "tick": "0.000001",
            "lot": "0.01",
            "inventory_base": "51334.0800000000",
            "inventory_share": 0.52,
            "target_share": 0.5,
            "pnl": {
                "spread_capture": "0.7312",
                "revaluation": "-2.9",
                "fees": "0E-7",
                "net": "5.920788990000000000000000772",
                "hold": "-3.6",
                "vs_hold": "1.38",
            },
            "fills": 17,
            "open_orders": 2,
            "orders": [
                {
                    "side": "buy",
                    "price": "0.079900",
                    "remaining": "1500",
                    "age_s": 4.2,
                    "distance_bps": -14.1,
                },
                {
                    "side": "sell",
                    "price": "0.080100",
                    "remaining": "1500",
                    "age_s": 65,
                    "distance_bps": 10.9,
                },
            ],
            "last_error": None,
        },
        {"name": "bad", "file": "/p/bad.yaml", "state": "disabled"},
        {
            "name": "broken",
            "file": "/p/broken.yaml",
            "state": "failed",
            "last_error": "TransientVenueError: exchange unreachable",
        },
    ],
}


@dataclass
class FakeSupervisor:
    """A ``/status`` endpoint and a control socket that answers ok and records each request."""

    port: int
    state_dir: Path
    requests: list[dict[str, Any]] = field(default_factory=list)

    def source(self) -> ConsoleSource:
        return ConsoleSource(f"127.0.0.1:{self.port}", self.state_dir, "tester")


@asynccontextmanager
async def fake_supervisor(
    tmp_path: Path, status: dict[str, Any] = STATUS
) -> AsyncIterator[FakeSupervisor]:
    async with anyio.create_task_group() as tg:
        port = await tg.start(partial(serve_control, "127.0.0.1", 0, status=lambda: status))
        fake = FakeSupervisor(port, tmp_path)

        async def handle(message: Mapping[str, Any], peer: str) -> dict[str, Any]:
            fake.requests.append(dict(message))
            return {"ok": True, "message": f"{message.get('action')} done"}

        await tg.start(partial(serve_control_socket, socket_path(tmp_path, None), handle))
        yield fake
        tg.cancel_scope.cancel()


def question(app: TopApp) -> str | None:
    """The question of the confirmation on screen, None when none is."""
    screen = app.screen
    return screen.question if isinstance(screen, Confirm) else None


def text_of(app: TopApp, selector: str) -> str:
    content = app.query_one(selector, Static).content
    return content.plain if isinstance(content, Text) else str(content)


def row_cells(app: TopApp, name: str) -> list[str]:
    table: DataTable[Any] = app.query_one(DataTable)
    return [c.plain if isinstance(c, Text) else str(c) for c in table.get_row(name)]


async def test_rows_render_with_rounded_money_and_the_reason_of_each_state(
    tmp_path: Path,
) -> None:
    async with fake_supervisor(tmp_path) as fake:
        app = TopApp(fake.source(), interval=0.2)
        async with app.run_test(size=(220, 50)) as pilot:
            await pilot.pause()
            table: DataTable[Any] = app.query_one(DataTable)
            assert table.row_count == 3
            cells = dict(zip(COLUMNS, row_cells(app, "alpha"), strict=True))
            assert cells == {
                "PROFILE": "alpha",
                "STATE": "halted: max_drawdown: 6 > 5",
                "MODE": "passive",
                "MID": "0.080012",  # half-even at the tick
                "BID": "0.079900",
                "ASK": "0.080100",
                "SPREAD": "25.0 bps",
                "UPTIME": "93.1%",
                "INVENTORY": "51334.08",
                "SHARE/TARGET": "52% / 50%",
                "NET": "+5.92",  # never 28 digits
                "SPREAD CAP": "+0.73",
                "VS HOLD": "+1.38",
                "FILLS": "17",
                "ORDERS": "2",
                "LAST ERROR": "-",
            }
            assert row_cells(app, "bad")[1] == "disabled"
            assert row_cells(app, "broken")[-1] == "TransientVenueError: exchange unreachable"
            summary = text_of(app, "#summary")
            assert "pid 4242" in summary and "failed profiles: broken" in summary
            sup = text_of(app, "#supervisor")
            assert "failed profiles: broken" in sup
            assert "/p/bad.yaml:3:5: bad: modes: field required" in sup


async def test_the_selected_profile_shows_its_orders_rules_and_config_errors(
    tmp_path: Path,
) -> None:
    async with fake_supervisor(tmp_path) as fake:
        app = TopApp(fake.source(), interval=0.2)
        async with app.run_test(size=(220, 50)) as pilot:
            await pilot.pause()
            detail = text_of(app, "#detail")  # the first profile that runs is selected
            assert detail.splitlines()[0] == "alpha  KAS/USDT on sim"
            assert "  buy   0.079900  1500.00  4s  -14.1 bps" in detail
            assert "  sell  0.080100  1500.00  1m05s  +10.9 bps" in detail
            assert "  max_drawdown (halt): value vs limit 6 > 5" in detail
            assert "fees 0.00" in detail and "0E-7" not in detail
            assert (
                "uptime both 93.1% (bid 97.0%, ask 95.0%)  own spread now 25.0 bps,"
                " time-weighted 24.3 bps" in detail
            )
            assert "own depth ±0.5% 240.04  ±1% 240.04  ±2% 480.1  fill ratio 4.2%" in detail
            assert "order-to-trade 12.5" in detail
            assert (
                "obligation BREACHED: met 90.1% of the window vs 95.0% required"
                " (window 1h00m00s, observed 10m00s)" in detail
            )
            await pilot.press("down")
            detail = text_of(app, "#detail")
            assert detail.splitlines()[:2] == ["bad  - on -", "state disabled"]
            assert "  /p/bad.yaml:3:5: bad: modes: field required" in detail
            await pilot.press("down")
            assert "last error: TransientVenueError" in text_of(app, "#detail")
            await pilot.pause(0.5)  # refreshes keep the selection
            assert text_of(app, "#detail").startswith("broken")


async def test_an_action_asks_first_and_then_sends_the_right_socket_message(
    tmp_path: Path,
) -> None:
    async with fake_supervisor(tmp_path) as fake:
        app = TopApp(fake.source(), interval=0.2)
        async with app.run_test(size=(220, 50)) as pilot:
            await pilot.pause()
            await pilot.press("r")
            assert question(app) == "Reset the halt of alpha?"
            await pilot.press("n")
            assert question(app) is None
            assert fake.requests == []  # cancelled: nothing sent

            await pilot.press("p")
            assert question(app) == "Pause alpha? Its orders are cancelled until resumed."
            await pilot.press("y")
            await app.workers.wait_for_complete()
            assert fake.requests == [
                {"action": "pause", "profile": "alpha", "mode": None, "operator": "tester"}
            ]
            assert app.last_answer == "pause done"

            await pilot.press("m")
            await pilot.click("#yes")
            await app.workers.wait_for_complete()
            assert fake.requests[-1] == {
                "action": "mode",
                "profile": "alpha",
                "mode": "aggressive",
                "operator": "tester",
            }
            await pilot.press("R", "y")
            await app.workers.wait_for_complete()
            assert fake.requests[-1]["action"] == "reload"


async def test_a_paused_profile_offers_resume(tmp_path: Path) -> None:
    status = {"profiles": [{"name": "p1", "state": "paused", "paused_by": "alice"}]}
    async with fake_supervisor(tmp_path, status) as fake:
        app = TopApp(fake.source(), interval=0.2)
        async with app.run_test(size=(160, 40)) as pilot:
            await pilot.pause()
            assert row_cells(app, "p1")[1] == "paused by alice"
            await pilot.press("p")
            assert question(app) == "Resume p1?"
            await pilot.press("y")
            await app.workers.wait_for_complete()
            assert fake.requests == [
                {"action": "resume", "profile": "p1", "mode": None, "operator": "tester"}
            ]


async def test_an_unreachable_supervisor_is_said_in_the_title_line(tmp_path: Path) -> None:
    async with fake_supervisor(tmp_path) as fake:
        port = fake.port
    source = ConsoleSource(f"127.0.0.1:{port}", tmp_path, "tester", timeout_s=2)
    app = TopApp(source, interval=0.2)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause()
        assert text_of(app, "#summary").startswith("kasmm top: cannot reach supervisor at")
        await pilot.press("p")  # nothing selected: nothing to confirm
        assert question(app) is None


def test_plain_mode_prints_the_table_details_and_supervisor() -> None:
    out = io.StringIO()
    assert run_plain(lambda: STATUS, 0.01, out=out, count=2) == 0
    text = out.getvalue()
    assert text.count("--- ") == 2  # two reprints
    assert "  buy   0.079900  1500.00  4s  -14.1 bps" in text
    assert "failed profiles: broken" in text
    assert "\x1b" not in text
    assert render_plain(STATUS) in text


class _GatedSource:
    """A ``/status`` source whose answers wait for the test (fetches run in a thread): one
    answer per permit released."""

    def __init__(self) -> None:
        self.permits = threading.Semaphore(0)
        self.answered = 0

    def fetch(self) -> dict[str, Any]:
        assert self.permits.acquire(timeout=10), "no answer released"
        self.answered += 1
        return STATUS

    def act(self, action: str, profile: str | None = None, mode: str | None = None) -> str:
        raise AssertionError("this test sends no action")


async def test_a_status_answer_after_the_widgets_are_gone_is_dropped() -> None:
    """Regression: the fetch runs in a thread, and the app may close meanwhile (its widgets
    removed); the answer arriving then redrew and raised NoMatches out of the app (seen as a
    flaky test_the_selected_profile_shows_its_orders_rules_and_config_errors under load)."""
    source = _GatedSource()
    app = TopApp(source, interval=3600.0)
    source.permits.release()  # the first fetch (on mount, before the pilot starts) answers
    async with app.run_test(size=(160, 40)) as pilot:
        assert source.answered == 1
        async with anyio.create_task_group() as tg:
            tg.start_soon(app.refresh_status)  # a fetch in flight...
            await pilot.pause()
            await app.query_one("#summary").remove()  # ...while the app's widgets go
            source.permits.release()
        assert source.answered == 2
        assert not app.query("#summary")
