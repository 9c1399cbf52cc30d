"""Which open order stands in for which intent: the pairing under reconciliation, on the grid.

:func:`kasmm.core.reconcile.reconcile` keeps an open order for a desired intent of its side when
the order is usable (young enough, not crossing the desired quotes), within the price tolerance
and the size band; which order keeps which intent is a maximum bipartite matching per side
(:func:`maximum_matching`, Kuhn's augmenting paths), closest price first.

This module holds that matching and its integer form: for a side whose intents and orders all
carry their ticks and lots on one grid (:func:`all_on_grid`), the price rule and the size band
are exact integer comparisons (:func:`candidates_on_grid`), and a round in which every intent's
closest order is its own builds no candidate lists at all (:func:`closest_on_grid`). The
Decimal candidates (``reconcile._candidates``) stay the definition; ``tests/unit/
test_core_fast_paths.py`` holds these to it.
"""

from __future__ import annotations

from decimal import Decimal

from kasmm.core.grid import Grid
from kasmm.core.params import RefreshParams
from kasmm.core.rules import to_decimal
from kasmm.core.types import OpenOrder, OrderIntent, Side

__all__ = [
    "all_on_grid",
    "augmenting_match",
    "candidates_on_grid",
    "closest_on_grid",
    "maximum_matching",
    "tolerance_of",
    "tolerance_ratio",
]


def all_on_grid(intents: tuple[OrderIntent, ...], orders: list[OpenOrder], grid: Grid) -> bool:
    """Every intent and order of a side carries its ticks and lots on ``grid``."""
    for intent in intents:
        if intent.ticks < 0 or intent.lots < 0:
            return False
    for o in orders:  # noqa: SIM110 - a loop, not all(<generator>): compiled, no closure
        if o.grid is not grid or o.ticks < 0 or o.lots < 0:
            return False
    return True


def candidates_on_grid(
    side: Side,
    intents: tuple[OrderIntent, ...],
    orders: list[OpenOrder],
    usable: list[int],
    tolerance: tuple[int, int],
) -> list[list[int]]:
    """:func:`kasmm.core.reconcile._candidates` in integers, for intents and orders on one
    grid: the same lists (``usable``: ``reconcile._usable`` of the orders, ``on_grid``).

    With prices ``ticks * tick`` the tick cancels out of the price rule, ``|d| * BPS >
    tolerance * price``, which with ``tolerance = num / den`` (exact: ``tolerance_bps``' decimal
    form) is ``|d_ticks| * BPS * den > num * ticks``; the size band, ``size / 2 <= remaining
    <= 3 * size / 2``, is ``lots <= 2 * remaining_lots <= 3 * lots``. Distances in ticks sort as
    the Decimal distances do. Each list is kept sorted as it grows (by distance, then client id,
    then position: ``_candidates``' tuple order) instead of sorting tuples: most hold one
    order.
    """
    if not intents or not orders:
        return []
    num, den = tolerance
    scale = 10_000 * den
    candidates: list[list[int]] = []
    for intent in intents:
        found: list[int] = []
        if intent.side is not side:
            candidates.append(found)
            continue
        ticks, lots = intent.ticks, intent.lots
        limit = num * ticks
        distances: list[int] = []
        for j in usable:
            o = orders[j]
            distance = _distance(o, ticks, lots, scale, limit)
            if distance < 0:
                continue
            at = len(found)  # after every candidate that sorts before or with it
            while at > 0 and (
                distances[at - 1] > distance
                or (distances[at - 1] == distance and orders[found[at - 1]].client_id > o.client_id)
            ):
                at -= 1
            found.insert(at, j)
            distances.insert(at, distance)
        candidates.append(found)
    return candidates


def _distance(order: OpenOrder, ticks: int, lots: int, scale: int, limit: int) -> int:
    """The order's distance in ticks from an intent of ``ticks`` and ``lots`` when it may stand
    in for it (within the price tolerance, ``distance * scale <= limit``, and the size band),
    else -1."""
    distance = order.ticks - ticks
    if distance < 0:
        distance = -distance
    if distance * scale > limit:
        return -1
    twice = 2 * order.lots
    if twice < lots or twice > 3 * lots:
        return -1
    return distance


def closest_on_grid(
    side: Side,
    intents: tuple[OrderIntent, ...],
    orders: list[OpenOrder],
    usable: list[int],
    tolerance: tuple[int, int],
) -> list[int] | None:
    """:func:`maximum_matching` of :func:`candidates_on_grid` without the lists, when it is
    trivial: each intent's closest candidate (the first of its list; -1: none), or ``None``
    when two intents share their closest (then the augmenting pass decides).

    The same rules and order as :func:`candidates_on_grid` (distance in ticks, then client
    id, then position), keeping only the best so far: most rounds, in which every order stays
    where it is, build no list per intent.
    """
    num, den = tolerance
    scale = 10_000 * den
    closest: list[int] = []
    for intent in intents:
        best = best_distance = -1
        if intent.side is side:
            ticks, lots = intent.ticks, intent.lots
            limit = num * ticks
            for j in usable:
                o = orders[j]
                distance = _distance(o, ticks, lots, scale, limit)
                if distance < 0:
                    continue
                if (
                    best < 0
                    or distance < best_distance
                    or (distance == best_distance and o.client_id < orders[best].client_id)
                ):
                    best, best_distance = j, distance
        if best >= 0:
            for other in closest:
                if other == best:
                    return None
        closest.append(best)
    return closest


def maximum_matching(candidates: list[list[int]]) -> list[int]:
    """Maximum matching: each intent's order index, -1 for none (Kuhn's augmenting paths;
    tiny graphs), over each intent's candidate orders (closest first)."""
    found = [c for c in candidates if c]
    if len({c[0] for c in found}) == len(found):
        # Every intent's closest order is its own: the augmenting pass would give each exactly
        # that (and nothing to an intent without candidates).
        return [c[0] if c else -1 for c in candidates]
    return augmenting_match(candidates)


def augmenting_match(candidates: list[list[int]]) -> list[int]:
    """:func:`maximum_matching` by augmenting paths, intent by intent."""
    owner: dict[int, int] = {}  # order index -> intent index
    for i, mine in enumerate(candidates):
        if mine and mine[0] not in owner:
            owner[mine[0]] = i  # the augmenting step's first move: its closest order is free
        else:
            augment(i, candidates, owner, set())
    matched = [-1] * len(candidates)
    for j, i in owner.items():
        matched[i] = j
    return matched


def augment(i: int, candidates: list[list[int]], owner: dict[int, int], seen: set[int]) -> bool:
    """Give intent ``i`` an order, moving owners along an augmenting path (Kuhn's step; a
    function, not a closure: compiled, a closure's environment is built on every call)."""
    for j in candidates[i]:
        if j in seen:
            continue
        seen.add(j)
        if j not in owner or augment(owner[j], candidates, owner, seen):
            owner[j] = i
            return True
    return False


def tolerance_ratio(params: RefreshParams) -> tuple[int, int]:
    """``params.tolerance_bps``' Decimal as an exact fraction ``(num, den)``, den a power of 10,
    derived once per params object."""
    ratio = params._tolerance_ratio
    if ratio is None:
        _, digits, exponent = tolerance_of(params).as_tuple()
        num = int("".join(map(str, digits)) or "0")
        assert isinstance(exponent, int)  # finite: tolerance_of refuses NaN and infinities
        ratio = (num * 10**exponent, 1) if exponent >= 0 else (num, 10**-exponent)
        object.__setattr__(params, "_tolerance_ratio", ratio)
    return ratio


def tolerance_of(params: RefreshParams) -> Decimal:
    """``params.tolerance_bps`` as a Decimal, parsed once per params object."""
    tolerance = params._tolerance
    if tolerance is None:
        tolerance = to_decimal(params.tolerance_bps)  # raises on NaN/inf, every time
        object.__setattr__(params, "_tolerance", tolerance)
    return tolerance
