"""Every wire fault in turn while the bot trades over websockets: no fill lost, none counted twice.

The production bot (``kasmm.bot.Bot`` on the ccxt venue ``build_venue`` makes from a profile,
a SQLite ledger) quotes on each exchange emulator through unmodified ``ccxt.pro``. An outside
taker fills its orders, partially and fully, while the server injects each fault of
:mod:`tests.emulators.wire` on every connection (public and private streams), then the protocol
faults the exchange's emulator offers; the server pings its clients throughout. After each
fault the market moves and the bot must requote to it (it keeps trading through the fault).
At the end the bot stops, and the fills in its ledger must be exactly the fills the emulator
executed for the account: the same trade ids, sides, prices and sizes, each once.

Each fault ends or disturbs a websocket session, so the venue's reconnect backoff is shortened
to ``RECONNECT_S`` (by default it doubles up to 60 s and resets only after a session that lasted
60 s). A fill a private stream missed (a dropped push, a stalled or closed session) reaches the bot by
REST: the venue reads open orders and the trade history when a session ends and starts, and
when the open-orders listing changes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import structlog.testing

from tests.integration.wire_rig import (
    CREDENTIALS_ENV,
    EXCHANGES,
    Exchange,
    RunningBot,
    emulated,
    ledger_fills,
    running_bot,
    wire_profile,
)
from tests.support import eventually

pytestmark = pytest.mark.anyio

LOW, HIGH = Decimal("0.1"), Decimal("0.1002")
ORDER_SIZE = 600
PARTIAL = Decimal(200)
#: The websocket reconnect backoff (see ``running_bot``): every fault here ends a session.
RECONNECT_S = 0.2
#: What ``structlog.testing.capture_logs`` collects.
Logs = list[MutableMapping[str, Any]]


def wire_faults(exchange: Exchange) -> list[tuple[str, Callable[[], Awaitable[object]]]]:
    """The faults of one run, in order: the hub's wire faults on every connection, then the
    exchange's protocol faults."""
    hub = exchange.hub

    async def close() -> object:
        return await hub.close_all()

    async def stall() -> object:
        return hub.stall()

    def injecting(**faults: Any) -> Callable[[], Awaitable[object]]:
        async def inject() -> object:
            return hub.inject(**faults)

        return inject

    return [
        ("server close", close),
        ("silent stall", stall),
        ("sequence gap (drop)", injecting(drop=2)),
        ("duplicate", injecting(duplicate=3)),
        ("reorder", injecting(reorder=2)),
        ("slow consumer (burst)", injecting(burst_s=0.3)),
        ("latency", injecting(latency_s=0.15)),
        *exchange.protocol_faults().items(),
    ]


def clear_faults(exchange: Exchange) -> None:
    """End every wire fault on every open connection (a stall resumes)."""
    exchange.hub.resume()
    exchange.hub.inject(drop=0, duplicate=0, reorder=0, burst_s=0.0, latency_s=0.0)


def quoted_around(exchange: Exchange, mid: Decimal) -> bool:
    """The account rests a bid and an ask, all of them priced off ``mid`` (40 bps wide)."""
    orders = exchange.open_orders()
    sides = {side for side, _, _ in orders}
    near = mid * Decimal("0.0005")  # the other mid's quotes are 20 bps away
    return sides == {"buy", "sell"} and all(
        abs(price - mid * (Decimal("0.998") if side == "buy" else Decimal("1.002"))) < near
        for side, price, _ in orders
    )


def take_from(exchange: Exchange, maker_side: str, *, full: bool) -> None:
    """An outside taker fills the bot's best order on ``maker_side``, fully or in part."""
    resting = [(p, r) for side, p, r in exchange.open_orders() if side == maker_side]
    assert resting, f"no {maker_side} order of the bot rests"
    price, remaining = max(resting) if maker_side == "buy" else min(resting)
    taker_side = "sell" if maker_side == "buy" else "buy"
    assert exchange.take(taker_side, price, remaining if full else PARTIAL) >= 1


def ws_book_synced(running: RunningBot) -> bool:
    """ccxt's websocket book has a snapshot applied (ccxt's MEXC takes one only after 25
    pushes: until then the venue reads the book by REST)."""
    exchange = getattr(running.bot.venue, "exchange", None)
    book = (getattr(exchange, "orderbooks", None) or {}).get("KAS/USDT")
    return book is not None and book.get("nonce") is not None


async def websocket_serving(exchange: Exchange, running: RunningBot, logs: Logs) -> None:
    """Wait until a websocket session is up and its book synchronised, nudging the market's
    sizes meanwhile (pushes that move no quote)."""

    def serving() -> bool:
        sessions = logged(logs, "websocket_started") - logged(logs, "websocket_failed")
        if sessions == 1 and ws_book_synced(running):
            return True
        exchange.nudge()
        return False

    await eventually(serving, within_s=15, poll_s=0.02)


async def run_through_faults(exchange: Exchange, running: RunningBot, logs: Logs) -> list[str]:
    """Inject each fault into a serving session, trade and move the market under it, wait for
    the requote; returns the faults run."""
    await eventually(lambda: quoted_around(exchange, exchange.mid), within_s=10)
    done: list[str] = []
    for n, (name, inject) in enumerate(wire_faults(exchange)):
        try:
            await websocket_serving(exchange, running, logs)
        except TimeoutError:
            sessions = (logged(logs, "websocket_started"), logged(logs, "websocket_failed"))
            pytest.fail(f"{exchange.name}: no websocket session before {name!r}: {sessions}")
        await inject()
        await eventually(lambda: quoted_around(exchange, exchange.mid), within_s=10)
        take_from(exchange, "sell" if n % 2 else "buy", full=n % 3 == 2)
        mid = HIGH if exchange.mid == LOW else LOW
        exchange.move(mid)
        try:
            await eventually(lambda mid=mid: quoted_around(exchange, mid), within_s=10)  # type: ignore[misc]
        except TimeoutError:
            pytest.fail(f"{exchange.name}: no requote to {mid} under {name!r}")
        clear_faults(exchange)
        done.append(name)
    return done


def logged(logs: Logs, event: str) -> int:
    """How many times ``event`` was logged."""
    return sum(1 for entry in logs if entry["event"] == event)


@pytest.mark.parametrize("name", EXCHANGES)
async def test_every_wire_fault_loses_no_fill_and_counts_none_twice(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable, value in CREDENTIALS_ENV.items():
        monkeypatch.setenv(variable, value)
    async with emulated(name, server_pings=True, mid=LOW) as exchange:
        profile = wire_profile(
            exchange, websocket=True, size=ORDER_SIZE, feed_stall_s=1, book_poll_s=0.2
        )
        with structlog.testing.capture_logs() as logs:
            async with running_bot(profile, tmp_path, reconnect_s=RECONNECT_S) as running:
                faults = await run_through_faults(exchange, running, logs)
                executed_ids = {f.trade_id for f in exchange.executed()}
                # Fills a private stream missed arrive by REST (listing, trade history).
                try:
                    await eventually(
                        lambda: executed_ids <= {f.trade_id for f in running.yielded}, within_s=15
                    )
                except TimeoutError:
                    missing = executed_ids - {f.trade_id for f in running.yielded}
                    pytest.fail(f"{name}: fills never reached the bot: {sorted(missing)}")
                stats_fills = running.bot.stats.fills
        executed = exchange.executed()
        recorded = ledger_fills(tmp_path, profile.name)
    assert len(faults) >= 8
    # What the client saw: sessions ended and renewed (closes, the stall, protocol faults),
    # the stall detected against a REST snapshot.
    assert logged(logs, "websocket_started") >= 4
    assert logged(logs, "feed_stalled") >= 1
    assert len(executed) >= len(faults)
    assert sum(1 for f in executed if f.size == PARTIAL) >= 3  # partial fills and full ones
    assert len(executed) > sum(1 for f in executed if f.size == PARTIAL)
    # The ledger holds exactly the executed fills: none lost, none twice, same numbers.
    assert Counter(recorded) == Counter(executed)
    assert stats_fills == len(executed)
    yielded_twice = [t for t, n in Counter(f.trade_id for f in running.yielded).items() if n > 1]
    assert yielded_twice == [], "the venue passed a fill on twice (the ledger dropped it)"
