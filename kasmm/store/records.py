"""Values the ledger hands back, and the exact encodings it stores them with.

Money goes into SQLite as the ``str`` of a ``Decimal`` in a ``TEXT`` column and comes back through
``Decimal(text)``: that round trip is exact, exponent included (``'1.10'`` stays ``'1.10'``,
``'0.000001234'`` stays ``'0.000001234'``). A ``REAL`` or untyped column would not be: SQLite
converts numeric-looking text in such columns to a double.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Any


class OrderStatus(enum.StrEnum):
    """Where an order stands; each change is appended to ``order_events``."""

    NEW = "new"
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    UNKNOWN = "unknown"


#: Statuses under which an order may still rest on the venue (``unknown``: a timed-out request).
LIVE_STATUSES = frozenset(
    {OrderStatus.NEW, OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED, OrderStatus.UNKNOWN}
)

#: Who changed a profile's mode.
MODE_SOURCES = frozenset({"start", "schedule", "operator"})

#: Kinds of risk event: a rule tripped, a rule's condition cleared, an operator reset.
RISK_KINDS = frozenset({"trip", "clear", "reset"})


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """One status change of one order."""

    ts: float
    status: OrderStatus
    venue_id: str | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class EquitySnapshot:
    """Equity (quote currency) with the mid and balances it was computed from."""

    ts: float
    equity: Decimal
    mid: Decimal
    base: Decimal
    quote: Decimal


@dataclass(frozen=True, slots=True)
class ModeChange:
    """A profile switching mode, and who switched it."""

    ts: float
    mode: str
    source: str


@dataclass(frozen=True, slots=True)
class OperatorAction:
    """An operator's action on a running supervisor (``profile`` None: supervisor-wide)."""

    ts: float
    operator: str
    action: str
    profile: str | None
    details: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class RiskEvent:
    """A stored risk event. ``details`` holds the numbers involved (Decimals read back as str)."""

    ts: float
    kind: str
    rule: str
    action: str
    state: str
    details: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class HaltRecord:
    """A halt in force: when it tripped, which rule, and the numbers that tripped it."""

    ts: float
    rule: str
    details: Mapping[str, Any]


def encode_decimal(value: Decimal) -> str:
    """The exact text of a finite ``Decimal``.

    :raises TypeError: for anything but a ``Decimal`` (a float would already be inexact).
    :raises ValueError: for NaN or infinity, which no amount of money is.
    """
    if not isinstance(value, Decimal):
        raise TypeError(f"expected Decimal, got {type(value).__name__}")
    if not value.is_finite():
        raise ValueError(f"not a finite amount: {value}")
    return str(value)


def decode_decimal(text: str) -> Decimal:
    """Inverse of :func:`encode_decimal`."""
    return Decimal(text)


def _jsonable(value: object) -> object:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        # Strict JSON has no Infinity/NaN (and SQLite's json_valid rejects them); a stale-book
        # trip carries an infinite age, so keep it readable as text.
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, enum.Enum):
        return _jsonable(value.value)
    if isinstance(value, Mapping):
        out: dict[str, object] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"details keys must be str, got {type(key).__name__}")
            out[key] = _jsonable(item)
        return out
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    raise TypeError(f"cannot store {type(value).__name__} in risk event details")


def encode_details(details: Mapping[str, object]) -> str:
    """Risk event details as strict JSON: Decimals and non-finite floats become strings."""
    return json.dumps(_jsonable(details), sort_keys=True, separators=(",", ":"), allow_nan=False)


def decode_details(text: str) -> Mapping[str, Any]:
    """Read-only details mapping from its stored JSON."""
    loaded = json.loads(text)
    if not isinstance(loaded, dict):
        raise ValueError("risk event details must be a JSON object")
    return MappingProxyType(loaded)
