"""``_settlement.yaml``: per exchange account, where its surplus KAS goes and within what limits.

Its own file rather than a block of ``_accounts.yaml``: an account there is a rate budget that
every trading process reads (and must declare ``capacity``/``refill_per_s``), while a settlement
plan names a destination and a *withdrawal* credential, which a trading-only host should never
be given. Kept apart, the file can be deployed only where settlement runs, and a supervisor can
keep its last good version on a bad edit (as with ``_notify.yaml``) without touching trading.

Per account (named as profiles name it in ``venue.account``): the Kaspa ``network``, the
``destination`` (an ``address``, or a watch-only ``xpub`` a fresh receive address is derived
from for each sweep; private keys are refused outright), the ``withdrawal_credentials`` as
``${VAR}`` references (never the trading key: :func:`settlement_members` refuses the trading
profiles' references), the node's wRPC ``node_url``, the ``confirmations`` an arrival needs, an
optional ``schedule`` (cron and time zone; absent: only ``kasmm settle`` moves money), and per
asset the band and the limits (:class:`AssetBandConfig`).

Three passes, as elsewhere: the structure (pydantic, frozen, unknown keys refused), the checks
within the file (:func:`settlement_checks`, which takes the destination validator as an
argument: the SDK's lives in ``kasmm.settle.address``), and the membership pass against the
loaded profiles (:func:`settlement_members`). :mod:`kasmm.config.settlement_load` turns every
finding into a ``file:line:col`` issue.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator
from pydantic_core import PydanticCustomError

from kasmm.config.checks import cron_error, valid_timezone
from kasmm.config.locate import FieldPath
from kasmm.config.schema import (
    CcxtVenueConfig,
    Credentials,
    NonNegativeDecimal,
    PositiveDecimal,
    Profile,
    ProfileName,
    StrictModel,
)
from kasmm.core.settlement import AssetBand

__all__ = [
    "NATIVE_ASSET",
    "SETTLEMENT_FILES",
    "AccountSettlement",
    "AssetBandConfig",
    "Destination",
    "DestinationCheck",
    "Network",
    "SettleSchedule",
    "SettlementFile",
    "prefix_check",
    "settlement_checks",
    "settlement_members",
    "to_band",
]

#: The file names read (the first one found wins, like ``_notify.yaml``).
SETTLEMENT_FILES = ("_settlement.yaml", "_settlement.yml")
#: The only asset a Kaspa address receives: every other asset is banded for top-ups only.
NATIVE_ASSET = "KAS"

Network = Literal["mainnet", "testnet"]
DestinationKind = Literal["address", "xpub"]
#: ``(kind, value, network) -> why it is refused, or None``. The SDK-backed validator
#: (``kasmm.settle.address``) is passed in by the caller; :func:`prefix_check` is the fallback.
DestinationCheck = Callable[[DestinationKind, str, Network], str | None]

AssetName = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{1,20}$")]

#: Extended *private* key prefixes (BIP32 and Kaspa's own): never on the trading host.
_PRIVATE_PREFIXES = ("xprv", "tprv", "kprv", "ktrv")
_ADDRESS_PREFIX: dict[Network, str] = {"mainnet": "kaspa:", "testnet": "kaspatest:"}
_XPUB_PREFIXES: dict[Network, tuple[str, ...]] = {
    "mainnet": ("kpub", "xpub"),
    "testnet": ("ktub", "tpub"),
}


def _no_private_key(value: str) -> str:
    """Refuse an extended private key without repeating it (the message names the kind)."""
    if value.strip().lower().startswith(_PRIVATE_PREFIXES):
        raise PydanticCustomError(
            "private_key",
            "this is an extended private key; settlement takes an address or a watch-only "
            "xpub, and a private key must never be on the trading host",
        )
    return value


class Destination(StrictModel):
    """Where sweeps go: one fixed ``address``, or an ``xpub`` to derive a fresh one from."""

    address: Annotated[str, StringConstraints(min_length=1, max_length=120)] | None = Field(
        None, description="A Kaspa address (kaspa:... on mainnet, kaspatest:... on testnet)."
    )
    xpub: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = Field(
        None,
        description="A watch-only extended public key (kpub/xpub; ktub/tpub on testnet): each "
        "sweep goes to a fresh receive address derived from it.",
    )

    @field_validator("address", "xpub")
    @classmethod
    def _public_only(cls, value: str | None) -> str | None:
        return None if value is None else _no_private_key(value)


class SettleSchedule(StrictModel):
    """When the supervisor settles on its own (off unless set)."""

    cron: str = Field(description="Five-field crontab expression, e.g. '0 3 * * *'.")
    timezone: str = Field(
        "UTC", description="IANA time zone of the cron expression and of the day limits."
    )


class AssetBandConfig(StrictModel):
    """The band and limits of one asset on the exchange."""

    keep_at_least: NonNegativeDecimal = Field(
        Decimal(0),
        description="Below max(this, what the profiles need) a top-up is printed.",
    )
    keep_at_most: NonNegativeDecimal | None = Field(
        None, description="Above max(this, the floor) the excess is swept (absent: never)."
    )
    min_sweep: NonNegativeDecimal = Field(
        Decimal(0), description="The smallest sweep worth a withdrawal (KAS only)."
    )
    max_sweep: PositiveDecimal | None = Field(
        None, description="The largest single sweep (KAS only; required with keep_at_most)."
    )
    max_per_day: PositiveDecimal | None = Field(
        None,
        description="The most swept per day in the schedule's time zone (KAS only; required "
        "with keep_at_most).",
    )


class AccountSettlement(StrictModel):
    """Settlement of one exchange account."""

    network: Network = Field(description="The Kaspa network of the destination and the node.")
    destination: Destination
    withdrawal_credentials: Credentials = Field(
        description="A withdrawal-enabled API key, as ${VAR} references; never the trading key."
    )
    node_url: str = Field(description="The Kaspa node's wRPC URL (ws:// or wss://).")
    confirmations: Annotated[int, Field(ge=1, le=100_000)] = Field(
        100, description="Confirmations an arrival needs (100 is ten seconds at 10 blocks/s)."
    )
    schedule: SettleSchedule | None = Field(
        None, description="Scheduled settlement in the supervisor; absent: only kasmm settle."
    )
    assets: dict[AssetName, AssetBandConfig] = Field(
        min_length=1, description="Asset -> its band and limits (KAS, USDT, ...)."
    )

    @field_validator("node_url")
    @classmethod
    def _wrpc_url(cls, value: str) -> str:
        if not value.startswith(("ws://", "wss://")) or len(value) <= len("wss://"):
            raise PydanticCustomError(
                "node_url", "must be a ws:// or wss:// URL (the node's wRPC endpoint)"
            )
        if any(c.isspace() for c in value):
            raise PydanticCustomError("node_url", "must not contain whitespace")
        return value


class SettlementFile(StrictModel):
    """The ``_settlement.yaml`` file: account name -> its settlement."""

    settlement: dict[ProfileName, AccountSettlement] = Field(
        default_factory=dict, description="Account name (venue.account) -> its settlement."
    )


def prefix_check(kind: DestinationKind, value: str, network: Network) -> str | None:
    """The fallback destination check: the network's prefix only (no checksum).

    ``kasmm.settle.address`` replaces it with the SDK's full validation; this one keeps a
    mainnet address out of a testnet plan (and the reverse) wherever the SDK is absent.
    """
    if kind == "address":
        want = _ADDRESS_PREFIX[network]
        if not value.startswith(want):
            return f"a {network} address starts with {want!r}"
        return None
    if not value.startswith(_XPUB_PREFIXES[network]):
        return f"a {network} xpub starts with {' or '.join(_XPUB_PREFIXES[network])}"
    return None


_SWEEP_FIELDS = ("min_sweep", "max_sweep", "max_per_day")


def _asset_checks(
    where: FieldPath, asset: str, band: AssetBandConfig
) -> list[tuple[FieldPath, str]]:
    out: list[tuple[FieldPath, str]] = []
    set_fields = band.model_fields_set
    if band.keep_at_most is not None and band.keep_at_least > band.keep_at_most:
        out.append(((*where, "keep_at_least"), "must not exceed keep_at_most"))
    if asset != NATIVE_ASSET:
        out.extend(
            (
                (*where, name),
                f"only {NATIVE_ASSET} can be sent to a Kaspa address; {asset} is banded for "
                "top-ups only (keep_at_least, keep_at_most)",
            )
            for name in _SWEEP_FIELDS
            if name in set_fields
        )
        return out
    if band.keep_at_most is None:
        out.extend(
            ((*where, name), "has no effect without keep_at_most (nothing is ever swept)")
            for name in _SWEEP_FIELDS
            if name in set_fields
        )
        return out
    for name in ("max_sweep", "max_per_day"):
        if getattr(band, name) is None:
            out.append(((*where, name), "is required with keep_at_most: limits come first"))
    if band.max_sweep is not None and band.min_sweep > band.max_sweep:
        out.append(((*where, "min_sweep"), "must not exceed max_sweep"))
    sweep, day = band.max_sweep, band.max_per_day
    if sweep is not None and day is not None and sweep > day:
        out.append(((*where, "max_sweep"), "must not exceed max_per_day"))
    return out


def settlement_checks(
    cfg: SettlementFile, check_destination: DestinationCheck = prefix_check
) -> list[tuple[FieldPath, str]]:
    """The checks within the file: the destination (one of address or xpub, valid for the
    network), the schedule (cron, time zone) and each asset's band and limits."""
    out: list[tuple[FieldPath, str]] = []
    for name, acct in cfg.settlement.items():
        base: FieldPath = ("settlement", name)
        dest = acct.destination
        pairs: tuple[tuple[DestinationKind, str | None], ...] = (
            ("address", dest.address),
            ("xpub", dest.xpub),
        )
        given = [(kind, value) for kind, value in pairs if value is not None]
        if len(given) != 1:
            out.append(((*base, "destination"), "set exactly one of address or xpub"))
        for kind, value in given:
            problem = check_destination(kind, value, acct.network)
            if problem is not None:
                out.append(((*base, "destination", kind), problem))
        if acct.schedule is not None:
            err = cron_error(acct.schedule.cron)
            if err is not None:
                out.append(((*base, "schedule", "cron"), f"invalid cron expression: {err}"))
            if not valid_timezone(acct.schedule.timezone):
                tz = acct.schedule.timezone[:64]
                out.append(((*base, "schedule", "timezone"), f"unknown time zone {tz!r}"))
        for asset, band in acct.assets.items():
            out.extend(_asset_checks((*base, "assets", asset), asset, band))
    return out


def settlement_members(
    cfg: SettlementFile, profiles: Mapping[str, Profile]
) -> tuple[dict[str, tuple[str, ...]], list[tuple[FieldPath, str]]]:
    """Which profiles each account's settlement serves, and what is wrong with that.

    An account must be named by at least one ccxt profile's ``venue.account``, all of them on
    one exchange; its withdrawal key must be none of theirs (the trading key stays
    trading-only). Disabled profiles are members too (they may be enabled later).

    :return: account -> its profiles' names (sorted), and the problems found.
    """
    members: dict[str, tuple[str, ...]] = {}
    out: list[tuple[FieldPath, str]] = []
    for name, acct in cfg.settlement.items():
        where: FieldPath = ("settlement", name)
        mine = sorted(
            (
                (p.name, p.venue)
                for p in profiles.values()
                if isinstance(p.venue, CcxtVenueConfig) and p.venue.account == name
            ),
            key=lambda item: item[0],
        )
        if not mine:
            out.append((where, f"no exchange profile names account {name!r} (venue.account)"))
            continue
        exchanges = sorted({venue.exchange for _n, venue in mine})
        if len(exchanges) > 1:
            out.append((where, f"profiles of this account trade on {', '.join(exchanges)}"))
        wd = acct.withdrawal_credentials
        if wd.api_key in {venue.credentials.api_key for _n, venue in mine}:
            out.append(
                (
                    (*where, "withdrawal_credentials", "api_key"),
                    f"{wd.api_key} is a trading profile's key; use a separate withdrawal key "
                    "so the trading key stays trading-only",
                )
            )
        members[name] = tuple(n for n, _venue in mine)
    return members, out


def to_band(asset: str, band: AssetBandConfig) -> AssetBand:
    """The core's band for ``asset``: only :data:`NATIVE_ASSET` is sweepable."""
    return AssetBand(
        keep_at_least=band.keep_at_least,
        keep_at_most=band.keep_at_most,
        min_sweep=band.min_sweep,
        max_sweep=band.max_sweep,
        max_per_day=band.max_per_day,
        sweepable=asset == NATIVE_ASSET,
    )
