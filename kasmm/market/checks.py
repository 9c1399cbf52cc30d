"""The one check of market data across profiles: a referenced simulated market must be traded,
by exactly one profile.

A real exchange's market (``mexc:KAS/USDT``) has a public feed the supervisor can open for any
profile that references it. A simulated market (``sim:KAS/USDT``, or a sim venue's own
``exchange`` name) has no feed: its only source is the venue of the profile that trades it,
which publishes its books to the hub. A reference to a simulated market no enabled profile of
the load trades would never receive a book: the profile would pause forever (or quote off its
own mid) for a reason nobody sees. So it is refused at load time, on the field that names it.
Two profiles trading simulated markets under one key (``sim`` and the same symbol) are two
markets with one name: a reference to it is refused too (only the first venue publishes).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from kasmm.config.locate import FieldPath
from kasmm.config.schema import SUPPORTED_EXCHANGES, MarketRef, Profile
from kasmm.config.to_core import market_key, profile_market_key

__all__ = ["unserved_references"]


def _refs(profile: Profile) -> Iterator[tuple[FieldPath, MarketRef]]:
    """Each market ``profile``'s ``reference:`` names, with the path of its ``exchange``."""
    cfg = profile.reference
    if cfg is None:
        return
    for i, source in enumerate(cfg.sources):
        yield ("reference", "sources", i, "exchange"), source
        if source.via is not None:
            yield ("reference", "sources", i, "via", "exchange"), source.via


def unserved_references(profiles: Sequence[Profile]) -> list[tuple[str, FieldPath, str]]:
    """``(profile name, field path, message)`` for every reference of an enabled profile to a
    simulated market that not exactly one enabled profile of ``profiles`` trades (module
    docstring)."""
    traders: dict[str, list[str]] = {}
    for p in profiles:
        if p.enabled:
            traders.setdefault(profile_market_key(p), []).append(p.name)
    out: list[tuple[str, FieldPath, str]] = []
    for profile in profiles:
        if not profile.enabled:
            continue
        for path, ref in _refs(profile):
            key = market_key(ref.exchange, ref.symbol)
            names = traders.get(key, [])
            if ref.exchange in SUPPORTED_EXCHANGES or len(names) == 1:
                continue
            if names:
                message = (
                    f"{key} is traded by {len(names)} simulated venues "
                    f"({', '.join(repr(n) for n in names)}), each its own market: a reference "
                    "must name one (give their venues distinct exchange names)"
                )
            else:
                message = (
                    f"{key} is a simulated market that no enabled profile here trades: a "
                    "simulated market has no public feed, only the venue of the profile trading "
                    f"it publishes its books (add that profile, or reference one of "
                    f"{', '.join(SUPPORTED_EXCHANGES)})"
                )
            out.append((profile.name, path, message))
    return out
