"""Checks of the simulated world settings (``venue.market.world`` and its companions).

:func:`check_sim_world` is a per-profile cross-field check (run with the others of
:mod:`kasmm.config.checks`); :func:`world_conflicts` checks across profiles, like
:func:`~kasmm.config.checks.prefix_collisions`: it needs every profile of a load.
"""

from __future__ import annotations

from collections.abc import Sequence

from kasmm.config.locate import FieldPath
from kasmm.config.schema import (
    SUPPORTED_EXCHANGES,
    Profile,
    RandomWalkMarket,
    SimVenueConfig,
    SimWorldConfig,
)

__all__ = ["check_sim_world", "world_conflicts"]

#: Fields of a random_walk market that only mean something with a ``world``.
_WORLD_ONLY_FIELDS = ("lag_ms", "noise_bps", "noise_halflife_s", "arbitrage")
#: Fields of a random_walk market the ``world`` replaces (its own ``s0`` and ``sigma_bps``).
_REPLACED_BY_WORLD = ("s0", "sigma_bps")


def check_sim_world(p: Profile) -> list[tuple[FieldPath, str]]:
    """A sim venue's name is not a live exchange's; the world fields of a random_walk market
    come with a ``world``, and a world venue leaves the own-walk fields it replaces at their
    defaults (a field that silently does nothing is a mistake waiting to be believed)."""
    venue = p.venue
    if not isinstance(venue, SimVenueConfig):
        return []
    out: list[tuple[FieldPath, str]] = []
    if venue.exchange in SUPPORTED_EXCHANGES:
        out.append(
            (
                ("venue", "exchange"),
                f"{venue.exchange!r} is a live exchange: a sim venue named so would share its "
                f"market key '{venue.exchange}:{p.symbol}'; choose another name (e.g. "
                f"'sim-{venue.exchange}')",
            )
        )
    market = venue.market
    if not isinstance(market, RandomWalkMarket):
        return out
    # By value, not by the fields set: a profile that went through model_dump and back (a
    # backtest override, a test helper) has every field set, at its default.
    changed = [
        name
        for name in (*_WORLD_ONLY_FIELDS, *_REPLACED_BY_WORLD)
        if getattr(market, name) != RandomWalkMarket.model_fields[name].default
    ]
    if market.world is None:
        out.extend(
            (("venue", "market", name), f"{name} needs a world (venue.market.world)")
            for name in changed
            if name in _WORLD_ONLY_FIELDS
        )
    else:
        out.extend(
            (
                ("venue", "market", name),
                f"not used with a world: the mid follows the world's latent price "
                f"(set world.{name} instead)",
            )
            for name in changed
            if name in _REPLACED_BY_WORLD
        )
        world = market.world
        if (world.jump_rate_per_s > 0) != (world.jump_bps > 0):
            field = "jump_bps" if world.jump_rate_per_s > 0 else "jump_rate_per_s"
            out.append(
                (
                    ("venue", "market", "world", field),
                    "jumps need both jump_rate_per_s and jump_bps above 0 (or both 0: none)",
                )
            )
    return out


def world_conflicts(profiles: Sequence[Profile]) -> list[tuple[str, str]]:
    """Enabled sim profiles naming one world with different world settings.

    The venues of a world share one latent price path, a function of the world's settings;
    two settings cannot both hold (:class:`~kasmm.venues.sim.world.SimWorlds` refuses the
    second venue at build time). Disabled profiles build no venue and are not checked.

    :return: ``(profile name, message)`` for *every* profile of an inconsistent world (each
        message naming the others and the fields that differ), in the order of ``profiles``:
        which one is right cannot be known, and refusing all gives every shard one answer.
    """
    members: dict[str, list[tuple[Profile, SimWorldConfig]]] = {}
    for p in profiles:
        venue = p.venue
        if not (p.enabled and isinstance(venue, SimVenueConfig)):
            continue
        market = venue.market
        if isinstance(market, RandomWalkMarket) and market.world is not None:
            members.setdefault(market.world.name, []).append((p, market.world))
    out: list[tuple[str, str]] = []
    for p in profiles:
        venue = p.venue
        if not (p.enabled and isinstance(venue, SimVenueConfig)):
            continue
        market = venue.market
        if not (isinstance(market, RandomWalkMarket) and market.world is not None):
            continue
        mine = market.world
        differing = [
            (other, _world_differences(mine, theirs))
            for other, theirs in members[mine.name]
            if other is not p and theirs != mine
        ]
        if not differing:
            continue
        names = "; ".join(f"profile {other.name!r} has {diff}" for other, diff in differing)
        out.append(
            (
                p.name,
                f"world {mine.name!r} is set differently by other profiles ({names}): the "
                "venues of one world share one latent price, so every profile naming it must "
                "give it the same settings",
            )
        )
    return out


def _world_differences(mine: SimWorldConfig, theirs: SimWorldConfig) -> str:
    """``field=theirs (here mine)`` for every world field the two settings differ in."""
    parts = []
    for name in SimWorldConfig.model_fields:
        a, b = getattr(mine, name), getattr(theirs, name)
        if a != b:
            parts.append(f"{name}={b} (here {a})")
    return ", ".join(parts)
