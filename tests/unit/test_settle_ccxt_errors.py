"""The withdrawal error table and the listing parser of the ccxt desk, case by case.

What ccxt raises on the emulators is pinned end to end in ``test_settle_ccxt.py``; here every
row of the table, and the cases an emulator does not produce (time outs, dropped connections,
errors nobody mapped), decide refused or unknown exactly as ``kasmm.settle.ccxt_refusals``
says. The rule the table must never break: only an answered, known refusal is "refused".
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt
import pytest
from pydantic import SecretStr

from kasmm.clock import VirtualClock
from kasmm.config.schema import CcxtVenueConfig
from kasmm.config.secrets import ResolvedCredentials
from kasmm.limiter import TokenBucket
from kasmm.settle.ccxt_desk import (
    CcxtWithdrawalDesk,
    build_withdrawal_exchange,
    desk_for,
    parse_withdrawal,
    unified_status,
)
from kasmm.settle.ccxt_refusals import read_error, refusal_reason, withdraw_error
from kasmm.settle.desk import DeskUnavailable, WithdrawalRefused, WithdrawalUnknown

CASES: list[tuple[str, BaseException, str | None]] = [
    # answered refusals, by the exchange's code or label
    (
        "mexc",
        ccxt.BadRequest('mexc {"code":10212,"msg":"not on the commonly used address list"}'),
        "address_not_whitelisted",
    ),
    (
        "mexc",
        ccxt.InsufficientFunds('mexc {"code":10101,"msg":"Insufficient balance"}'),
        "insufficient_balance",
    ),
    ("mexc", ccxt.InvalidOrder('mexc {"code":10097,"msg":"amount is error"}'), "below_minimum"),
    (
        "mexc",
        ccxt.ExchangeError('mexc {"code":10265,"msg":"withdrawal is unavailable"}'),
        "withdrawals_suspended",
    ),
    (
        "gate",
        ccxt.ExchangeError('gate {"label":"ADDRESS_NOT_USED","message":"x"}'),
        "address_not_whitelisted",
    ),
    (
        "gate",
        ccxt.InsufficientFunds('gate {"label":"BALANCE_NOT_ENOUGH","message":"x"}'),
        "insufficient_balance",
    ),
    (
        "gate",
        ccxt.BadRequest(
            'gate {"label":"INVALID_PARAM_VALUE",'
            '"message":"amount is less than the minimum withdrawal"}'
        ),
        "below_minimum",
    ),
    (
        "gate",
        ccxt.BadRequest('gate {"label":"INVALID_PARAM_VALUE","message":"bad chain"}'),
        "invalid_request",
    ),
    # Gate's suspended currency: a NetworkError in ccxt, a refusal by its label
    (
        "gate",
        ccxt.ExchangeNotAvailable('gate {"label":"API_WITHDRAW_DISABLED","message":"x"}'),
        "withdrawals_suspended",
    ),
    (
        "kucoin",
        ccxt.BadRequest(
            'kucoin {"code":"400100","msg":"The withdrawal address is not in the whitelist."}'
        ),
        "address_not_whitelisted",
    ),
    (
        "kucoin",
        ccxt.InsufficientFunds('kucoin {"code":"200004","msg":"Balance insufficient!"}'),
        "insufficient_balance",
    ),
    (
        "kucoin",
        ccxt.ExchangeError(
            'kucoin {"code":"400100",'
            '"msg":"The withdrawal amount is below the minimum requirement."}'
        ),
        "below_minimum",
    ),
    (
        "kucoin",
        ccxt.BadRequest(
            'kucoin {"code":"400100","msg":"Withdrawal of this currency is suspended."}'
        ),
        "withdrawals_suspended",
    ),
    (
        "kucoin",
        ccxt.BadRequest('kucoin {"code":"400100","msg":"Unsupported currency or chain."}'),
        "invalid_request",
    ),
    (
        "bingx",
        ccxt.ExchangeError('bingx {"code":100440,"msg":"not in the address book"}'),
        "address_not_whitelisted",
    ),
    (
        "bingx",
        ccxt.InsufficientFunds('bingx {"code":100202,"msg":"Insufficient balance"}'),
        "insufficient_balance",
    ),
    (
        "bingx",
        ccxt.BadRequest('bingx {"code":100437,"msg":"lower than the minimum limit"}'),
        "below_minimum",
    ),
    (
        "bingx",
        ccxt.ExchangeError('bingx {"code":100503,"msg":"suspended"}'),
        "withdrawals_suspended",
    ),
    # ccxt's class says it: a missing permission, a bad key, a parameter ccxt refused
    ("mexc", ccxt.PermissionDenied("mexc no withdraw permission"), "permission_denied"),
    ("gate", ccxt.AuthenticationError("gate invalid key"), "permission_denied"),
    ("kucoin", ccxt.ArgumentsRequired("kucoin withdraw() requires a tag"), "invalid_request"),
    ("mexc", ccxt.BadSymbol("mexc does not have currency code NOPE"), "invalid_request"),
    # may have gone out: unknown
    (
        "mexc",
        ccxt.RequestTimeout("mexc POST https://api.mexc.com/api/v3/capital/withdraw timed out"),
        None,
    ),
    ("gate", ccxt.ExchangeNotAvailable("gate 503 Service Unavailable"), None),
    ("kucoin", ccxt.NetworkError("kucoin connection reset"), None),
    ("bingx", ccxt.RateLimitExceeded('bingx {"code":100410,"msg":"rate limited"}'), None),
    ("mexc", ccxt.BadResponse("mexc could not parse the answer"), None),
    ("mexc", ccxt.ExchangeError('mexc {"code":10219,"msg":"asset flow writing failed"}'), None),
    ("bingx", ccxt.ExchangeError("bingx something new"), None),
    ("mexc", TimeoutError(), None),
    ("gate", ConnectionResetError("reset by peer"), None),
    # a code mapped on one exchange means nothing on another
    ("gate", ccxt.ExchangeError('gate {"code":10212,"msg":"?"}'), None),
]


@pytest.mark.parametrize(("exchange", "exc", "reason"), CASES, ids=lambda v: str(v)[:40])
def test_a_withdraw_error_is_refused_only_when_known_to_be(
    exchange: str, exc: BaseException, reason: str | None
) -> None:
    assert refusal_reason(exc, exchange) == reason
    error = withdraw_error(exc, exchange)
    if reason is None:
        assert type(error) is WithdrawalUnknown
    else:
        assert isinstance(error, WithdrawalRefused) and error.reason == reason


def test_messages_are_scrubbed_of_the_withdrawal_key_and_signatures() -> None:
    secret = SecretStr("s3cr3t-withdrawal-key")
    exc = ccxt.ExchangeError(
        "mexc POST https://api.mexc.com/api/v3/capital/withdraw?coin=KAS&signature=abcdef "
        '{"code":10219,"msg":"failed for s3cr3t-withdrawal-key"}'
    )
    error = withdraw_error(exc, "mexc", [secret])
    for text in (str(error), str(exc)):
        assert "s3cr3t" not in text and "abcdef" not in text
    read = read_error(ccxt.NetworkError("apiKey=s3cr3t-withdrawal-key down"), "gate", "x", [secret])
    assert isinstance(read, DeskUnavailable) and "s3cr3t" not in str(read)


@pytest.mark.parametrize(
    ("status", "unified"),
    [
        ("ok", "ok"),
        ("failed", "failed"),
        ("canceled", "failed"),
        ("pending", "pending"),
        ("REVIEW", "pending"),
        (None, "pending"),
        ("something-new", "pending"),
    ],
)
def test_statuses_narrow_to_pending_ok_failed(status: Any, unified: str) -> None:
    assert unified_status(status) == unified


def test_a_listing_row_keeps_the_requested_amount_and_the_client_id() -> None:
    row = {
        "id": "w7",
        "type": "withdrawal",
        "currency": "KAS",
        "amount": 99.0,  # ccxt: amount - fee (the fee came out of it)
        "fee": {"cost": 1.0, "currency": "KAS"},
        "address": "kaspa:qq",
        "status": "ok",
        "txid": "ab" * 32,
        "timestamp": 1_800_000_000_000,
        "info": {"amount": "100", "withdrawOrderId": "km1", "status": 7},
    }
    w = parse_withdrawal(row, "withdrawOrderId")
    assert w is not None
    assert (w.id, w.client_id, w.amount, w.fee) == ("w7", "km1", Decimal(100), Decimal("1.0"))
    assert (w.status, w.txid, w.ts_ms, w.raw_status) == ("ok", "ab" * 32, 1_800_000_000_000, "7")
    assert parse_withdrawal({**row, "info": {"withdrawOrderId": ""}}, "withdrawOrderId") == (
        w.__class__(
            **{**_fields(w), "client_id": None, "amount": Decimal("99.0"), "raw_status": None}
        )
    )
    assert parse_withdrawal({**row, "type": "deposit"}, None) is None
    assert parse_withdrawal({**row, "id": None}, None) is None


def _fields(w: Any) -> dict[str, Any]:
    return {name: getattr(w, name) for name in w.__slots__}


@pytest.mark.anyio
async def test_the_desk_is_built_with_the_withdrawal_key_and_never_shows_it() -> None:
    config = CcxtVenueConfig.model_validate(
        {
            "type": "ccxt",
            "exchange": "kucoin",
            "rest_url": "http://127.0.0.1:9",
            "credentials": {"api_key": "${K}", "secret": "${S}", "password": "${P}"},
        }
    )
    creds = ResolvedCredentials(
        api_key=SecretStr("wd-api-key-123"),
        secret=SecretStr("wd-secret-456"),
        password=SecretStr("wd-pass-789"),
    )
    ex = build_withdrawal_exchange(config, creds)
    try:
        assert ex.apiKey == "wd-api-key-123" and ex.options["hf"] is True
        assert ex.urls["api"]["private"] == "http://127.0.0.1:9"
        desk = CcxtWithdrawalDesk(ex, secrets=[creds.secret, creds.api_key])
        assert not desk.takes_client_id and desk.exchange == "kucoin"
        assert "wd-" not in repr(desk)
    finally:
        await ex.close()
    desk = desk_for(config, creds)
    try:
        with pytest.raises(DeskUnavailable) as caught:  # nothing listens on port 9
            await desk.balances()
        assert "wd-" not in str(caught.value)
    finally:
        await desk.close()


def test_a_desk_refuses_an_exchange_it_has_no_wallet_flavour_for() -> None:
    class Other:
        id = "binance"

    with pytest.raises(ValueError, match="binance"):
        CcxtWithdrawalDesk(Other())


@pytest.mark.anyio
async def test_the_desk_draws_ccxt_costs_from_the_bucket_it_is_given() -> None:
    """One limiter per account: ccxt's per-endpoint cost comes out of the account's bucket
    (``_accounts.yaml``), and by default out of one of the exchange's published budget, never
    ccxt's burstless limiter (which stalled each settlement ~5 s after MEXC's market list)."""
    config = CcxtVenueConfig.model_validate(
        {
            "type": "ccxt",
            "exchange": "mexc",
            "rest_url": "http://127.0.0.1:9",
            "credentials": {"api_key": "${K}", "secret": "${S}"},
        }
    )
    creds = ResolvedCredentials(api_key=SecretStr("k"), secret=SecretStr("s"))
    bucket = TokenBucket(30.0, 1.0, VirtualClock(start=0.0), name="mexc-main")
    ex = build_withdrawal_exchange(config, creds, bucket)
    default = build_withdrawal_exchange(config, creds)
    try:
        await ex.throttle(10)
        assert bucket.tokens == pytest.approx(20.0)
        await ex.throttle(20)
        assert bucket.tokens == pytest.approx(0.0)
        for exchange in (ex, default):  # kasmm's bucket, not ccxt's own limiter
            assert "throttle" in vars(exchange)  # replaced on the instance by route_throttle
    finally:
        await ex.close()
        await default.close()
