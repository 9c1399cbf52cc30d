"""What settlement asks a Kaspa node, and how confirmations are counted (pure).

Settlement only needs to know that a withdrawal's transaction paid the destination address and
how deep that payment is. The narrow :class:`KaspaNode` protocol asks exactly that: the node's
status (network, synced, UTXO index), the virtual DAA score, and the UTXOs at an address. The
SDK-backed implementation is :class:`kasmm.settle.sdk_node.SdkKaspaNode`; tests run it against a
loopback wRPC-JSON node (``tests/emulators/kaspa_node.py``).

Confirmations are counted in DAA score, not blocks: Kaspa is a block DAG (ten blocks a second
since Crescendo), a UTXO carries the DAA score of the block that accepted its transaction
(``blockDaaScore``), and the node's virtual DAA score grows by about one per block. So
``confirmations = virtual DAA score - UTXO's blockDaaScore``, which is how the rusty-kaspa wallet
decides maturity (``wallet/core/src/utxo/reference.rs``: pending while
``block_daa_score + user_transaction_maturity_period_daa > current_daa_score``, the period being
100 on every network in ``wallet/core/src/utxo/settings.rs``). Counting stops at what the UTXO
index shows: a receipt already spent from the wallet is no longer visible.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Final, Protocol

from kasmm.settle.address import Network

__all__ = [
    "SOMPI_PER_KAS",
    "WALLET_MATURITY_DAA",
    "Confirmation",
    "KaspaNode",
    "NodeError",
    "NodeMisconfigured",
    "NodeStatus",
    "NodeUnavailable",
    "Receipt",
    "check_status",
    "confirm",
    "confirmation_of",
    "count_confirmations",
]

#: 1 KAS = 10^8 sompi (the chain's integer unit).
SOMPI_PER_KAS: Final = 100_000_000
#: The rusty-kaspa wallet's user transaction maturity, in DAA score: a sensible default for
#: "confirmed" (about ten seconds at ten blocks a second).
WALLET_MATURITY_DAA: Final = 100


class NodeError(Exception):
    """The node could not answer what settlement asked (base class)."""


class NodeUnavailable(NodeError):
    """Connecting failed, the connection dropped or an answer did not come in time: retry."""


class NodeMisconfigured(NodeError):
    """The node answers but cannot be trusted for this settlement (wrong network, not synced,
    no UTXO index): an operator must fix the node or the URL; retrying does not help."""


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """``getServerInfo``: what the node is and whether it can confirm anything.

    :param network_id: ``mainnet``, ``testnet-10``, ...
    :param has_utxo_index: started with ``--utxoindex`` (needed to look up an address).
    :param virtual_daa_score: the DAA score of the virtual block when asked.
    """

    network_id: str
    server_version: str
    synced: bool
    has_utxo_index: bool
    virtual_daa_score: int


@dataclass(frozen=True, slots=True)
class Receipt:
    """One unspent output at an address (an entry of ``getUtxosByAddresses``).

    :param amount_sompi: the output's value in sompi.
    :param block_daa_score: the DAA score of the block that accepted the transaction.
    """

    txid: str
    index: int
    amount_sompi: int
    block_daa_score: int
    is_coinbase: bool = False

    @property
    def amount_kas(self) -> Decimal:
        """The amount in KAS, exactly."""
        return Decimal(self.amount_sompi) / SOMPI_PER_KAS


@dataclass(frozen=True, slots=True)
class Confirmation:
    """How far a transaction's payment to an address is confirmed.

    :param found: whether any output of ``txid`` to ``address`` is in the UTXO set.
    :param amount_sompi: the sum of those outputs (a withdrawal may pay one address twice).
    :param confirmations: DAA score depth of the shallowest of them (0 when not found).
    """

    txid: str
    address: str
    found: bool
    amount_sompi: int
    confirmations: int
    virtual_daa_score: int

    @property
    def amount_kas(self) -> Decimal:
        """The amount received in KAS, exactly."""
        return Decimal(self.amount_sompi) / SOMPI_PER_KAS

    def is_confirmed(self, required: int = WALLET_MATURITY_DAA) -> bool:
        """Whether the payment is found and at least ``required`` DAA score deep."""
        return self.found and self.confirmations >= required


class KaspaNode(Protocol):
    """The node questions settlement asks; every method may raise :class:`NodeError`."""

    async def status(self) -> NodeStatus:
        """The node's network, sync state, UTXO index and virtual DAA score."""
        ...

    async def virtual_daa_score(self) -> int:
        """The virtual DAA score now (``getBlockDagInfo``)."""
        ...

    async def receipts(self, address: str) -> tuple[Receipt, ...]:
        """The unspent outputs at ``address`` (``getUtxosByAddresses``; needs the UTXO index)."""
        ...


def count_confirmations(virtual_daa_score: int, block_daa_score: int) -> int:
    """DAA score depth of an output: 0 when just accepted (never negative: the virtual score a
    node reports may lag the one its UTXO index saw, by a block)."""
    return max(0, virtual_daa_score - block_daa_score)


def confirmation_of(
    txid: str, address: str, receipts: tuple[Receipt, ...], virtual_daa_score: int
) -> Confirmation:
    """Fold an address's UTXOs into the confirmation of one transaction's payment to it."""
    wanted = txid.lower()
    mine = [r for r in receipts if r.txid.lower() == wanted]
    if not mine:
        return Confirmation(txid, address, False, 0, 0, virtual_daa_score)
    depth = min(count_confirmations(virtual_daa_score, r.block_daa_score) for r in mine)
    total = sum(r.amount_sompi for r in mine)
    return Confirmation(txid, address, True, total, depth, virtual_daa_score)


def check_status(status: NodeStatus, network: Network) -> None:
    """Refuse a node that cannot confirm payments on ``network``.

    :raises NodeMisconfigured: wrong network, not synced, or no UTXO index.
    """
    if not _same_network(status.network_id, network):
        raise NodeMisconfigured(f"the node is on {status.network_id}; settlement is on {network}")
    if not status.has_utxo_index:
        raise NodeMisconfigured("the node has no UTXO index: start it with --utxoindex")
    if not status.synced:
        raise NodeMisconfigured("the node is not synced: its confirmations would be stale")


async def confirm(node: KaspaNode, network: Network, txid: str, address: str) -> Confirmation:
    """Ask ``node`` how far ``txid``'s payment to ``address`` is confirmed.

    The status is checked first (a node on another network or not synced would report a
    payment as missing, or a stale depth); the virtual DAA score is read after the UTXOs, so an
    output accepted between the two reads is counted from a score that already includes it.

    :raises NodeError: from the node, or :class:`NodeMisconfigured` from the status check.
    """
    check_status(await node.status(), network)
    receipts = await node.receipts(address)
    daa = await node.virtual_daa_score()
    return confirmation_of(txid, address, receipts, daa)


def _same_network(network_id: str, network: Network) -> bool:
    return network_id == network or network_id.startswith(f"{network}-")
