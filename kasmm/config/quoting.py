"""How a profile quotes: modes, schedule, strategy, inventory target and skew, refresh.

These blocks decide the quotes a profile wants; what stops it (kill switches) is in
:mod:`kasmm.config.kill_switch`, and where the mid comes from (``reference:``) in
:mod:`kasmm.config.cross_venue`.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    PlainValidator,
    SerializerFunctionWrapHandler,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    model_serializer,
    model_validator,
)
from pydantic_core import PydanticCustomError

from kasmm.config.fields import (
    Bps,
    ModeName,
    NonNegativeDecimal,
    NonNegativeFloat,
    PositiveDecimal,
    PositiveFloat,
    Share,
    StrictModel,
)

#: The largest percentage step: each level at most twice the size of the one before.
MAX_SIZE_STEP_PCT = Decimal(100)
_PERCENT_STEP = re.compile(r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*%\s*$")
#: The percentage form for editors (the JSON Schema): non-negative only.
PERCENT_STEP_PATTERN = r"^\s*(\d+(\.\d*)?|\.\d+)\s*%\s*$"
_NEGATIVE_STEP = (
    "must be at least 0: sizes only grow with depth (a negative step, which Hummingbot's "
    "order_level_amount allows, has no equivalent)"
)
_SIZE_STEP_FORMS = "an amount in size_unit (e.g. 250) or a percentage (e.g. '10%')"


def parse_size_step(value: object) -> Decimal | str:
    """``level_size_step`` as written -> an amount (``Decimal``) or a normalised ``"N%"``.

    One value, one message: a union of a decimal and a pattern would report two errors for one
    typo. ``" 10 % "`` and ``"10.0%"`` become ``"10%"`` and ``"0%"`` becomes ``0``, so that
    spellings of the same step hash alike and a reload does not restart the bot for them.
    Sizes only grow with depth: a negative step (Hummingbot's ``order_level_amount`` may be
    negative) is refused, and a percentage is at most 100 (each level at most doubles).
    """
    if isinstance(value, str) and "%" in value:
        match = _PERCENT_STEP.fullmatch(value)
        if match is None:
            raise PydanticCustomError("size_step", "expected {forms}", {"forms": _SIZE_STEP_FORMS})
        pct = Decimal(match.group(1))
        if pct < 0:
            raise PydanticCustomError("size_step", _NEGATIVE_STEP)
        if pct > MAX_SIZE_STEP_PCT:
            raise PydanticCustomError(
                "size_step",
                "a percentage step is at most {most}% (each level at most twice the one "
                "before); got {pct}%",
                {"most": str(MAX_SIZE_STEP_PCT), "pct": f"{pct.normalize():f}"},
            )
        return Decimal(0) if pct == 0 else f"{pct.normalize():f}%"
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise PydanticCustomError("size_step", "expected {forms}", {"forms": _SIZE_STEP_FORMS})
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        raise PydanticCustomError(
            "size_step", "expected {forms}", {"forms": _SIZE_STEP_FORMS}
        ) from None
    if not amount.is_finite():
        raise PydanticCustomError("size_step", "Input should be a finite number")
    if amount < 0:
        raise PydanticCustomError("size_step", _NEGATIVE_STEP)
    return amount


#: ``level_size_step``: an amount (added per level) or a percentage ``"N%"`` (compounded).
SizeStep = Annotated[
    Decimal | str,
    PlainValidator(parse_size_step),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0},
                {"type": "string", "pattern": PERCENT_STEP_PATTERN},
            ]
        }
    ),
]


def _spread_either_way(schema: dict[str, Any]) -> None:
    """In the JSON Schema, a mode needs ``spread_bps`` or both per-side spreads (an editor
    must not ask for ``spread_bps`` in a mode that gives the sides)."""
    required = schema.get("required")
    if isinstance(required, list) and "spread_bps" in required:
        required.remove("spread_bps")
    schema["anyOf"] = [
        {"required": ["spread_bps"]},
        {"required": ["bid_spread_bps", "ask_spread_bps"]},
    ]


#: The widest total spread a mode may quote, in bps (100 %).
MAX_SPREAD_BPS = 10_000.0
_SIDE_BPS: TypeAdapter[float] = TypeAdapter(Bps)


class ModeConfig(StrictModel):
    """One quoting mode: how wide, how big, how many levels.

    The spread is either total (``spread_bps``, split evenly around the centre) or per side
    (``bid_spread_bps`` and ``ask_spread_bps``, Hummingbot's ``bid_spread``/``ask_spread``):
    ``spread_bps`` is then their sum.
    """

    model_config = ConfigDict(json_schema_extra=_spread_either_way)

    spread_bps: Bps = Field(
        description="Total distance between bid and ask at level 0, in bps (or give "
        "bid_spread_bps and ask_spread_bps instead)."
    )
    bid_spread_bps: Bps | None = Field(
        None,
        description="Distance from the centre down to the best bid, in bps (with ask_spread_bps, "
        "instead of spread_bps, which becomes their sum; fixed_spread only). Hummingbot's "
        "bid_spread, which is in percent: 0.2 there is 20 here.",
    )
    ask_spread_bps: Bps | None = Field(
        None,
        description="Distance from the centre up to the best ask, in bps (with bid_spread_bps, "
        "instead of spread_bps, which becomes their sum; fixed_spread only). Hummingbot's "
        "ask_spread, which is in percent: 0.2 there is 20 here.",
    )
    size: PositiveDecimal = Field(description="Order size of level 0.")
    size_unit: Literal["base", "quote"] = Field(
        "base", description="Whether ``size`` is in base units or quote notional."
    )
    levels: Annotated[int, Field(ge=1, le=20)] = Field(1, description="Orders per side.")
    level_step_bps: NonNegativeFloat = Field(
        5.0, description="Extra distance between consecutive levels, in bps."
    )
    level_size_step: SizeStep = Field(
        Decimal(0),
        description="How much larger each level is than the one before: an amount in size_unit "
        "(added per level, Hummingbot's order_level_amount; quote notional with size_unit: "
        "quote) or a percentage such as '10%' (compounded per level, at most '100%'). Each "
        "level is then floored to the lot. 0: every level has `size`.",
        json_schema_extra={"default": 0},
    )

    @model_validator(mode="before")
    @classmethod
    def _side_spreads(cls, data: Any) -> Any:
        """``bid_spread_bps`` + ``ask_spread_bps`` stand for ``spread_bps`` (their sum)."""
        if not isinstance(data, dict):
            return data
        bid, ask = data.get("bid_spread_bps"), data.get("ask_spread_bps")
        if bid is None and ask is None:
            return data
        if bid is None or ask is None:
            missing = "ask_spread_bps" if bid is not None else "bid_spread_bps"
            raise PydanticCustomError(
                "side_spreads",
                "bid_spread_bps and ask_spread_bps go together: {missing} is missing",
                {"missing": missing},
            )
        if data.get("spread_bps") is not None:
            raise PydanticCustomError(
                "side_spreads",
                "give spread_bps or bid_spread_bps and ask_spread_bps, not both "
                "(spread_bps is their sum)",
            )
        try:
            sides = (_SIDE_BPS.validate_python(bid), _SIDE_BPS.validate_python(ask))
        except ValidationError:
            # The side fields' own validation refuses the mode and names the bad value; any
            # valid total stands in meanwhile so that no second error blames spread_bps.
            return {**data, "spread_bps": 1.0}
        # Summed exactly: 0.1 + 0.2 is 0.3 bps, not 0.30000000000000004.
        total = float(sum((Decimal(repr(x)) for x in sides), Decimal(0)))
        if total > MAX_SPREAD_BPS:
            raise PydanticCustomError(
                "side_spreads",
                "bid_spread_bps + ask_spread_bps is {total} bps; the total spread is at most "
                "{most} bps",
                {"total": f"{total:g}", "most": f"{MAX_SPREAD_BPS:g}"},
            )
        return {**data, "spread_bps": total}

    @model_serializer(mode="wrap")
    def _as_written(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """With per-side spreads the derived ``spread_bps`` is left out, so that a dumped mode
        validates again (``--set``/``--sweep`` overrides, tests' profile builders) and a
        changed side re-derives the total instead of contradicting the old one."""
        data: dict[str, Any] = handler(self)
        if self.bid_spread_bps is not None:
            data.pop("spread_bps", None)
        return data

    @property
    def bid_fraction(self) -> float:
        """The bid's share of the total spread (0.5 unless per-side spreads say otherwise)."""
        if self.bid_spread_bps is None or self.ask_spread_bps is None:
            return 0.5
        return self.bid_spread_bps / self.spread_bps  # spread_bps: their exact sum

    @property
    def size_step(self) -> tuple[Decimal, bool]:
        """``level_size_step`` as ``(amount, is_percentage)``."""
        step = self.level_size_step
        if isinstance(step, str):  # normalised by parse_size_step: "10%", "2.5%"
            return Decimal(step.removesuffix("%")), True
        return step, False


class Modes(StrictModel):
    """The two modes a profile switches between."""

    aggressive: ModeConfig | None = Field(
        None,
        description="Tight and shallow quoting, for volume. Optional when neither `mode` nor "
        "a schedule entry selects it.",
    )
    passive: ModeConfig = Field(
        description="Wide and deep quoting, the calm default; its spread_bps must be at least "
        "the aggressive one's."
    )


class ScheduleEntry(StrictModel):
    """Switch to ``mode`` whenever the cron expression fires."""

    cron: str = Field(description="Five-field crontab expression, e.g. '0 8 * * 1-5'.")
    timezone: str = Field("UTC", description="IANA time zone of the cron expression.")
    mode: ModeName = Field(description="The mode to switch to when the expression fires.")


class VolatilityConfig(StrictModel):
    """Volatility-adaptive spread: EWMA realized volatility widens the spread up to a cap."""

    halflife_s: PositiveFloat = Field(60.0, description="EWMA half-life of the estimator.")
    horizon_s: PositiveFloat = Field(
        10.0, description="Horizon over which volatility is priced into the spread."
    )
    multiplier: NonNegativeFloat = Field(
        1.0, description="Spread bps added per bps of volatility over the horizon."
    )
    cap_bps: Bps = Field(500.0, description="Maximum spread; the mode's spread is the floor.")


_VOLATILITY_DESCRIPTION = (
    "Optional volatility-adaptive widening of the spread (null: off): EWMA realized volatility "
    "adds spread up to cap_bps."
)


class FixedSpreadStrategy(StrictModel):
    """Spread around the mid with inventory skew (the classic market maker)."""

    type: Literal["fixed_spread"] = Field(
        description="Quote the mode's spread around the mid, skewed against inventory."
    )
    volatility: VolatilityConfig | None = Field(None, description=_VOLATILITY_DESCRIPTION)


class SessionEndHorizon(StrictModel):
    """T is a fixed daily session end; T-t counts down to it (in a backtest: the run's end)."""

    type: Literal["session_end"] = Field(description="T is a daily session end time.")
    end: Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")] = Field(
        "00:00", description="Session end as 24-hour HH:MM in `timezone`."
    )
    timezone: str = Field("UTC", description="IANA time zone of `end`.")


class RollingHorizon(StrictModel):
    """T-t is a constant window, for continuous trading."""

    type: Literal["rolling"] = Field(description="T-t is a constant window.")
    window_s: PositiveFloat = Field(60.0, description="T-t in seconds.")


Horizon = Annotated[SessionEndHorizon | RollingHorizon, Field(discriminator="type")]


class AvellanedaStoikovStrategy(StrictModel):
    """Avellaneda–Stoikov (2008) reservation price and optimal spread, in the paper's units."""

    type: Literal["avellaneda_stoikov"] = Field(
        description="Avellaneda-Stoikov reservation price and optimal spread (the mode's "
        "spread_bps is not used; min_spread_bps bounds the spread)."
    )
    gamma: PositiveFloat = Field(description="Risk aversion.")
    kappa: PositiveFloat = Field(description="Order-book liquidity, per price unit.")
    sigma: PositiveFloat | None = Field(
        None, description="Volatility in price units per sqrt second; estimated online if unset."
    )
    sigma_halflife_s: PositiveFloat = Field(60.0, description="EWMA half-life of the estimator.")
    horizon: Horizon = Field(
        RollingHorizon(type="rolling"),
        description="T-t of the model: rolling (a constant window) or session_end.",
    )
    min_spread_bps: NonNegativeFloat = Field(
        0.0, description="Lower bound on the total spread (0 = the model's spread as is)."
    )
    volatility: VolatilityConfig | None = Field(None, description=_VOLATILITY_DESCRIPTION)


Strategy = Annotated[FixedSpreadStrategy | AvellanedaStoikovStrategy, Field(discriminator="type")]


class RebalanceConfig(StrictModel):
    """An order that brings inventory back into its band, beyond what skew does."""

    order: Literal["post_only", "ioc"] = Field(
        "post_only",
        description="post_only: a maker order at the touch (repriced each min_interval_s until "
        "filled); ioc: an immediate-or-cancel taker order priced at most max_slippage_bps "
        "through the touch.",
    )
    max_size: PositiveDecimal = Field(
        description="Largest rebalance order, in base units. A size below a live market's lot "
        "or minimum notional cannot be checked offline: the venue refuses such an order (a "
        "random-walk sim's rules are in the profile: there it is a warning)."
    )
    max_slippage_bps: Bps = Field(
        20.0, description="ioc: how far through the touch the limit may go, in bps."
    )
    min_interval_s: PositiveFloat = Field(
        60.0, description="At most one rebalance order per this many seconds."
    )


class InventoryConfig(StrictModel):
    """Where inventory should sit and how hard to push it back."""

    target_share: Share | None = Field(
        None, description="Target base value as a share of portfolio value (default 0.5)."
    )
    target_base: NonNegativeDecimal | None = Field(
        None, description="Target as an absolute base amount (instead of target_share)."
    )
    min_share: Share = Field(0.1, description="Below this only the buy side is quoted.")
    max_share: Share = Field(0.9, description="Above this only the sell side is quoted.")
    skew_strength: Annotated[float, Field(ge=0, le=10, allow_inf_nan=False)] = Field(
        1.0,
        description="Shift of both quotes, in half-spreads, at full deviation (share at min/max).",
    )
    min_base: NonNegativeDecimal | None = Field(None, description="Hard floor on base held.")
    max_base: PositiveDecimal | None = Field(None, description="Hard ceiling on base held.")
    rebalance: RebalanceConfig | None = Field(
        None,
        description="Rebalance by order: when the base share leaves [min_share, max_share], "
        "one bounded order toward the target (post-only, or IOC with a slippage cap), at most "
        "once per min_interval_s; off when absent (skew alone).",
    )


class RefreshConfig(StrictModel):
    """When resting orders are replaced."""

    tolerance_bps: NonNegativeFloat = Field(
        5.0, description="Keep an order whose price is within this of the desired price."
    )
    max_order_age_s: PositiveFloat = Field(300.0, description="Replace orders older than this.")
    min_requote_interval_s: NonNegativeFloat = Field(
        0.25, description="Minimum time between two rounds of order actions."
    )
    fallback_interval_s: PositiveFloat = Field(
        2.0, description="Re-evaluate at least this often when the market data stream is quiet."
    )
    replace_mode: Literal["cancel_first", "place_first"] = Field(
        "cancel_first",
        description=(
            "How a requote round replaces orders. cancel_first: cancels go out together with "
            "every placement the free balance already covers; a placement that needs what a "
            "cancel frees waits for that cancel. place_first: new orders first (the book is "
            "never empty while the balance allows), then the cancels, then what had to wait."
        ),
    )
