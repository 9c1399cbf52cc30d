"""A backtest path with everything it did kept, for tests that read a setting's effect from the
quotes and fills (issue 19: "each setting is exercised in a backtest with a profile that uses
it").

:func:`trace_backtest` runs one path of the production backtest driver (the same ``Engine`` the
live bot runs) with an observer that keeps every decision, every order the venue accepted,
every cancel, every fill, and the bot's open orders after each event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from kasmm.backtest.driver import BacktestDriver, Request
from kasmm.backtest.engine import build_path
from kasmm.config.schema import Profile
from kasmm.core.quoting import QuoteDecision
from kasmm.core.types import (
    Book,
    ClientOrderId,
    Fill,
    OpenOrder,
    OrderFilled,
    OrderRequest,
    Side,
    VenueEvent,
)
from kasmm.errors import VenueError
from tests.support import path_spec


@dataclass(frozen=True)
class Placed:
    """An order the venue accepted, at virtual time ``at``."""

    at: float
    client_id: ClientOrderId
    side: Side
    price: Decimal
    size: Decimal
    ioc: bool


@dataclass(frozen=True)
class Step:
    """The bot after one event: the event, its last decision, its open orders, the book.

    The decision taken on a book event saw the open orders of the step before (its actions
    came after it).
    """

    at: float
    event: VenueEvent
    decision: QuoteDecision | None
    open_orders: tuple[OpenOrder, ...]
    book: Book | None

    @property
    def mid(self) -> Decimal | None:
        return self.book.mid if self.book is not None else None


@dataclass
class Trace:
    """What a path did, in time order (the driver's ``Observer``)."""

    driver: BacktestDriver | None = None
    steps: list[Step] = field(default_factory=list)
    placed: list[Placed] = field(default_factory=list)
    cancelled: list[tuple[float, ClientOrderId]] = field(default_factory=list)
    fills: list[tuple[float, Fill]] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)

    def request(self, request: Request) -> None:
        self.requests.append(request)
        if request.error is not None:
            return
        if request.method in ("place_orders", "place_order", "place_ioc"):
            batch = request.arg if isinstance(request.arg, tuple) else (request.arg,)
            results = request.result if isinstance(request.result, tuple) else (request.result,)
            for order, outcome in zip(batch, results, strict=False):
                if isinstance(order, OrderRequest) and _accepted(outcome):
                    self.placed.append(
                        Placed(
                            request.at,
                            order.client_id,
                            order.side,
                            order.price,
                            order.size,
                            request.method == "place_ioc",
                        )
                    )
        elif request.method in ("cancel_orders", "cancel_order"):
            ids = request.arg if isinstance(request.arg, tuple) else (request.arg,)
            self.cancelled.extend((request.at, cid) for cid in ids)

    def handled(self, at: float, event: VenueEvent, decision: QuoteDecision | None) -> None:
        if isinstance(event, OrderFilled):
            self.fills.append((at, event.fill))
        if self.driver is None:
            return
        engine = self.driver.engine
        self.steps.append(
            Step(at, event, decision, tuple(engine.open_orders.values()), engine.book)
        )

    def fills_of(self, side: Side) -> list[tuple[float, Fill]]:
        return [(t, f) for t, f in self.fills if f.side is side]

    def placed_of(self, side: Side) -> list[Placed]:
        return [p for p in self.placed if p.side is side and not p.ioc]


def _accepted(outcome: object) -> bool:
    """A placement the venue took: a batch answers each order with the open order or its
    error; an IOC with its outcome."""
    return not isinstance(outcome, VenueError)


def trace_backtest(profile: Profile, horizon_s: float, *, market: str = "random_walk") -> Trace:
    """Run one seeded path of ``profile`` for ``horizon_s`` virtual seconds, keeping its trace."""
    trace = Trace()
    driver = build_path(path_spec(profile, horizon_s, market=market), observer=trace)
    trace.driver = driver
    driver.run()
    return trace
