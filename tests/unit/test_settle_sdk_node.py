"""The SDK's wRPC client (kaspa 2.1.0, JSON encoding), unmodified, against the loopback node
emulator: :class:`kasmm.settle.sdk_node.SdkKaspaNode` and :func:`kasmm.settle.node.confirm`.

Skipped without the ``kaspa`` SDK.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest

from kasmm.settle.node import NodeError, NodeMisconfigured, NodeUnavailable, confirm
from kasmm.settle.sdk_node import SdkKaspaNode, redact_url
from tests.emulators.kaspa_node import NO_UTXO_INDEX, KaspaNodeEmulator
from tests.unit import kaspa_vectors as v

pytest.importorskip("kaspa")
pytestmark = pytest.mark.anyio

TX = "ab" * 32
ADDR = v.GEN1_RECEIVE_MAINNET[0][1]
OTHER_ADDR = v.GEN1_RECEIVE_MAINNET[1][1]


@pytest.fixture
async def emu() -> AsyncIterator[KaspaNodeEmulator]:
    async with KaspaNodeEmulator(virtual_daa_score=5_000_000) as node:
        yield node


async def test_status_and_daa_score_through_the_sdk(emu: KaspaNodeEmulator) -> None:
    async with SdkKaspaNode(emu.url, "mainnet") as node:
        status = await node.status()
        assert (status.network_id, status.synced, status.has_utxo_index) == ("mainnet", True, True)
        assert status.virtual_daa_score == 5_000_000
        emu.advance(42)
        assert await node.virtual_daa_score() == 5_000_042
    assert emu.methods() == ["getServerInfo", "getBlockDagInfo"]
    assert not node.is_connected


async def test_receipts_are_the_address_utxos_in_sompi(emu: KaspaNodeEmulator) -> None:
    emu.pay(ADDR, TX, 123_456_789, index=1, depth=7)
    emu.pay(OTHER_ADDR, "cd" * 32, 1)
    async with SdkKaspaNode(emu.url, "mainnet") as node:
        (receipt,) = await node.receipts(ADDR)
    assert (receipt.txid, receipt.index, receipt.amount_sompi) == (TX, 1, 123_456_789)
    assert receipt.block_daa_score == 5_000_000 - 7
    assert emu.requests[-1] == ("getUtxosByAddresses", {"addresses": [ADDR]})


async def test_a_payment_is_followed_to_its_required_depth(emu: KaspaNodeEmulator) -> None:
    async with SdkKaspaNode(emu.url, "mainnet") as node:
        before = await confirm(node, "mainnet", TX, ADDR)
        assert not before.found
        emu.pay(ADDR, TX, 250_000_000_000)
        emu.advance(60)
        halfway = await confirm(node, "mainnet", TX, ADDR)
        assert (halfway.found, halfway.confirmations, halfway.is_confirmed()) == (True, 60, False)
        emu.advance(40)
        done = await confirm(node, "mainnet", TX, ADDR)
    assert done.is_confirmed() and done.confirmations == 100
    assert str(done.amount_kas) == "2500"
    assert emu.methods()[-3:] == ["getServerInfo", "getUtxosByAddresses", "getBlockDagInfo"]


@pytest.mark.parametrize(
    ("setup", "words"),
    [
        ({"network_id": "testnet-10"}, "on testnet-10"),
        ({"synced": False}, "not synced"),
        ({"has_utxo_index": False}, "--utxoindex"),
    ],
)
async def test_confirm_refuses_a_node_that_cannot_answer_for_mainnet(
    setup: dict[str, object], words: str
) -> None:
    async with KaspaNodeEmulator(**setup) as emu, SdkKaspaNode(emu.url, "mainnet") as node:  # type: ignore[arg-type]
        with pytest.raises(NodeMisconfigured, match=words):
            await confirm(node, "mainnet", TX, ADDR)


async def test_the_nodes_no_utxo_index_error_is_misconfiguration(emu: KaspaNodeEmulator) -> None:
    emu.has_utxo_index = False
    async with SdkKaspaNode(emu.url, "mainnet") as node:
        with pytest.raises(NodeMisconfigured, match="no UTXO index") as err:
            await node.receipts(ADDR)
    assert NO_UTXO_INDEX in str(err.value)


async def test_another_remote_error_is_a_node_error_with_its_text(emu: KaspaNodeEmulator) -> None:
    emu.fail_next("getBlockDagInfo", "Rejected transaction: orphan")
    async with SdkKaspaNode(emu.url, "mainnet") as node:
        with pytest.raises(NodeError, match=r"getBlockDagInfo: the node refused: .*orphan") as err:
            await node.virtual_daa_score()
        assert type(err.value) is NodeError
        assert await node.virtual_daa_score() == 5_000_000


async def test_a_dropped_connection_is_unavailable_and_the_sdk_reconnects(
    emu: KaspaNodeEmulator,
) -> None:
    """kaspa 2.1.0 reconnects by itself; a request racing the reconnect may go unanswered
    (seen once in probing), which the per-call deadline turns into NodeUnavailable: retry."""
    emu.fail_next("getServerInfo", None)
    async with SdkKaspaNode(emu.url, "mainnet", timeout_s=1) as node:
        with pytest.raises(NodeUnavailable, match="WebSocket disconnected"):
            await node.status()
        for _attempt in range(5):
            try:
                status = await node.status()
            except NodeUnavailable:
                continue
            break
        else:
            pytest.fail("the SDK did not reconnect")
    assert status.network_id == "mainnet"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_nobody_listening_is_unavailable_quickly() -> None:
    node = SdkKaspaNode(f"ws://127.0.0.1:{_closed_port()}", "mainnet", timeout_s=2)
    with pytest.raises(NodeUnavailable):
        await node.connect()
    await node.close()


def test_url_user_info_never_shows() -> None:
    assert redact_url("wss://op:hunter2@node.example:443/x") == "wss://node.example:443/x"
    assert redact_url("ws://127.0.0.1:18110") == "ws://127.0.0.1:18110"
    assert "hunter2" not in repr(SdkKaspaNode("ws://127.0.0.1:18110", "mainnet"))


def test_the_sdk_refuses_user_info_in_the_url_and_the_error_hides_it() -> None:
    with pytest.raises(NodeMisconfigured, match="refused the node URL") as err:
        SdkKaspaNode("ws://op:hunter2@127.0.0.1:18110", "mainnet")
    assert "hunter2" not in str(err.value)


async def test_testnet_node_and_address(emu: KaspaNodeEmulator) -> None:
    emu.network_id = "testnet-10"
    addr = v.GEN1_RECEIVE_TESTNET[0][1]
    emu.pay(addr, TX, 10, depth=100)
    async with SdkKaspaNode(emu.url, "testnet") as node:
        assert (await confirm(node, "testnet", TX, addr)).is_confirmed()
