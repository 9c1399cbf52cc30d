"""The all-faults fill run's steps: every wire fault, then the protocol faults, while the bot
trades (shared by ``test_wire_fault_run.py`` and ``bench/wire.py``).

For each fault, in order: wait until a websocket session serves (its book synchronised), inject
the fault on every connection, let an outside taker fill one of the bot's orders (in part or in
full), move the market and wait until the bot requoted to it, then clear the fault.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from decimal import Decimal
from typing import Any

from tests.integration.wire_rig import Exchange, RunningBot
from tests.support import eventually

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


async def run_through_faults(
    exchange: Exchange, running: RunningBot, logs: Logs, rounds: int = 1
) -> list[str]:
    """Inject each fault (``rounds`` times over) into a serving session, trade and move the
    market under it, wait for the requote; returns the faults run."""
    await eventually(lambda: quoted_around(exchange, exchange.mid), within_s=10)
    done: list[str] = []
    for n, (name, inject) in enumerate(wire_faults(exchange) * rounds):
        try:
            await websocket_serving(exchange, running, logs)
        except TimeoutError:
            sessions = (logged(logs, "websocket_started"), logged(logs, "websocket_failed"))
            raise AssertionError(
                f"{exchange.name}: no websocket session before {name!r}: {sessions}"
            ) from None
        await inject()
        await eventually(lambda: quoted_around(exchange, exchange.mid), within_s=10)
        take_from(exchange, "sell" if n % 2 else "buy", full=n % 3 == 2)
        mid = HIGH if exchange.mid == LOW else LOW
        exchange.move(mid)
        try:
            await eventually(lambda mid=mid: quoted_around(exchange, mid), within_s=10)  # type: ignore[misc]
        except TimeoutError:
            raise AssertionError(f"{exchange.name}: no requote to {mid} under {name!r}") from None
        clear_faults(exchange)
        done.append(name)
    return done


def logged(logs: Logs, event: str) -> int:
    """How many times ``event`` was logged."""
    return sum(1 for entry in logs if entry["event"] == event)


async def missed_fills(exchange: Exchange, running: RunningBot, within_s: float = 15) -> set[str]:
    """Wait until every fill the emulator executed for the account reached the bot (a fill a
    private stream missed comes by REST); returns the trade ids that never did."""

    def missing() -> set[str]:
        return {f.trade_id for f in exchange.executed()} - {f.trade_id for f in running.yielded}

    try:
        await eventually(lambda: not missing(), within_s=within_s)
    except TimeoutError:
        return missing()
    return set()
