"""The error policy applied to each answer of a round, shared by both drivers.

Synchronous on purpose: the async executor (:mod:`kasmm.bot.executor`) and the synchronous
backtest driver (:mod:`kasmm.backtest.driver`) hand every answer to the same
:class:`RoundOutcomes`, so both treat every outcome alike (and it is compiled with the rest of the
decision path by ``make native``, while the async shell stays source).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

from kasmm.bot.engine import Engine
from kasmm.core.types import ClientOrderId, OpenOrder, OrderRequest
from kasmm.errors import (
    AuthenticationFailed,
    FatalVenueError,
    InsufficientFunds,
    OrderNotFound,
    OrderRejected,
    RateLimited,
    RequestTimedOut,
    VenueError,
)
from kasmm.venues.base import CancelOutcome, PlaceOutcome

#: How long a rate-limited round backs off before the next event may requote.
RATE_LIMIT_PAUSE_S = 1.0

T = TypeVar("T")


class RoundState:
    """What one round learned while its waves ran."""

    __slots__ = ("funds_short", "rate_limited")

    def __init__(self) -> None:
        self.rate_limited = False
        self.funds_short = False


class RoundOutcomes:
    """The error policy applied to each answer of a round (synchronous: the async executor and
    the synchronous backtest driver share it, so both treat every outcome alike)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def cancelled(
        self,
        chunk: Sequence[ClientOrderId],
        result: list[CancelOutcome] | VenueError,
        state: RoundState,
        wall: float,
    ) -> None:
        """The answer to one cancel call (per order, or one error for the whole call)."""
        outcomes = result if isinstance(result, list) else [result] * len(chunk)
        # Indexed, not zip(strict=True), which stays a generic call when compiled; a length
        # mismatch raises as zip does, after the pairs both have.
        n = len(chunk)
        reported: set[int] | None = None  # built for the first error only
        for i in range(min(n, len(outcomes))):
            client_id, outcome = chunk[i], outcomes[i]
            if outcome is None or isinstance(outcome, OrderNotFound):
                self.engine.orders.cancelled(client_id, outcome, wall)
                continue
            _raise_fatal(outcome)
            state.rate_limited |= isinstance(outcome, RateLimited)
            if reported is None:
                reported = set()
            if id(outcome) not in reported:  # a whole-call error counts once
                reported.add(id(outcome))
                self.engine.error(outcome)
        if len(outcomes) != n:
            longer = "longer" if len(outcomes) > n else "shorter"
            raise ValueError(f"zip() argument 2 is {longer} than argument 1")

    def placed(
        self,
        request: OrderRequest,
        level: int,
        outcome: PlaceOutcome,
        sent_at: float,
        state: RoundState,
        wall: float,
    ) -> None:
        """The answer to one placement (a lost answer is :meth:`looked_up` instead)."""
        if isinstance(outcome, OpenOrder):
            self.engine.orders.placed(request, level, outcome, sent_at, wall)
        elif isinstance(outcome, OrderRejected | InsufficientFunds):
            self.engine.orders.rejected(request, level, outcome, wall)
            state.funds_short |= isinstance(outcome, InsufficientFunds)
        else:
            _raise_fatal(outcome)
            state.rate_limited |= isinstance(outcome, RateLimited)
            self.engine.error(outcome)

    def looked_up(
        self,
        lost: Sequence[tuple[OrderRequest, int]],
        listed: Mapping[str, OpenOrder],
        lookup_error: VenueError | None,
        sent_at: float,
        wall: float,
    ) -> None:
        """Placements whose answer was lost, after one listing of the open orders (``listed``
        by client id; empty when the listing failed with ``lookup_error``)."""
        unknown = 0
        for request, level in lost:
            order = listed.get(request.client_id)
            if order is not None:
                self.engine.orders.placed(request, level, order, sent_at, wall)
            else:
                self.engine.orders.outcome_unknown(request, level, wall)
                unknown += 1
        if unknown:
            error = lookup_error or RequestTimedOut(f"{unknown} placement(s) with no answer")
            self.engine.error(error)


def chunks(items: Sequence[T], per_request: int) -> list[list[T]]:
    """One call per batch request the venue takes; a venue without a batch endpoint
    (``per_request`` 1) gets them all in one call, which it sends as concurrent singles."""
    if not items:
        return []
    if per_request <= 1:
        return [list(items)]
    return [list(items[i : i + per_request]) for i in range(0, len(items), per_request)]


def _raise_fatal(outcome: VenueError) -> None:
    if isinstance(outcome, AuthenticationFailed | FatalVenueError):
        raise outcome
