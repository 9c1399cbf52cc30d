"""Shared market data inside one supervisor: one feed per ``"<exchange>:<symbol>"``.

:class:`~kasmm.market.hub.MarketHub` owns the feeds; profiles that trade or reference a market
subscribe to it instead of opening their own connection, so three bots on MEXC KAS/USDT cost one
book stream and one public request budget. Readers see every book with the interval-clock time
it arrived (its age) and where it came from (websocket, REST, or a venue of this supervisor).
"""

from kasmm.market.book import BookSource, MarketBook
from kasmm.market.hub import MarketHub, Subscription
from kasmm.market.keys import market_key, profile_market_key, split_key

__all__ = [
    "BookSource",
    "MarketBook",
    "MarketHub",
    "Subscription",
    "market_key",
    "profile_market_key",
    "split_key",
]
