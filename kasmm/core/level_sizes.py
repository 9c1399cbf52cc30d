"""Level size growth (``level_size_step``): deeper levels rest more size.

Level 0 rests the mode's ``size``; level ``i`` rests level ``i - 1``'s size plus the step (in
the size's unit), or times ``1 + step / 100`` with ``level_size_step_pct`` (compounded, as
Hummingbot's ``order_level_amount`` adds and a percentage compounds). Each level's size is
floored to the lot on its own, where the decision turns it into lots.
"""

from __future__ import annotations

from decimal import Decimal

from kasmm.core.grid import Grid

_HUNDRED = Decimal(100)


def level_sizes(size: Decimal, step: Decimal, pct: bool, levels: int) -> tuple[Decimal, ...]:
    """Each level's size (best first), in the unit of ``size``, unrounded."""
    out: list[Decimal] = []
    factor = 1 + step / _HUNDRED if pct else None
    s = size
    for i in range(levels):
        if i > 0:
            s = s * factor if factor is not None else s + step
        out.append(s)
    return tuple(out)


def usable_step(step: Decimal) -> bool:
    """A step the stage applies: finite and not negative (sizes only grow)."""
    return step.is_finite() and step >= 0


def grows(step: Decimal) -> bool:
    """Whether the levels' sizes differ at all (a zero step: every level rests ``size``)."""
    return step != 0


def lots_of(sizes: tuple[Decimal, ...], grid: Grid, mid: Decimal | None = None) -> tuple[int, ...]:
    """``sizes`` (in base, or in quote divided by ``mid`` when given) in whole lots."""
    if mid is None:
        return tuple(grid.floor_lots(s) for s in sizes)
    return tuple(grid.floor_lots(s / mid) for s in sizes)
