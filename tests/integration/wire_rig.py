"""The production bot on an in-process exchange emulator, for the wire bench and the fault run.

:func:`emulated` starts one exchange emulator (MEXC, Gate, KuCoin, BingX) with its rate limits
off and, optionally, a fixed one-way latency on every REST answer and websocket push; it yields
an :class:`Exchange`, the same few controls over each (move the market, trade against the
account, read what the server saw). :func:`wire_profile` is a ccxt ``Profile`` as an operator
writes it (credentials as ``${VAR}`` references, ``rest_url``/``ws_url`` at the emulator), and
:func:`running_bot` runs ``kasmm.bot.Bot`` on it as the supervisor does: the venue from
``build_venue``, a SQLite ledger in a temporary file.

Shared by ``tests/integration/test_wire_fault_run.py`` and ``bench/wire.py``.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio

from kasmm.bot import Bot
from kasmm.clock import RealClock
from kasmm.config.schema import Profile
from kasmm.core.types import Fill, OrderFilled, VenueEvent
from kasmm.store import AsyncLedger, Ledger
from kasmm.venues.ccxt import CcxtVenue
from kasmm.venues.factory import build_limiter, build_venue
from tests.emulators.bingx import BingxEmulator
from tests.emulators.gate import GateEmulator
from tests.emulators.kucoin import KucoinEmulator
from tests.emulators.mexc import MexcEmulator
from tests.emulators.wire import WsHub

EXCHANGES = ("mexc", "gate", "kucoin", "bingx")

API_KEY = "wire-key"
SECRET = "wire-secret-0123456789"
PASSPHRASE = "wire-passphrase"
#: The environment the profile's ``${VAR}`` references resolve from.
CREDENTIALS_ENV: Mapping[str, str] = {
    "WIRE_KEY": API_KEY,
    "WIRE_SECRET": SECRET,
    "WIRE_PASSPHRASE": PASSPHRASE,
}

LEDGER_NAME = "kasmm.sqlite"
#: Size of each level of the outside book (base units).
OUTSIDE_SIZE = 50_000

#: Endpoint classes of the requests an account spends (:func:`endpoint_class`).
ENDPOINT_CLASSES = ("book", "orders listing", "trades", "order actions", "other")

_BOOK = re.compile(r"depth|order_?book", re.I)
_TRADES = re.compile(r"mytrades|my_trades|/fills", re.I)
_HOUSEKEEPING = re.compile(r"countdown|cancelallafter|dead-cancel|listenkey|userdatastream", re.I)
_ORDERS = re.compile(r"order|/cancel|/trade/query", re.I)


def endpoint_class(method: str, path: str) -> str:
    """Which class a REST request belongs to: book, orders listing, trades, order actions
    (place, cancel, amend, batches) or other (time, markets, balances, listen keys, the dead
    man's switch, websocket tokens)."""
    if _BOOK.search(path):
        return "book"
    if _TRADES.search(path):
        return "trades"
    if _HOUSEKEEPING.search(path) or not _ORDERS.search(path):
        return "other"
    return "orders listing" if method.upper() == "GET" else "order actions"


@dataclass(frozen=True, slots=True)
class ServerRequest:
    """A REST request as the emulator saw it: arrival (wall seconds), method, path."""

    at: float
    method: str
    path: str

    @property
    def kind(self) -> str:
        return endpoint_class(self.method, self.path)


@dataclass(frozen=True, slots=True)
class ExecutedFill:
    """One of the account's executions at the emulator (or as the bot recorded it)."""

    trade_id: str
    side: str
    price: Decimal
    size: Decimal


def executed_fill(trade_id: str, side: str, price: Decimal, size: Decimal) -> ExecutedFill:
    """An :class:`ExecutedFill` with its numbers normalised (``200.0`` prints as ``200``)."""
    return ExecutedFill(trade_id, side, _plain(price), _plain(size))


def _plain(value: Decimal) -> Decimal:
    normal = value.normalize()
    exponent = normal.as_tuple().exponent
    return normal.quantize(Decimal(1)) if isinstance(exponent, int) and exponent > 0 else normal


@dataclass
class Exchange:
    """One running emulator behind the controls the bench and the fault run need."""

    name: str
    emu: Any
    rest_url: str
    #: ``None`` for KuCoin: its bullet handshake on ``rest_url`` names the websocket.
    ws_url: str | None
    #: The market's book changes (wall seconds at the server), in order.
    moves: list[float] = field(default_factory=list)
    #: The outside book's mid now.
    mid: Decimal = Decimal(0)
    _nudges: int = 0

    @property
    def hub(self) -> WsHub:
        """The websocket hub: connections and wire faults."""
        hub: WsHub = self.emu.ws
        return hub

    def move(self, mid: Decimal) -> float:
        """Set the outside book around ``mid`` without trading against the account's orders;
        returns the server time of the change."""
        at = time.time()
        self._set_book(mid, OUTSIDE_SIZE)
        self.moves.append(at)
        self.mid = mid
        return at

    def nudge(self) -> None:
        """Change the outside book's sizes, not its prices: a book update (a websocket push)
        that moves no quote."""
        self._nudges += 1
        self._set_book(self.mid, OUTSIDE_SIZE + self._nudges)

    def _set_book(self, mid: Decimal, size: int, spread_bps: int = 20, levels: int = 5) -> None:
        if self.name == "gate":
            self.emu.set_mid(mid, spread_bps, levels, size, fill_crossed=False)
        elif self.name == "mexc":
            self.emu.set_mid(mid, spread_bps, levels, size)  # MEXC's outside book never trades
        else:
            fills = self.emu.engine.set_mid(
                mid, spread_bps, levels, size, self.emu.default_symbol, fill_crossed=False
            )
            assert not fills

    def take(self, side: str, price: Decimal, size: Decimal) -> int:
        """An outside taker (``side`` is the taker's) trades up to ``size`` through the
        account's resting orders up to ``price``; returns how many fills that made."""
        return len(self.emu.trade(side, price, size))

    def open_orders(self) -> list[tuple[str, Decimal, Decimal]]:
        """The account's resting orders: ``(side, price, remaining)``, side ``buy``/``sell``."""
        if self.name == "mexc":
            return [
                (
                    o["side"].lower(),
                    Decimal(o["price"]),
                    Decimal(o["origQty"]) - Decimal(o["executedQty"]),
                )
                for o in self.emu.orders(account=API_KEY, open_only=True)
            ]
        if self.name == "gate":
            return [
                (o["side"], Decimal(o["price"]), Decimal(o["left"]))
                for o in self.emu.orders(status="open")
            ]
        return [
            (o.side, o.price, o.size - o.filled)
            for o in self.emu.engine.orders_of(API_KEY, None, True)
        ]

    def executed(self) -> list[ExecutedFill]:
        """Every fill the emulator executed for the account, oldest first."""
        if self.name == "mexc":
            return [
                executed_fill(
                    t["id"],
                    "buy" if t["isBuyer"] else "sell",
                    Decimal(t["price"]),
                    Decimal(t["qty"]),
                )
                for t in self.emu.fills(API_KEY)
            ]
        if self.name == "gate":
            return [
                executed_fill(str(f.id), f.side, f.price, f.amount) for f in self.emu.engine.fills
            ]
        # KuCoin's tradeId is its own numbering of the match (kucoin_engine.trade_id).
        trade_id = self.emu.venue.trade_id if self.name == "kucoin" else (lambda f: f.trade_id)
        return [
            executed_fill(trade_id(f), f.side, f.price, f.size)
            for f in self.emu.engine.fills(API_KEY)
        ]

    def requests(self) -> list[ServerRequest]:
        """The REST requests the emulator received, in arrival order."""
        if self.name == "gate":
            return [ServerRequest(r.time, r.method, r.path) for r in self.emu.requests]
        return [ServerRequest(r.time_ms / 1000, r.method, r.path) for r in self.emu.requests]

    # --- protocol faults (what each exchange's protocol offers beyond the wire faults) -------

    def protocol_faults(self) -> dict[str, Callable[[], Awaitable[object]]]:
        """The protocol faults this emulator offers, by name (each an async action)."""
        faults: dict[str, Callable[[], Awaitable[object]]] = {
            "fresh snapshot after reconnect": self._reconnect_and_move,
        }
        if self.name in ("mexc", "bingx"):
            faults["listen-key expiry"] = self._expire_listen_keys
        if self.name == "kucoin":
            faults["token expiry"] = self._expire_tokens
        if self.name == "gate":
            faults["full snapshot push"] = self._push_full
        return faults

    async def _reconnect_and_move(self) -> object:
        closing = set(self.hub.connections)
        await self.hub.close_all()
        await self.hub.wait_for(lambda hub: not closing & hub.connections.keys())
        # The other of the two mids the runs alternate.
        mid = Decimal("0.1002") if self.mid == Decimal("0.1") else Decimal("0.1")
        return self.move(mid)

    async def _expire_listen_keys(self) -> object:
        closed: int = self.emu.ws_protocol.expire_listen_key()
        return closed

    async def _expire_tokens(self) -> object:
        # KuCoin checks a token when a client connects: expire them all, then drop the
        # sessions, so the reconnect must fetch new tokens.
        expired: int = self.emu.ws_protocol.expire_tokens()
        await self.hub.close_all()
        return expired

    async def _push_full(self) -> object:
        sent: int = self.emu.ws_protocol.push_obu_full()
        return sent


@asynccontextmanager
async def emulated(
    exchange: str,
    *,
    http_latency_s: float = 0.0,
    ws_latency_s: float = 0.0,
    server_pings: bool = False,
    mid: Decimal = Decimal("0.1"),
) -> AsyncIterator[Exchange]:
    """Run ``exchange``'s emulator on loopback (rate limits off) with a book around ``mid``.

    :param http_latency_s: one-way latency on each REST request and answer.
    :param ws_latency_s: one-way latency on every websocket message the server sends.
    :param server_pings: the server pings its websocket clients often (Gate: protocol pings
        every 0.5 s; BingX: its JSON ping every 0.5 s; KuCoin: a 1 s ping interval in the
        bullet answer; MEXC's clients ping, its server does not).
    """
    emu: Any
    if exchange == "mexc":
        emu = MexcEmulator(API_KEY, SECRET, weight_limit=None, http_latency_s=http_latency_s)
    elif exchange == "gate":
        emu = GateEmulator(
            API_KEY,
            SECRET,
            limit=None,
            order_rate=1_000_000,
            ws_heartbeat_s=0.5 if server_pings else None,
            http_latency_s=http_latency_s,
        )
    elif exchange == "kucoin":
        emu = KucoinEmulator(
            API_KEY,
            SECRET,
            PASSPHRASE,
            spot_quota=None,
            public_quota=None,
            ping_interval_ms=1_000 if server_pings else 18_000,
            http_latency_s=http_latency_s,
        )
    elif exchange == "bingx":
        emu = BingxEmulator(
            API_KEY,
            SECRET,
            rate_limits=None,
            ping_interval_s=0.5 if server_pings else 5.0,
            http_latency_s=http_latency_s,
        )
    else:
        raise ValueError(f"no emulator for {exchange!r}")
    emu.ws.latency_s = ws_latency_s
    async with emu:
        ws_url = None if exchange == "kucoin" else emu.ws_url
        venue = Exchange(exchange, emu, emu.base_url, ws_url)
        venue.move(mid)
        yield venue
        assert getattr(emu, "internal_errors", []) == []


def wire_profile(
    exchange: Exchange,
    *,
    websocket: bool,
    spread_bps: float = 40,
    size: int = 600,
    levels: int = 1,
    book_poll_s: float = 0.5,
    feed_stall_s: float = 5.0,
) -> Profile:
    """A ccxt profile on the emulator as an operator writes it: credentials as ``${VAR}``
    references, ``rest_url`` (and ``ws_url``) at the emulator, a refresh tolerance that makes
    every market move of 20 bps a requote, no loss limits (the market is synthetic)."""
    credentials = {"api_key": "${WIRE_KEY}", "secret": "${WIRE_SECRET}"}
    if exchange.name == "kucoin":
        credentials["password"] = "${WIRE_PASSPHRASE}"
    venue: dict[str, Any] = {
        "type": "ccxt",
        "exchange": exchange.name,
        "credentials": credentials,
        "rest_url": exchange.rest_url,
        "use_websocket": websocket,
        "book_poll_s": book_poll_s,
        "feed_stall_s": feed_stall_s,
        "timeout_s": 5,
    }
    if exchange.ws_url is not None:
        venue["ws_url"] = exchange.ws_url
    mode = {"spread_bps": spread_bps, "size": size, "levels": levels, "level_step_bps": 10}
    return Profile.model_validate(
        {
            "name": f"wire-{exchange.name}",
            "venue": venue,
            "symbol": "KAS/USDT",
            "modes": {"passive": mode},
            "mode": "passive",
            "refresh": {"tolerance_bps": 2, "min_requote_interval_s": 0},
            "kill_switch": {"max_drawdown": None, "max_daily_loss": None},
            "rate_limit": {"capacity": 1000, "refill_per_s": 1000},
        }
    )


def set_credentials_env(environ: Any = os.environ) -> None:
    """Put the emulator's credentials where the profile's references point."""
    for name, value in CREDENTIALS_ENV.items():
        environ[name] = value


@dataclass
class RunningBot:
    """A bot on its way, with the fills its venue yielded (duplicates included)."""

    bot: Bot
    ledger: AsyncLedger
    yielded: list[ExecutedFill] = field(default_factory=list)

    async def recorded(self) -> list[ExecutedFill]:
        """The fills in the bot's ledger, in insertion order."""
        return _as_executed(await self.ledger.fills(self.bot.profile.name))


def ledger_fills(directory: Path, profile: str) -> list[ExecutedFill]:
    """The fills the ledger in ``directory`` holds for ``profile`` (read after the bot
    stopped), in insertion order."""
    with Ledger(directory / LEDGER_NAME) as ledger:
        return _as_executed(ledger.fills(profile))


def _as_executed(fills: Iterable[Fill]) -> list[ExecutedFill]:
    return [executed_fill(str(f.trade_id), f.side.value, f.price, f.size) for f in fills]


@asynccontextmanager
async def running_bot(
    profile: Profile, directory: Path, *, reconnect_s: float | None = None
) -> AsyncIterator[RunningBot]:
    """Run ``Bot`` on ``profile`` as the supervisor does (venue from ``build_venue``, a SQLite
    ledger in ``directory``) until the block ends; then stop it (its orders cancelled).

    :param reconnect_s: the websocket reconnect backoff, first and longest (the venue's
        default: 1 s doubling up to 60 s, reset only by a session that lasted 60 s; a run that
        ends a session every second would otherwise spend minutes on REST polling).
    """
    clock = RealClock()
    venue = build_venue(profile, clock, build_limiter(profile, clock))
    if reconnect_s is not None:
        assert isinstance(venue, CcxtVenue)
        venue.settings = replace(
            venue.settings,
            ws_backoff_s=reconnect_s,
            ws_backoff_max_s=reconnect_s,
            ws_stable_s=reconnect_s,
        )
    ledger = Ledger(directory / LEDGER_NAME)
    running: RunningBot | None = None

    def on_handled(event: VenueEvent) -> None:
        if isinstance(event, OrderFilled) and running is not None:
            f = event.fill
            running.yielded.append(executed_fill(str(f.trade_id), f.side.value, f.price, f.size))

    async with AsyncLedger(ledger) as async_ledger:
        bot = Bot(profile, venue, clock=clock, ledger=async_ledger, on_handled=on_handled)
        running = RunningBot(bot, async_ledger)
        async with anyio.create_task_group() as tg:
            await tg.start(bot.run)
            yield running
            tg.cancel_scope.cancel()


def by_trade_id(fills: Iterable[ExecutedFill]) -> dict[str, ExecutedFill]:
    """Fills keyed by trade id (the last one wins: compare lengths for duplicates)."""
    return {f.trade_id: f for f in fills}
