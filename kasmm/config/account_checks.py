"""Checks across the profiles that share one exchange account.

Two enabled profiles trading on one account must not be able to mistake each other's orders:
:func:`prefix_collisions` needs every profile of a load (like
:func:`~kasmm.config.world_checks.world_conflicts`), so it runs after the per-profile checks.
"""

from __future__ import annotations

from collections.abc import Sequence

from kasmm.config.schema import CcxtVenueConfig, Profile

__all__ = ["prefix_collisions"]


def _account_keys(p: Profile) -> list[tuple[str, str, str]]:
    """How ``p`` identifies its exchange account: each key, if another profile has it too, means
    the two trade on one account. Empty for sim and paper venues (each profile has its own)."""
    venue = p.venue
    if not isinstance(venue, CcxtVenueConfig):
        return []
    # A testnet account is not the live one. The key reference counts even when an account
    # is named: two differently named accounts on one API key are still one account.
    kind = "testnet" if venue.sandbox else "live"
    keys = [(venue.exchange, kind, f"API key {venue.credentials.api_key}")]
    if venue.account is not None:
        keys.append((venue.exchange, kind, f"account {venue.account!r}"))
    return keys


def prefix_collisions(profiles: Sequence[Profile]) -> list[tuple[str, str]]:
    """Enabled profiles on one exchange account whose client order id prefixes are equal.

    Ids are ``<prefix>_...`` (:mod:`kasmm.core.ids`), so equal prefixes are the only way two
    profiles' ids can be mistaken for each other; such profiles would cancel each other's orders
    and book each other's fills. Disabled profiles place no orders and are not checked.

    :return: ``(profile name, message)`` for *every* profile of a colliding group (each message
        naming the others), in the order of ``profiles``: refusing all of them gives the same
        answer in every process (shards), whatever each one runs already.
    """
    groups: dict[tuple[str, str, str, str], list[Profile]] = {}
    for p in profiles:
        if p.enabled:
            for exchange, kind, shared in _account_keys(p):
                groups.setdefault((exchange, kind, shared, p.client_id_prefix), []).append(p)
    clashes: dict[str, dict[str, tuple[str, str, str, str]]] = {}
    for key, members in groups.items():
        for p in members:
            for other in members:
                if other is not p:
                    clashes.setdefault(p.name, {}).setdefault(other.name, key)
    out: list[tuple[str, str]] = []
    for p in profiles:
        others = clashes.get(p.name)
        if not others:
            continue
        exchange, kind, shared, _prefix = next(iter(others.values()))
        names = ", ".join(repr(name) for name in others)
        origin = "set here" if p.order_prefix is not None else "derived from the name"
        out.append(
            (
                p.name,
                f"client order id prefix {p.client_id_prefix!r} ({origin}) is also used by "
                f"profile{'s' if len(others) > 1 else ''} {names} on the same {exchange} "
                f"{kind} account ({shared}): each would cancel the other's orders and book its "
                "fills; give each profile its own order_prefix",
            )
        )
    return out
