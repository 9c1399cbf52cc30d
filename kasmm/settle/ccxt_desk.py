"""The :class:`~kasmm.settle.desk.WithdrawalDesk` port over a ccxt async exchange.

The exchange object is built by the caller with the account's *withdrawal* credentials (the
trading key stays trading-only) and handed in (:func:`build_withdrawal_exchange` builds one as
kasmm builds its trading clients). Everything exchange-specific is data in
:data:`WALLET_FLAVOURS`; ccxt's answers become kasmm values here and its errors are translated
once (:mod:`.ccxt_refusals`).

Per exchange (ccxt 4.5.90, pinned by ``tests/unit/test_emulator_withdraw.py``):

======  =======  ======================  ==============================================
        network  client id parameter     withdrawal terms from
======  =======  ======================  ==============================================
mexc    KAS      ``withdrawOrderId``     currencies (``capital/config/getall``)
gate    KAS      ``withdraw_order_id``   currencies (open, precision) and
                                         ``wallet/withdraw_status`` (fee, minimum)
kucoin  KAS      none (KuCoin keeps no   currencies (``/api/v3/currencies``)
                 client id)
bingx   KAS      ``withdrawOrderId``     currencies (``capital/config/getall``)
======  =======  ======================  ==============================================

Statuses: ccxt's unified ``ok`` is ``ok``; ``failed`` and ``canceled`` are ``failed``; every
other value (``pending``, KuCoin's unmapped ``REVIEW``, anything new) is ``pending``: a
withdrawal the exchange still lists is never assumed gone. A :class:`Withdrawal`'s ``amount`` is
the amount as requested (the exchange's own field: ccxt subtracts the fee where the exchange
takes it out of the amount, MEXC and Gate), so a sweep's record and its listing compare equal.

An amount is sent as ccxt formats it for the exchange only if that is the amount itself: one
the exchange would round (Gate rounds to its precision) is refused here, before anything goes
out, as ``invalid_request``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, Literal

from pydantic import SecretStr

from kasmm.clock import RealClock
from kasmm.config.schema import CcxtVenueConfig
from kasmm.config.secrets import ResolvedCredentials
from kasmm.core.settlement import WithdrawTerms
from kasmm.core.types import Balance, Balances
from kasmm.limiter import TokenBucket
from kasmm.settle.ccxt_refusals import read_error, withdraw_error
from kasmm.settle.desk import (
    DeskUnavailable,
    Withdrawal,
    WithdrawalRefused,
    WithdrawalStatus,
    WithdrawalUnknown,
)
from kasmm.venues.ccxt.convert import dec, plain, to_balances
from kasmm.venues.ccxt.decimal_context import isolate_decimal_context
from kasmm.venues.ccxt.exchanges import Flavour, flavour_for

__all__ = [
    "WALLET_FLAVOURS",
    "CcxtWithdrawalDesk",
    "WalletFlavour",
    "build_withdrawal_exchange",
    "desk_for",
    "parse_withdrawal",
    "unified_status",
]

#: The finest Kaspa amount (one sompi): the step where an exchange states none.
SOMPI: Final = Decimal("0.00000001")


@dataclass(frozen=True, slots=True)
class WalletFlavour:
    """What differs between exchanges on the withdrawal side."""

    exchange: str
    #: ccxt's network code for the Kaspa chain (``params={"network": ...}``)
    network: str
    #: the request parameter carrying our client id, and the listed field it comes back in
    #: (``None``: the exchange keeps none)
    client_id_param: str | None
    client_id_field: str | None
    #: where the fee and the minimum are read: ccxt's currencies, or Gate's withdraw status
    fee_source: Literal["currencies", "gate_withdraw_status"] = "currencies"


WALLET_FLAVOURS: Final[Mapping[str, WalletFlavour]] = {
    "mexc": WalletFlavour("mexc", "KAS", "withdrawOrderId", "withdrawOrderId"),
    "gate": WalletFlavour(
        "gate", "KAS", "withdraw_order_id", "withdraw_order_id", "gate_withdraw_status"
    ),
    "kucoin": WalletFlavour("kucoin", "KAS", None, None),
    "bingx": WalletFlavour("bingx", "KAS", "withdrawOrderId", "withdrawOrderId"),
}


def unified_status(status: Any) -> WithdrawalStatus:
    """ccxt's unified status narrowed to ``pending|ok|failed`` (unknown values: pending)."""
    if status == "ok":
        return "ok"
    if status in ("failed", "canceled"):
        return "failed"
    return "pending"


def _exact(value: Decimal) -> Decimal:
    """``value`` without the float's trailing ``.0`` (ccxt gives ``1.0`` for a fee of 1 and
    ``300000.0`` for a balance), so that a plan prints what the exchange shows."""
    return Decimal(plain(value))


def _text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def parse_withdrawal(tx: Mapping[str, Any], client_id_field: str | None) -> Withdrawal | None:
    """A ccxt transaction as a :class:`Withdrawal` (``None``: not a withdrawal, or no id)."""
    info = tx.get("info") or {}
    wid = _text(tx.get("id"))
    if wid is None or tx.get("type") not in (None, "withdrawal"):
        return None
    amount = dec(info.get("amount")) if isinstance(info, Mapping) else None
    fee = tx.get("fee") or {}
    return Withdrawal(
        id=wid,
        client_id=_text(info.get(client_id_field)) if client_id_field else None,
        asset=str(tx.get("currency") or ""),
        amount=amount if amount is not None else (dec(tx.get("amount")) or Decimal(0)),
        fee=dec(fee.get("cost")) if isinstance(fee, Mapping) else None,
        address=str(tx.get("address") or tx.get("addressTo") or ""),
        status=unified_status(tx.get("status")),
        txid=_text(tx.get("txid")),
        ts_ms=int(tx["timestamp"]) if isinstance(tx.get("timestamp"), int | float) else None,
        raw_status=_text(info.get("status")) if isinstance(info, Mapping) else None,
    )


class CcxtWithdrawalDesk:
    """An exchange account's withdrawal side over ``exchange`` (a ``ccxt.async_support``
    instance built with the withdrawal credentials; closed by :meth:`close`).

    :param secrets: the credentials, to scrub from any error message.
    """

    def __init__(self, exchange: Any, *, secrets: Iterable[SecretStr] = ()) -> None:
        name = str(getattr(exchange, "id", ""))
        if name not in WALLET_FLAVOURS:
            raise ValueError(f"kasmm does not withdraw from {name!r} (no wallet flavour)")
        isolate_decimal_context(exchange)
        self._ex = exchange
        self._wallet = WALLET_FLAVOURS[name]
        self._venue: Flavour = flavour_for(name)
        self._secrets = tuple(secrets)
        self._loaded = False

    def __repr__(self) -> str:
        return f"CcxtWithdrawalDesk({self._wallet.exchange!r})"

    @property
    def exchange(self) -> str:
        return self._wallet.exchange

    @property
    def takes_client_id(self) -> bool:
        return self._wallet.client_id_param is not None

    async def _markets(self) -> None:
        """Load spot markets and currencies once, as kasmm's venues load them."""
        if self._loaded:
            return
        ex, params = self._ex, dict(self._venue.markets_params)
        try:
            method = self._venue.spot_markets_method
            if method is not None:
                markets = await getattr(ex, method)(params)
                ex.set_markets(markets, await ex.fetch_currencies())
            else:
                await ex.load_markets(False, params)
        except Exception as exc:
            raise read_error(exc, self.exchange, "load_markets", self._secrets) from exc
        self._loaded = True

    async def balances(self) -> Balances:
        await self._markets()  # else ccxt loads every market type itself first
        try:
            read = to_balances(await self._ex.fetch_balance())
        except Exception as exc:
            raise read_error(exc, self.exchange, "fetch_balance", self._secrets) from exc
        return Balances(
            {a: Balance(_exact(b.free), _exact(b.locked)) for a, b in read.assets.items()}
        )

    async def mids(self, symbols: Sequence[str]) -> dict[str, Decimal]:
        await self._markets()
        out: dict[str, Decimal] = {}
        for symbol in symbols:
            if symbol not in (self._ex.markets or {}):
                continue
            try:
                book = await self._ex.fetch_order_book(symbol)
            except Exception as exc:
                raise read_error(exc, self.exchange, "fetch_order_book", self._secrets) from exc
            bids, asks = book.get("bids") or [], book.get("asks") or []
            bid = dec(bids[0][0]) if bids else None
            ask = dec(asks[0][0]) if asks else None
            if bid is not None and ask is not None and 0 < bid < ask:
                out[symbol] = (bid + ask) / 2
        return out

    async def terms(self, asset: str) -> WithdrawTerms | None:
        await self._markets()
        try:
            currencies = await self._ex.fetch_currencies()
            if currencies:
                self._ex.set_markets(self._ex.markets, currencies)
            status = None
            if self._wallet.fee_source == "gate_withdraw_status":
                status = await self._ex.privateWalletGetWithdrawStatus({"currency": asset})
        except Exception as exc:
            raise read_error(exc, self.exchange, "terms", self._secrets) from exc
        currency = (currencies or {}).get(asset)
        if not currency:
            return None
        net = self._network_entry(currency)
        if net is None:
            return None
        enabled = net.get("withdraw")
        if enabled is None:
            enabled = currency.get("withdraw")
        step = dec(net.get("precision")) or dec(currency.get("precision")) or SOMPI
        if status is not None:
            fee, minimum = _gate_fee(status, asset, self._wallet.network)
        else:
            fee = dec(net.get("fee"))
            limits = (net.get("limits") or {}).get("withdraw") or {}
            minimum = dec(limits.get("min"))
        if fee is None or step <= 0:
            return None  # an unknown fee cannot be planned around: hold
        return WithdrawTerms(
            enabled=enabled is True,
            step=_exact(step),
            min_amount=_exact(minimum or Decimal(0)),
            fee=_exact(fee),
        )

    def _network_entry(self, currency: Mapping[str, Any]) -> Mapping[str, Any] | None:
        want = self._wallet.network.upper()
        for code, entry in (currency.get("networks") or {}).items():
            names = (code, entry.get("id"), entry.get("network"), entry.get("name"))
            if any(isinstance(n, str) and n.upper() == want for n in names):
                return dict(entry)
        return None

    async def withdraw(
        self, asset: str, amount: Decimal, address: str, client_id: str | None
    ) -> str:
        """Request the withdrawal (see :class:`~kasmm.settle.desk.WithdrawalDesk`).

        :raises DeskUnavailable: the markets could not be loaded: nothing was sent.
        """
        await self._markets()
        text = plain(amount)
        if client_id is not None and self._wallet.client_id_param is None:
            raise WithdrawalRefused("invalid_request", f"{self.exchange} takes no client id")
        try:
            formatted = {
                self._ex.currency_to_precision(asset, text),
                self._ex.currency_to_precision(asset, text, self._wallet.network),
            }
        except Exception as exc:
            raise WithdrawalRefused("invalid_request", f"{asset}: {exc}") from None
        if any(dec(f) != amount for f in formatted):
            raise WithdrawalRefused(
                "invalid_request",
                f"{self.exchange} would send {sorted(formatted)} for {text} {asset}: "
                "not a multiple of its withdrawal precision",
            )
        params: dict[str, Any] = {"network": self._wallet.network}
        if client_id is not None and self._wallet.client_id_param is not None:
            params[self._wallet.client_id_param] = client_id
        try:
            answer = await self._ex.withdraw(asset, text, address, params)
        except Exception as exc:
            raise withdraw_error(exc, self.exchange, self._secrets) from exc
        wid = _text((answer or {}).get("id"))
        if wid is None:
            raise WithdrawalUnknown(f"{self.exchange} withdraw: the answer carries no id")
        return wid

    async def withdrawals(self, asset: str, since_ms: int | None = None) -> list[Withdrawal]:
        await self._markets()
        try:
            rows = await self._ex.fetch_withdrawals(asset, since_ms)
        except Exception as exc:
            raise read_error(exc, self.exchange, "fetch_withdrawals", self._secrets) from exc
        out = [parse_withdrawal(row, self._wallet.client_id_field) for row in rows or []]
        return [w for w in out if w is not None and w.asset == asset]

    async def deposit_address(self, asset: str) -> str:
        await self._markets()
        try:
            answer = await self._ex.fetch_deposit_address(asset, {"network": self._wallet.network})
        except Exception as exc:
            raise read_error(exc, self.exchange, "fetch_deposit_address", self._secrets) from exc
        address = _text((answer or {}).get("address"))
        if address is None:
            raise DeskUnavailable(f"{self.exchange} fetch_deposit_address: no address")
        return address

    async def close(self) -> None:
        await self._ex.close()


def _gate_fee(status: Any, asset: str, network: str) -> tuple[Decimal | None, Decimal | None]:
    """Fee and minimum of ``asset`` on ``network`` from Gate's ``wallet/withdraw_status``."""
    for row in status if isinstance(status, list) else []:
        if isinstance(row, Mapping) and row.get("currency") == asset:
            chains = row.get("withdraw_fix_on_chains") or {}
            fee = dec(chains.get(network)) if isinstance(chains, Mapping) else None
            return (
                fee if fee is not None else dec(row.get("withdraw_fix")),
                dec(row.get("withdraw_amount_mini")),
            )
    return None, None


def build_withdrawal_exchange(
    config: CcxtVenueConfig, credentials: ResolvedCredentials, bucket: TokenBucket | None = None
) -> Any:
    """A ``ccxt.async_support`` client of ``config``'s exchange with the *withdrawal*
    ``credentials``: kasmm's options (no blind retries, account modes), ``rest_url`` if set.

    Its requests draw ccxt's per-endpoint costs from ``bucket`` (the account's, from
    ``_accounts.yaml``; by default one of the exchange's published budget), as the trading
    venues' do: ccxt's own limiter has no burst, so after MEXC's market list (cost 100) every
    settlement would first stall about five seconds.
    """
    from kasmm.venues.ccxt.client import build_exchange, route_throttle
    from kasmm.venues.ccxt.exchanges import rest_urls

    flavour = flavour_for(config.exchange)
    exchange = build_exchange(config, credentials, flavour, websocket=False)
    if bucket is None:
        budget = flavour.budget
        bucket = TokenBucket(budget.capacity, budget.refill_per_s, RealClock(), name="settlement")
    route_throttle(exchange, bucket)
    if config.rest_url is not None:
        urls = dict(exchange.urls)
        urls["api"] = rest_urls(flavour, urls["api"], config.rest_url)
        exchange.urls = urls
    return exchange


def desk_for(
    config: CcxtVenueConfig, credentials: ResolvedCredentials, bucket: TokenBucket | None = None
) -> CcxtWithdrawalDesk:
    """A desk on a new client of ``config``'s exchange with ``credentials`` (which it scrubs
    from every error message), drawing from ``bucket`` (see :func:`build_withdrawal_exchange`)."""
    secrets = [credentials.api_key, credentials.secret]
    if credentials.password is not None:
        secrets.append(credentials.password)
    return CcxtWithdrawalDesk(
        build_withdrawal_exchange(config, credentials, bucket), secrets=secrets
    )
