"""Where a profile trades: the ``venue:`` block (sim, ccxt or paper), one model per type.

``VenueConfig`` picks one by ``type``. Credentials are ``${VAR}`` references only
(:data:`~kasmm.config.fields.SecretRef`); the simulated market a sim venue runs is in
:mod:`kasmm.config.sim_markets`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from kasmm.config.fields import (
    ExchangeName,
    NonNegativeDecimal,
    NonNegativeFloat,
    PositiveDecimal,
    PositiveFloat,
    ProfileName,
    SecretRef,
    StrictModel,
)
from kasmm.config.sim_markets import RandomWalkMarket, SimMarket

_MAKER_DESCRIPTION = (
    "Fee on the bot's resting (maker) orders when filled, in bps of notional; negative is a "
    "rebate. A spread_bps below twice this loses money on every round trip (a warning)."
)
_TAKER_DESCRIPTION = "Fee on orders that take liquidity, in bps of notional."


class SimFees(StrictModel):
    """Fee rates of the simulated venue, in bps of notional (negative maker = rebate)."""

    maker_bps: Annotated[float, Field(ge=-100, le=1000, allow_inf_nan=False)] = Field(
        0.0, description=_MAKER_DESCRIPTION
    )
    taker_bps: Annotated[float, Field(ge=0, le=1000, allow_inf_nan=False)] = Field(
        5.0, description=_TAKER_DESCRIPTION
    )


class SimVenueConfig(StrictModel):
    """The built-in simulated exchange: no keys, no network."""

    type: Literal["sim"] = Field(description="The built-in simulated exchange.")
    exchange: ExchangeName = Field(
        "sim",
        description="The name this venue's market is known by: the venue in logs and metrics, "
        "and the market key '<exchange>:<symbol>' other profiles reference. Not a live "
        "exchange's name (mexc, gate, kucoin, bingx).",
    )
    market: SimMarket = Field(
        RandomWalkMarket(),
        description="The simulated market: model random_walk (default), as2008 or replay.",
    )
    balances: dict[str, NonNegativeDecimal] = Field(
        {"KAS": Decimal("50000"), "USDT": Decimal("4000")},
        description="Starting balances per asset (on the first start on a ledger only; later "
        "starts resume from the ledger's fills).",
    )
    fees: SimFees = Field(SimFees(), description="Fee rates of simulated fills.")
    tick: PositiveDecimal = Field(Decimal("0.000001"), description="Price tick.")
    lot: PositiveDecimal = Field(Decimal("0.01"), description="Size lot.")
    min_notional: NonNegativeDecimal = Field(Decimal("1"), description="Minimum order notional.")
    seed: Annotated[int, Field(ge=0)] = Field(1, description="Random seed.")
    latency_ms: NonNegativeFloat = Field(0.0, description="Simulated request latency.")


#: A REST base URL override: ``scheme://host[:port]`` plus an optional path.
RestUrl = Annotated[str, StringConstraints(pattern=r"^https?://[^\s/$.?#][^\s]*$")]
#: A websocket URL override: ``ws://`` or ``wss://``, host, optional port and path.
WsUrl = Annotated[str, StringConstraints(pattern=r"^wss?://[^\s/$.?#][^\s]*$")]


class Credentials(StrictModel):
    """API credentials, each as a ``${VAR}`` reference."""

    api_key: SecretRef = Field(description="API key, as a ${VAR} reference.")
    secret: SecretRef = Field(description="API secret, as a ${VAR} reference.")
    password: SecretRef | None = Field(None, description="Passphrase (KuCoin).")


class CcxtVenueConfig(StrictModel):
    """A live exchange through ccxt."""

    type: Literal["ccxt"] = Field(description="A live exchange through ccxt.")
    exchange: str = Field(description="ccxt exchange id: one of mexc, gate, kucoin, bingx.")
    credentials: Credentials = Field(
        description="API key, secret (and KuCoin passphrase) as ${VAR} references."
    )
    sandbox: bool = Field(False, description="Use the exchange's testnet (where ccxt has one).")
    rest_url: RestUrl | None = Field(
        None, description="Override of the spot REST base URL (regional, proxy, emulator)."
    )
    ws_url: WsUrl | None = Field(
        None,
        description="Override of the spot websocket URL (proxy, emulator), used as given: "
        "public and private streams connect to it (MEXC and BingX add their listen key). Not "
        "for KuCoin, whose websocket endpoint comes from the bullet-token answer of its REST "
        "API (rest_url).",
    )
    account: ProfileName | None = Field(
        None, description="Profiles naming the same account share its rate budget."
    )
    timeout_s: PositiveFloat = Field(10.0, description="Per-request timeout.")
    use_websocket: bool = Field(
        True, description="Stream books and fills over websockets (REST polling as fallback)."
    )
    book_poll_s: Annotated[float, Field(ge=0.05, le=60, allow_inf_nan=False)] = Field(
        0.5, description="REST order-book poll interval when websockets are off or down."
    )
    feed_stall_s: Annotated[float, Field(ge=1, le=600, allow_inf_nan=False)] = Field(
        5.0,
        description="A websocket book unchanged this long is checked against a REST snapshot: "
        "if the market moved meanwhile, the feed is stalled and is resubscribed (REST polling "
        "serves meanwhile); if not, the market is quiet and the feed stays.",
    )
    dead_man_switch_s: Annotated[float, Field(ge=10, le=120, allow_inf_nan=False)] | None = Field(
        60.0,
        description=(
            "Exchange-side cancel-all timer refreshed while the bot runs (Gate, KuCoin, BingX); "
            "null disables it. It cancels every order on the pair (BingX: the account), "
            "including orders that are not the bot's."
        ),
    )


class PaperFees(StrictModel):
    """Fee rates charged on simulated fills, in bps of notional (negative maker = rebate)."""

    maker_bps: Annotated[float, Field(ge=-100, le=1000, allow_inf_nan=False)] = Field(
        description=_MAKER_DESCRIPTION
    )
    taker_bps: Annotated[float, Field(ge=0, le=1000, allow_inf_nan=False)] = Field(
        description=_TAKER_DESCRIPTION
    )


class PaperVenueConfig(StrictModel):
    """Paper trading: a real exchange's live public market data, fills simulated locally.

    No keys and no orders leave the machine. Resting orders fill when the live market trades at
    or through their price (see ``queue_position``); balances are virtual.
    """

    type: Literal["paper"] = Field(
        description="Paper trading: live public market data, fills simulated locally."
    )
    exchange: str = Field(
        description="ccxt exchange id whose public market data is used: mexc, gate, kucoin, bingx."
    )
    balances: dict[str, NonNegativeDecimal] = Field(
        {"KAS": Decimal("50000"), "USDT": Decimal("4000")},
        description="Virtual starting balances per asset.",
    )
    fees: PaperFees | None = Field(
        None,
        description="Fee rates of simulated fills. Default: the exchange's published spot fees "
        "for the market as ccxt reports them, or 10 bps maker and taker when unknown.",
    )
    rest_url: RestUrl | None = Field(
        None,
        description="Override of the REST base URL (proxy, emulator). Websockets keep the "
        "exchange's own URLs: set use_websocket: false to send all traffic to rest_url.",
    )
    poll_interval_s: Annotated[float, Field(ge=0.2, le=60, allow_inf_nan=False)] = Field(
        1.0,
        description="Period of REST polling (order book and recent trades) when websockets "
        "are off or failing.",
    )
    use_websocket: bool = Field(
        True, description="Stream book and trades over websockets (falls back to REST polling)."
    )
    queue_position: Literal["back", "front"] = Field(
        "back",
        description="Where a new order joins the queue at its price: 'back' fills only after the "
        "size displayed at that price when it was placed has traded (conservative); 'front' fills "
        "on the first trade at its price (optimistic).",
    )
    timeout_s: PositiveFloat = Field(10.0, description="Per-request timeout of market data calls.")


VenueConfig = Annotated[
    SimVenueConfig | CcxtVenueConfig | PaperVenueConfig, Field(discriminator="type")
]
