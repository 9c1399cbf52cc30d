"""Confirmation counting and the node status check (:mod:`kasmm.settle.node`): pure, no SDK."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kasmm.settle.address import Network
from kasmm.settle.node import (
    WALLET_MATURITY_DAA,
    NodeMisconfigured,
    NodeStatus,
    Receipt,
    check_status,
    confirmation_of,
    count_confirmations,
)

TX = "ab" * 32
OTHER = "cd" * 32
ADDR = "kaspa:qz7ulu4c25dh7fzec9zjyrmlhnkzrg4wmf89q7gzr3gfrsj3uz6xjellj43pf"


@pytest.mark.parametrize(
    ("virtual", "block", "expected"), [(1000, 1000, 0), (1100, 1000, 100), (999, 1000, 0)]
)
def test_count_confirmations_is_the_daa_score_depth(
    virtual: int, block: int, expected: int
) -> None:
    assert count_confirmations(virtual, block) == expected


def test_a_transaction_not_in_the_utxo_set_is_not_found() -> None:
    receipts = (Receipt(OTHER, 0, 5, 900),)
    c = confirmation_of(TX, ADDR, receipts, 1000)
    assert (c.found, c.amount_sompi, c.confirmations, c.is_confirmed(0)) == (False, 0, 0, False)


def test_outputs_of_one_transaction_add_up_and_count_from_the_shallowest() -> None:
    receipts = (
        Receipt(TX, 0, 150_000_000, 900),
        Receipt(TX.upper(), 1, 50_000_000, 950),
        Receipt(OTHER, 0, 7, 100),
    )
    c = confirmation_of(TX, ADDR, receipts, 1050)
    assert (c.found, c.amount_sompi, c.confirmations) == (True, 200_000_000, 100)
    assert c.amount_kas == Decimal("2")
    assert c.is_confirmed() and not c.is_confirmed(101)


def test_wallet_maturity_is_rusty_kaspas_100_daa() -> None:
    assert WALLET_MATURITY_DAA == 100


def test_receipt_amount_is_exact_kas() -> None:
    assert Receipt(TX, 0, 1, 0).amount_kas == Decimal("0.00000001")


def _status(network_id: str = "mainnet", synced: bool = True, index: bool = True) -> NodeStatus:
    return NodeStatus(network_id, "1.0.0", synced, index, 1)


@pytest.mark.parametrize(
    ("status", "network", "words"),
    [
        (_status("testnet-10"), "mainnet", "on testnet-10"),
        (_status("mainnet"), "testnet", "on mainnet"),
        (_status(index=False), "mainnet", "--utxoindex"),
        (_status(synced=False), "mainnet", "not synced"),
    ],
)
def test_unusable_nodes_are_refused(status: NodeStatus, network: Network, words: str) -> None:
    with pytest.raises(NodeMisconfigured, match=words):
        check_status(status, network)


@pytest.mark.parametrize(
    ("network_id", "network"),
    [("mainnet", "mainnet"), ("testnet-10", "testnet"), ("testnet", "testnet")],
)
def test_usable_nodes_pass(network_id: str, network: Network) -> None:
    check_status(_status(network_id), network)
