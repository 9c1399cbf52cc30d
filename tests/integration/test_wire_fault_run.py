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
to ``RECONNECT_S`` (by default it doubles up to 60 s and resets only after a session that
lasted 60 s). A fill a private stream missed (a dropped push, a stalled or closed session)
reaches the bot by REST: the venue reads open orders and the trade history when a session ends
and starts, and when the open-orders listing changes. The steps are in
:mod:`tests.integration.wire_fault_sequence`.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import structlog.testing

from tests.integration.wire_fault_sequence import (
    LOW,
    ORDER_SIZE,
    PARTIAL,
    RECONNECT_S,
    logged,
    missed_fills,
    run_through_faults,
)
from tests.integration.wire_rig import (
    CREDENTIALS_ENV,
    EXCHANGES,
    emulated,
    endpoint_class,
    ledger_fills,
    running_bot,
    wire_profile,
)

pytestmark = pytest.mark.anyio


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
                # Fills a private stream missed arrive by REST (listing, trade history).
                missing = await missed_fills(exchange, running)
                assert not missing, f"{name}: fills never reached the bot: {sorted(missing)}"
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


@pytest.mark.parametrize(
    ("method", "path", "kind"),
    [
        ("GET", "/api/v3/depth", "book"),
        ("GET", "/spot/order_book", "book"),
        ("GET", "/api/v1/market/orderbook/level2_20", "book"),
        ("GET", "/openApi/spot/v1/market/depth", "book"),
        ("GET", "/api/v3/openOrders", "orders listing"),
        ("GET", "/spot/open_orders", "orders listing"),
        ("GET", "/api/v1/hf/orders/active", "orders listing"),
        ("GET", "/openApi/spot/v1/trade/query", "orders listing"),
        ("GET", "/api/v3/myTrades", "trades"),
        ("GET", "/spot/my_trades", "trades"),
        ("GET", "/api/v1/hf/fills", "trades"),
        ("GET", "/openApi/spot/v1/trade/myTrades", "trades"),
        ("POST", "/api/v3/batchOrders", "order actions"),
        ("PATCH", "/spot/orders/123", "order actions"),
        ("DELETE", "/api/v1/hf/orders/client-order/abc", "order actions"),
        ("POST", "/openApi/spot/v1/trade/cancel", "order actions"),
        ("POST", "/openApi/spot/v1/trade/cancelAllAfter", "other"),
        ("POST", "/spot/countdown_cancel_all", "other"),
        ("POST", "/api/v1/hf/orders/dead-cancel-all", "other"),
        ("POST", "/api/v3/userDataStream", "other"),
        ("GET", "/openApi/spot/v1/account/balance", "other"),
    ],
)
def test_requests_are_classed_by_endpoint(method: str, path: str, kind: str) -> None:
    """The wire bench's request budget classes (book, listing, trades, actions, other)."""
    assert endpoint_class(method, path) == kind
