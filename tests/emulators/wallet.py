"""The exchange-neutral withdrawal desk the four emulators share (no I/O, no exchange shapes).

Real exchanges differ in how they spell a withdrawal (ids, status codes, error codes), but agree
on what happens, and that is modelled here once, over the shared
:class:`~tests.emulators.matching.MatchingEngine` balances:

* a request is checked in one fixed order (network open, address whitelisted, amount at least
  the minimum, balance enough: an assumption, the exchanges do not document theirs) and refused
  with a :class:`Refusal` the exchange module turns into its own error body. Whitelisting is on
  and empty by default, as on an exchange whose API key may withdraw only to its address book:
  a test calls :meth:`Wallet.allow` first (``whitelist=None`` turns it off);
* an accepted request debits ``available`` at once (``amount + fee``, or ``amount`` when the
  exchange takes the fee out of the amount: :attr:`Wallet.fee_included`), as the exchanges do;
* the test drives it through the stages (:meth:`Wallet.advance`): REQUESTED -> REVIEWING ->
  PROCESSING -> SENT (a txid appears) -> COMPLETED, or FAILED / CANCELLED, which give the debit
  back. Nothing moves on its own, so a test sees each stage as long as it likes;
* a deposit address per (account, coin, network), stable, so a top-up plan can print it.
"""

from __future__ import annotations

import enum
import hashlib
import itertools
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from decimal import Decimal
from typing import Any

from tests.emulators import kaspa_address
from tests.emulators.matching import MatchingEngine

__all__ = [
    "KAS_ADDRESS",
    "Network",
    "Refusal",
    "Stage",
    "Wallet",
    "WalletRefused",
    "Withdrawal",
    "admin",
    "withdrawal_json",
]

#: A real mainnet Kaspa address (it checks out with :func:`kaspa_address.decode`), for tests to
#: whitelist and withdraw to; the emulators check addresses only against the whitelist.
KAS_ADDRESS = "kaspa:qqkqkzjvr7zwxxmjxjkmxxdwju9kjs6e9u82uh59z07vgaks6gg62v8707g73"


class Stage(enum.Enum):
    """Where a withdrawal is, whatever the exchange calls it."""

    REQUESTED = "requested"
    REVIEWING = "reviewing"
    PROCESSING = "processing"
    SENT = "sent"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


#: Which stage may follow which (everything that moves a withdrawal is checked against this).
TRANSITIONS: dict[Stage, frozenset[Stage]] = {
    Stage.REQUESTED: frozenset({Stage.REVIEWING, Stage.PROCESSING, Stage.FAILED, Stage.CANCELLED}),
    Stage.REVIEWING: frozenset({Stage.PROCESSING, Stage.FAILED, Stage.CANCELLED}),
    Stage.PROCESSING: frozenset({Stage.SENT, Stage.FAILED}),
    Stage.SENT: frozenset({Stage.COMPLETED}),
    Stage.COMPLETED: frozenset(),
    Stage.FAILED: frozenset(),
    Stage.CANCELLED: frozenset(),
}

#: Stages that gave the debit back.
REFUNDED = frozenset({Stage.FAILED, Stage.CANCELLED})


class Refusal(enum.Enum):
    """Why a withdrawal request is refused (each exchange has its own code for each)."""

    UNKNOWN_COIN = "unknown_coin"
    SUSPENDED = "suspended"
    NOT_WHITELISTED = "not_whitelisted"
    BELOW_MINIMUM = "below_minimum"
    INSUFFICIENT_BALANCE = "insufficient_balance"


class WalletRefused(Exception):
    """A refused request: the :class:`Refusal` and the network rules it was checked against."""

    def __init__(self, refusal: Refusal, network: Network | None) -> None:
        super().__init__(refusal.value)
        self.refusal = refusal
        self.network = network


@dataclass(frozen=True, slots=True)
class Network:
    """One coin on one chain: the withdrawal fee and limits, and whether withdrawals are open."""

    coin: str = "KAS"
    network: str = "KAS"
    fee: Decimal = Decimal("1")
    minimum: Decimal = Decimal("10")
    maximum: Decimal = Decimal("10000000")
    withdraw_enabled: bool = True
    deposit_enabled: bool = True
    #: Confirmations the exchange waits for on a deposit (MEXC's ``minConfirm``).
    confirmations: int = 10


@dataclass(frozen=True, slots=True)
class Withdrawal:
    """One withdrawal as the exchange holds it (a new value on every change)."""

    id: str
    account: str
    coin: str
    network: str
    address: str
    #: The amount asked for (the recipient gets ``amount``, or ``amount - fee`` when the exchange
    #: takes the fee out of it).
    amount: Decimal
    fee: Decimal
    #: What left ``available`` at request time (given back on FAILED / CANCELLED).
    debited: Decimal
    stage: Stage
    created_ms: int
    updated_ms: int
    memo: str | None = None
    txid: str | None = None
    #: The caller's own id, where the exchange takes one (Gate ``withdraw_order_id``, BingX
    #: ``withdrawOrderId``).
    client_id: str | None = None
    remark: str | None = None

    @property
    def received(self) -> Decimal:
        """What arrives at the address."""
        return self.amount if self.debited > self.amount else self.amount - self.fee


@dataclass
class Wallet:
    """The withdrawal desk of one emulator (``emu.wallet``): rules, whitelist, withdrawals.

    ``new_id`` spells the exchange's withdrawal ids; ``fee_included`` says whether the exchange
    takes the fee out of the amount (the debit is then ``amount``) or on top (``amount + fee``).
    """

    engine: MatchingEngine
    new_id: Callable[[int], str]
    fee_included: bool = False
    networks: dict[tuple[str, str], Network] = field(
        default_factory=lambda: {("KAS", "KAS"): Network()}
    )
    #: ``(account, coin, address)`` allowed as destinations; ``None`` turns whitelisting off.
    whitelist: set[tuple[str, str, str]] | None = field(default_factory=set)
    withdrawals: dict[str, Withdrawal] = field(default_factory=dict)
    #: Called after every change (an emulator persists its state file here).
    on_change: Callable[[], None] | None = None
    _seq: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    # ------------------------------------------------------------- test controls
    def set_network(self, network: Network) -> None:
        """Add or replace the rules of one coin on one chain."""
        self.networks[(network.coin, network.network)] = network
        self._changed()

    def suspend(self, coin: str = "KAS", network: str = "KAS", suspended: bool = True) -> None:
        """Close (or reopen) withdrawals of ``coin`` on ``network``."""
        rules = self.network(coin, network)
        self.set_network(replace(rules, withdraw_enabled=not suspended))

    def allow(self, account: str, address: str, coin: str = "KAS") -> None:
        """Put ``address`` on the account's withdrawal whitelist (the web UI's address book)."""
        if self.whitelist is not None:
            self.whitelist.add((account, coin, address))
            self._changed()

    def advance(self, withdrawal_id: str, stage: Stage, txid: str | None = None) -> Withdrawal:
        """Move a withdrawal on (the exchange's back office and the chain, driven by the test).

        SENT sets ``txid`` (a made-up 64-hex one unless given); FAILED and CANCELLED give the
        debit back. Raises ``ValueError`` for a move :data:`TRANSITIONS` does not allow.
        """
        current = self.withdrawals[withdrawal_id]
        if stage not in TRANSITIONS[current.stage]:
            raise ValueError(f"withdrawal {withdrawal_id}: {current.stage.value} -> {stage.value}")
        if stage is Stage.SENT and txid is None:
            txid = hashlib.sha256(f"{withdrawal_id}".encode()).hexdigest()
        if stage in REFUNDED:
            self.engine.balance(current.account, current.coin).available += current.debited
        updated = replace(
            current,
            stage=stage,
            txid=txid if txid is not None else current.txid,
            updated_ms=self.engine.now_ms(),
        )
        self.withdrawals[withdrawal_id] = updated
        self._changed()
        return updated

    # ------------------------------------------------------------------ queries
    def network(self, coin: str, network: str | None) -> Network:
        """The rules for ``coin`` on ``network`` (None: the coin's only or first network)."""
        for (c, n), rules in self.networks.items():
            if c == coin and (network is None or n.upper() == network.upper()):
                return rules
        raise WalletRefused(Refusal.UNKNOWN_COIN, None)

    def coins(self) -> list[Network]:
        return list(self.networks.values())

    def deposit_address(self, account: str, coin: str, network: str | None) -> str:
        """The account's deposit address for ``coin`` (stable: derived from the account)."""
        rules = self.network(coin, network)
        digest = hashlib.sha256(f"{account}/{rules.coin}/{rules.network}".encode()).hexdigest()
        if rules.coin == "KAS":
            return kaspa_address.encode(bytes.fromhex(digest))
        return "0x" + digest[:40]

    def of(self, account: str, coin: str | None = None) -> list[Withdrawal]:
        """The account's withdrawals (of ``coin``), newest first as the exchanges list them."""
        rows = [
            w
            for w in self.withdrawals.values()
            if w.account == account and (coin is None or w.coin == coin)
        ]
        return rows[::-1]

    # ------------------------------------------------------------------ request
    def request(
        self,
        account: str,
        coin: str,
        network: str | None,
        address: str,
        amount: Decimal,
        *,
        memo: str | None = None,
        client_id: str | None = None,
        remark: str | None = None,
        fee_included: bool | None = None,
    ) -> Withdrawal:
        """Accept a withdrawal and debit it, or raise :class:`WalletRefused`.

        The checks run in a fixed order: the coin and network exist and are open, the address
        is whitelisted, the amount reaches the minimum, the balance covers the debit.
        ``fee_included`` overrides :attr:`fee_included` for this request (KuCoin's
        ``feeDeductType``).
        """
        rules = self.network(coin, network)
        if not rules.withdraw_enabled:
            raise WalletRefused(Refusal.SUSPENDED, rules)
        if self.whitelist is not None and (account, coin, address) not in self.whitelist:
            raise WalletRefused(Refusal.NOT_WHITELISTED, rules)
        if amount < rules.minimum:
            raise WalletRefused(Refusal.BELOW_MINIMUM, rules)
        inside = self.fee_included if fee_included is None else fee_included
        debit = amount if inside else amount + rules.fee
        balance = self.engine.balance(account, coin)
        if balance.available < debit:
            raise WalletRefused(Refusal.INSUFFICIENT_BALANCE, rules)
        balance.available -= debit
        now = self.engine.now_ms()
        withdrawal = Withdrawal(
            id=self.new_id(next(self._seq)),
            account=account,
            coin=coin,
            network=rules.network,
            address=address,
            amount=amount,
            fee=rules.fee,
            debited=debit,
            stage=Stage.REQUESTED,
            created_ms=now,
            updated_ms=now,
            memo=memo,
            client_id=client_id,
            remark=remark,
        )
        self.withdrawals[withdrawal.id] = withdrawal
        self._changed()
        return withdrawal

    # ------------------------------------------------------------------ state
    def to_json(self) -> dict[str, Any]:
        """The desk's state for an emulator's state file (:meth:`load_json` reads it back)."""
        return {
            "networks": [
                {
                    **asdict(n),
                    "fee": str(n.fee),
                    "minimum": str(n.minimum),
                    "maximum": str(n.maximum),
                }
                for n in self.networks.values()
            ],
            "whitelist": None if self.whitelist is None else sorted(self.whitelist),
            "withdrawals": [
                {
                    **asdict(w),
                    "amount": str(w.amount),
                    "fee": str(w.fee),
                    "debited": str(w.debited),
                    "stage": w.stage.value,
                }
                for w in self.withdrawals.values()
            ],
        }

    def load_json(self, data: dict[str, Any]) -> None:
        """Restore a :meth:`to_json` snapshot (balances are the engine's, restored apart)."""
        self.networks = {}
        for raw in data["networks"]:
            money = {k: Decimal(raw[k]) for k in ("fee", "minimum", "maximum")}
            network = Network(**{**raw, **money})
            self.networks[(network.coin, network.network)] = network
        whitelist = data["whitelist"]
        self.whitelist = (
            None if whitelist is None else {(str(a), str(c), str(d)) for a, c, d in whitelist}
        )
        self.withdrawals = {}
        for raw in data["withdrawals"]:
            money = {k: Decimal(raw[k]) for k in ("amount", "fee", "debited")}
            w = Withdrawal(**{**raw, **money, "stage": Stage(raw["stage"])})
            self.withdrawals[w.id] = w
        self._seq = itertools.count(len(self.withdrawals) + 1)


def withdrawal_json(w: Withdrawal) -> dict[str, object]:
    """A withdrawal as plain JSON (the admin endpoints' answer), amounts as strings."""
    return {
        "id": w.id,
        "account": w.account,
        "coin": w.coin,
        "network": w.network,
        "address": w.address,
        "amount": str(w.amount),
        "fee": str(w.fee),
        "debited": str(w.debited),
        "stage": w.stage.value,
        "txid": w.txid,
        "client_id": w.client_id,
        "created_ms": w.created_ms,
    }


def admin(wallet: Wallet, account: str, action: str, data: dict[str, Any]) -> object:
    """One control of a separate-process emulator (``POST /_emu/wallet/<action>``):

    ``allow`` ``{address, coin?, account?}``; ``suspend`` ``{coin?, network?, suspended?}``;
    ``advance`` ``{id, stage, txid?}``; ``network`` ``{coin?, network?, fee?, minimum?}``;
    ``withdrawals`` ``{account?}`` lists them. Raises ``KeyError`` / ``ValueError`` on bad input.
    """
    who = str(data.get("account") or account)
    if action == "allow":
        wallet.allow(who, str(data["address"]), str(data.get("coin", "KAS")))
        return {}
    if action == "suspend":
        coin, network = str(data.get("coin", "KAS")), str(data.get("network", "KAS"))
        wallet.suspend(coin, network, bool(data.get("suspended", True)))
        return {}
    if action == "advance":
        txid = data.get("txid")
        moved = wallet.advance(
            str(data["id"]), Stage(data["stage"]), None if txid is None else str(txid)
        )
        return withdrawal_json(moved)
    if action == "network":
        try:
            rules = wallet.network(str(data.get("coin", "KAS")), data.get("network"))
        except WalletRefused as exc:
            raise ValueError("unknown coin or network") from exc
        wallet.set_network(
            replace(
                rules,
                fee=Decimal(str(data.get("fee", rules.fee))),
                minimum=Decimal(str(data.get("minimum", rules.minimum))),
                maximum=Decimal(str(data.get("maximum", rules.maximum))),
            )
        )
        return {}
    if action == "withdrawals":
        return [withdrawal_json(w) for w in wallet.of(who)]
    raise KeyError(action)
