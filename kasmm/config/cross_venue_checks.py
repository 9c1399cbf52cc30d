"""Checks of the blocks that name things outside the profile: ``reference:`` and ``hedge:``.

:func:`check_reference` and :func:`check_hedge` are per-profile cross-field checks (run with the
others of :mod:`kasmm.config.checks`); :func:`hedge_problems` checks across profiles, like
:func:`~kasmm.config.world_checks.world_conflicts`: a hedge target must be another profile of the
same load. They mirror :mod:`kasmm.config.cross_venue`, where the two blocks are defined.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from kasmm.config.locate import FieldPath
from kasmm.config.schema import Profile

__all__ = ["check_hedge", "check_reference", "hedge_problems"]


def check_hedge(p: Profile) -> list[tuple[FieldPath, str]]:
    """A profile does not hedge onto itself, and what it carries below ``min_base`` cannot
    trip its own residual rule (the other hedge checks need every profile:
    :func:`hedge_problems`)."""
    hedge = p.hedge
    if hedge is None:
        return []
    out: list[tuple[FieldPath, str]] = []
    if hedge.profile == p.name:
        out.append((("hedge", "profile"), "a profile cannot hedge onto itself; name another one"))
    limit = hedge.max_unhedged_base.base
    if hedge.min_base >= limit:
        out.append(
            (
                ("hedge", "min_base"),
                f"min_base ({hedge.min_base}) must be below max_unhedged_base.base ({limit}): "
                "a net carried below min_base would trip the residual rule for good",
            )
        )
    return out


def check_reference(p: Profile) -> list[tuple[FieldPath, str]]:
    """Each reference source prices the profile's base in its quote asset: the same base, and
    the same quote or a conversion pair between the two quotes; never the profile's own market;
    no source twice."""
    cfg = p.reference
    if cfg is None:
        return []
    from kasmm.config.to_core import market_key, profile_market_key

    out: list[tuple[FieldPath, str]] = []
    own = profile_market_key(p)
    seen: set[str] = set()
    for i, source in enumerate(cfg.sources):
        path: FieldPath = ("reference", "sources", i)
        key = market_key(source.exchange, source.symbol)
        base, quote = source.symbol.split("/")
        if key == own:
            out.append((path, f"{key} is this profile's own market: leave reference out instead"))
        if key in seen:
            out.append((path, f"{key} is listed twice"))
        seen.add(key)
        if base != p.base:
            out.append(
                (
                    (*path, "symbol"),
                    f"{source.symbol} prices {base}, but this profile trades {p.base}",
                )
            )
        via = source.via
        if via is None:
            if quote != p.quote:
                out.append(
                    (
                        (*path, "symbol"),
                        f"{source.symbol} is quoted in {quote}, this profile in {p.quote}: add "
                        f"`via` with a {quote}/{p.quote} pair",
                    )
                )
            continue
        pair = set(via.symbol.split("/"))
        if quote == p.quote:
            out.append(((*path, "via"), f"{source.symbol} is already quoted in {p.quote}"))
        elif pair != {quote, p.quote}:
            out.append(
                (
                    (*path, "via", "symbol"),
                    f"{via.symbol} does not convert {quote} into {p.quote} (want "
                    f"{quote}/{p.quote} or {p.quote}/{quote})",
                )
            )
    return out


def hedge_problems(
    profiles: Sequence[Profile], invalid: Collection[str] = ()
) -> list[tuple[str, str]]:
    """Profiles whose ``hedge.profile`` cannot take their hedges.

    The target must be another profile of the same load (``invalid``: names declared but
    refused, reported as such rather than as unknown), with the same base asset, enabled, and
    without a ``hedge`` of its own: a hedge fill that was hedged again would chain exposures
    across venues (and A -> B -> A would hedge forever).

    :return: ``(profile name, message)`` in the order of ``profiles``, for enabled hedging
        profiles only (a disabled one sends nothing).
    """
    by_name = {p.name: p for p in profiles}
    out: list[tuple[str, str]] = []
    for p in profiles:
        hedge = p.hedge
        if hedge is None or not p.enabled or hedge.profile == p.name:
            continue  # self: check_hedge reports it
        target = by_name.get(hedge.profile)
        name = repr(hedge.profile)
        if target is None:
            why = "has errors (see its file)" if hedge.profile in invalid else "is not defined"
            out.append((p.name, f"hedge profile {name} {why}"))
        elif target.base != p.base:
            out.append(
                (
                    p.name,
                    f"hedge profile {name} trades {target.symbol}, whose base asset is not "
                    f"{p.base} (this profile's {p.symbol}): a hedge must offset the same asset",
                )
            )
        elif not target.enabled:
            out.append((p.name, f"hedge profile {name} is disabled (enabled: false)"))
        elif target.hedge is not None:
            cycle = target.hedge.profile == p.name
            out.append(
                (
                    p.name,
                    f"hedge profile {name} hedges onto {target.hedge.profile!r} itself"
                    + (" (a cycle)" if cycle else "")
                    + ": a hedge target cannot hedge (no chains or cycles)",
                )
            )
    return out
