"""The :class:`~kasmm.settle.node.KaspaNode` protocol over the Kaspa SDK's wRPC client.

The SDK's ``RpcClient`` (kaspa 2.1.0) speaks wRPC over a websocket, Borsh or JSON encoded. JSON
is the default here: it is what a loopback test node can answer (``tests/emulators/kaspa_node``)
and what rusty-kaspa nodes serve with ``--rpclisten-json`` (port 18110 on mainnet); Borsh
(``--rpclisten-borsh``, 17110) is faster but ties the client to the node's exact struct layout.

The SDK's methods are coroutines although its stubs type them as plain returns; its errors are
bare ``Exception`` with rusty-kaspa's text: this module is the boundary that turns them into
:class:`~kasmm.settle.node.NodeError` subclasses, once. Every call has a deadline of its own
(the SDK's request timeout is long), and the URL is shown without any user-info in it.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, Literal, Self, cast

import anyio

from kasmm.settle.address import Network
from kasmm.settle.node import (
    NodeError,
    NodeMisconfigured,
    NodeStatus,
    NodeUnavailable,
    Receipt,
)

__all__ = ["SdkKaspaNode", "redact_url"]

#: The network id the SDK is told for each settlement network (testnet-10 is the public one).
_NETWORK_ID: dict[Network, str] = {"mainnet": "mainnet", "testnet": "testnet-10"}
#: rusty-kaspa's prefix for an error the node itself returned (``RpcError`` over wRPC).
_REMOTE = "RPC Server (remote error)"
#: Texts that mean the connection, not the node, failed (kaspa 2.1.0 says "WebSocket
#: disconnected" when the socket drops under a request).
_CONNECTION_WORDS = ("websocket", "disconnect", "not connected", "timeout")


def redact_url(url: str) -> str:
    """``url`` without user-info (a node behind a proxy may take credentials in the URL)."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


class SdkKaspaNode:
    """A Kaspa node reached through ``kaspa.RpcClient``; use ``async with`` or
    :meth:`connect` / :meth:`close`.

    :param url: ``ws://host:port`` (or ``wss://``) of the node's wRPC listener.
    :param network: the settlement network; the node's is checked by
        :func:`kasmm.settle.node.check_status`.
    :param encoding: ``json`` (default) or ``borsh``, matching the node's listener.
    :param timeout_s: the deadline of each call, and of connecting.
    """

    def __init__(
        self,
        url: str,
        network: Network,
        *,
        encoding: Literal["json", "borsh"] = "json",
        timeout_s: float = 10.0,
    ) -> None:
        import kaspa

        self._url = url
        self._network = network
        self._timeout_s = timeout_s
        try:
            self._client = kaspa.RpcClient(
                url=url, encoding=encoding, network_id=kaspa.NetworkId(_NETWORK_ID[network])
            )
        except Exception as exc:
            # kaspa 2.1.0 refuses a URL with user-info ("Invalid input"): never echo the URL.
            raise NodeMisconfigured(
                f"the SDK refused the node URL {redact_url(url)!r}: {exc}"
            ) from None

    def __repr__(self) -> str:
        return f"SdkKaspaNode({redact_url(self._url)!r}, network={self._network!r})"

    @property
    def is_connected(self) -> bool:
        """Whether the websocket is up."""
        return bool(self._client.is_connected)

    async def connect(self) -> None:
        """Connect once, without the SDK's endless retry.

        :raises NodeUnavailable: the node did not accept the connection in time.
        """
        timeout_ms = int(self._timeout_s * 1000)
        await self._call(
            "connect",
            lambda: self._client.connect(
                block_async_connect=True, strategy="fallback", timeout_duration=timeout_ms
            ),
        )

    async def close(self) -> None:
        """Disconnect (idempotent; errors while closing are not worth raising)."""
        if not self._client.is_connected:
            return
        with anyio.move_on_after(self._timeout_s, shield=True):
            try:
                await _awaited_call(self._client.disconnect)
            except Exception:  # closing a broken socket may fail; nothing left to do
                return

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def status(self) -> NodeStatus:
        """``getServerInfo``."""
        info = await self._call("getServerInfo", self._client.get_server_info)
        try:
            return NodeStatus(
                network_id=str(info["networkId"]),
                server_version=str(info["serverVersion"]),
                synced=bool(info["isSynced"]),
                has_utxo_index=bool(info["hasUtxoIndex"]),
                virtual_daa_score=int(info["virtualDaaScore"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise NodeError(f"getServerInfo: unexpected answer ({exc!r})") from None

    async def virtual_daa_score(self) -> int:
        """``getBlockDagInfo``'s ``virtualDaaScore``."""
        info = await self._call("getBlockDagInfo", self._client.get_block_dag_info)
        try:
            return int(info["virtualDaaScore"])
        except (KeyError, TypeError, ValueError) as exc:
            raise NodeError(f"getBlockDagInfo: unexpected answer ({exc!r})") from None

    async def receipts(self, address: str) -> tuple[Receipt, ...]:
        """``getUtxosByAddresses`` for one address."""
        answer = await self._call(
            "getUtxosByAddresses",
            lambda: self._client.get_utxos_by_addresses({"addresses": [address]}),
        )
        try:
            return tuple(
                _receipt(entry) for entry in answer["entries"] if entry["address"] == address
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise NodeError(f"getUtxosByAddresses: unexpected answer ({exc!r})") from None

    async def _call(self, method: str, request: Callable[[], object]) -> Any:
        """Run one SDK coroutine under the deadline and translate its errors."""
        try:
            with anyio.fail_after(self._timeout_s):
                return await _awaited_call(request)
        except TimeoutError:
            raise NodeUnavailable(
                f"{method}: no answer from {redact_url(self._url)} in {self._timeout_s:g} s"
            ) from None
        except Exception as exc:
            raise _translate(method, str(exc), redact_url(self._url)) from None


def _receipt(entry: Mapping[str, Any]) -> Receipt:
    outpoint, utxo = entry["outpoint"], entry["utxoEntry"]
    return Receipt(
        txid=str(outpoint["transactionId"]),
        index=int(outpoint["index"]),
        amount_sompi=int(utxo["amount"]),
        block_daa_score=int(utxo["blockDaaScore"]),
        is_coinbase=bool(utxo["isCoinbase"]),
    )


async def _awaited_call(method: Callable[[], object]) -> Any:
    """Call an SDK method and await what it returns: a coroutine its stubs do not declare."""
    return await cast(Awaitable[Any], method())


def _translate(method: str, message: str, url: str) -> NodeError:
    """The SDK's bare ``Exception`` as a :class:`NodeError` subclass, by its rusty-kaspa text."""
    if message.startswith(_REMOTE):
        detail = message.removeprefix(_REMOTE).lstrip(" ->")
        if any(word in detail.lower() for word in _CONNECTION_WORDS):
            # workflow-rpc reports its own socket closing under the same prefix.
            return NodeUnavailable(f"{method}: {url}: {detail}")
        if "--utxoindex" in detail:
            return NodeMisconfigured(f"{method}: the node has no UTXO index ({detail})")
        return NodeError(f"{method}: the node refused: {detail}")
    return NodeUnavailable(f"{method}: {url}: {message}")
