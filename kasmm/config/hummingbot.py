"""Hummingbot pure-market-making keys a profile may be written with by habit, and their kasmm
equivalents: an unknown key that is one of them is answered with where the setting lives here
(and how its unit changes), not only with the keys allowed where it was written.

Only keys with a direct equivalent are listed; the README's comparison table covers every
Hummingbot key, including those kasmm does differently or leaves out.
"""

from __future__ import annotations

__all__ = ["HUMMINGBOT_KEYS", "hummingbot_hint"]

_PCT_TO_BPS = "in bps here: 0.25 (percent) there is 25 here"

#: Hummingbot key -> (kasmm field path, unit note or "").
HUMMINGBOT_KEYS: dict[str, tuple[str, str]] = {
    "bid_spread": ("modes.<mode>.bid_spread_bps", _PCT_TO_BPS),
    "ask_spread": ("modes.<mode>.ask_spread_bps", _PCT_TO_BPS),
    "order_amount": ("modes.<mode>.size", ""),
    "order_levels": ("modes.<mode>.levels", ""),
    "order_level_amount": ("modes.<mode>.level_size_step", ""),
    "order_level_spread": ("modes.<mode>.level_step_bps", _PCT_TO_BPS),
    "add_transaction_costs": ("pricing.add_fees", ""),
    "order_optimization_enabled": ("pricing.join_depth", "set a depth to turn it on"),
    "bid_order_optimization_depth": ("pricing.join_depth", "one depth for both sides"),
    "ask_order_optimization_depth": ("pricing.join_depth", "one depth for both sides"),
    "price_ceiling": ("pricing.price_band.ceiling", ""),
    "price_floor": ("pricing.price_band.floor", ""),
    "moving_price_band_enabled": ("pricing.price_band.band_pct", "set it to turn it on"),
    "price_ceiling_pct": ("pricing.price_band.band_pct", "one percentage for both edges"),
    "price_floor_pct": ("pricing.price_band.band_pct", "one percentage for both edges"),
    "price_band_refresh_time": (
        "pricing.price_band.halflife_s",
        "a moving average's half-life rather than a periodic reset",
    ),
    "filled_order_delay": ("after_fill.filled_order_delay_s", ""),
    "ping_pong_enabled": ("after_fill.ping_pong", ""),
    "hanging_orders_enabled": ("after_fill.hanging_orders.enabled", ""),
    "hanging_orders_cancel_pct": ("after_fill.hanging_orders.cancel_pct", ""),
    "inventory_target_base_pct": (
        "inventory.target_share",
        "a share here: 50 (percent) there is 0.5 here",
    ),
    "inventory_skew_enabled": ("inventory.skew_strength", "0 turns skew off"),
    "order_refresh_tolerance_pct": ("refresh.tolerance_bps", _PCT_TO_BPS),
    "max_order_age": ("refresh.max_order_age_s", ""),
}


def hummingbot_hint(key: str) -> str | None:
    """Where the Hummingbot setting ``key`` lives in a kasmm profile, or ``None``."""
    found = HUMMINGBOT_KEYS.get(key)
    if found is None:
        return None
    path, note = found
    return f"Hummingbot's {key} is {path}" + (f" ({note})" if note else "")
