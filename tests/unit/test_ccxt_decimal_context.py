"""ccxt must not change the Decimal context the rest of kasmm computes in.

Regression: ccxt's ``decimal_to_precision`` (behind every order a ccxt venue sends) set the
current context's rounding to ``ROUND_HALF_UP`` and trapped ``Underflow`` for good; in one
process every later Decimal operation ran that way (found through a hedging test that failed
only after the exchange-emulator tests had run).
"""

from __future__ import annotations

import decimal
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal

import ccxt.async_support as ccxt
import pytest
from ccxt.base.decimal_to_precision import DECIMAL_PLACES, NO_PADDING, ROUND

from kasmm.clock import RealClock
from kasmm.config.schema import CcxtVenueConfig
from kasmm.limiter import TokenBucket
from kasmm.venues.ccxt.client import configure_exchange
from kasmm.venues.ccxt.decimal_context import isolate_decimal_context
from kasmm.venues.ccxt.exchanges import FLAVOURS
from kasmm.venues.paper_feed import CcxtPublicFeed


def _round_price(exchange: ccxt.Exchange) -> str:
    """What ``price_to_precision`` does with a price (it calls this)."""
    return str(exchange.decimal_to_precision("0.0800005", ROUND, 6, DECIMAL_PLACES, NO_PADDING))


def _context_kept() -> bool:
    context = decimal.getcontext()
    return context.rounding == ROUND_HALF_EVEN and not context.traps[decimal.Underflow]


def test_ccxt_alone_changes_the_callers_context() -> None:
    """What the isolation is for (run in a scratch context, so nothing else sees it)."""
    with decimal.localcontext():
        _round_price(ccxt.mexc())
        assert decimal.getcontext().rounding == ROUND_HALF_UP
        assert decimal.getcontext().traps[decimal.Underflow]


@pytest.mark.parametrize("exchange_id", sorted(FLAVOURS))
def test_a_configured_venue_exchange_keeps_the_callers_context(exchange_id: str) -> None:
    with decimal.localcontext():
        exchange = getattr(ccxt, exchange_id)()
        config = CcxtVenueConfig.model_validate(
            {
                "type": "ccxt",
                "exchange": exchange_id,
                "credentials": {"api_key": "${K}", "secret": "${S}", "password": "${P}"},
            }
        )
        configure_exchange(
            exchange, config, FLAVOURS[exchange_id], TokenBucket(10, 10, RealClock())
        )
        assert _round_price(exchange) == "0.080001"  # ccxt still rounds half up, inside
        assert _context_kept()
        # A tie at the 28th digit rounds to even outside, as the core was tested.
        tie = Decimal("1." + "0" * 27 + "5")  # halfway between two 28-digit numbers
        assert tie + 0 == Decimal("1." + "0" * 27)


def test_a_public_feed_keeps_the_callers_context_with_an_injected_exchange() -> None:
    with decimal.localcontext():
        feed = CcxtPublicFeed("mexc", "KAS/USDT", exchange=ccxt.mexc())
        _round_price(feed.exchange)
        assert _context_kept()


def test_isolating_twice_wraps_once() -> None:
    exchange = ccxt.gate()
    isolate_decimal_context(exchange)
    wrapped = exchange.decimal_to_precision
    isolate_decimal_context(exchange)
    assert exchange.decimal_to_precision is wrapped
