"""A loopback Kaspa node speaking wRPC with JSON encoding: what settlement's confirmations ask.

The Kaspa SDK's ``RpcClient(url=..., encoding="json")`` (kaspa 2.1.0) talks to it unmodified.
The protocol is workflow-rs ``workflow-rpc``'s JSON one (``rpc/src/messages.rs``, as rusty-kaspa's
wRPC server uses it), one websocket text frame per message:

- request: ``{"id": <u64>, "method": "getServerInfo", "params": {...}}`` (method names are
  rusty-kaspa's ``RpcApiOps`` in camelCase; the client sends nothing before its first request);
- answer: ``{"id": <same>, "params": {...}}``, or ``{"id": <same>, "error": {"code": 0,
  "message": "...", "data": null}}``, which the SDK raises as
  ``Exception("RPC Server (remote error) -> code:0  message:`...` data:None")``;
- the answer's fields are rusty-kaspa's ``kaspa_rpc_core`` models in camelCase; the SDK
  deserializes them into those Rust types, so a missing or mistyped field fails the call (a
  UTXO's ``scriptPublicKey`` is one hex string: the 2-byte big-endian version, then the script).

Answered: ``getServerInfo``, ``getBlockDagInfo``, ``getSinkBlueScore``, ``getUtxosByAddresses``
and ``ping``; anything else gets the error a node gives for an unavailable method. The chain is
a table the test writes: UTXOs paid to addresses and a virtual DAA score it advances.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from aiohttp import WSMsgType, web

__all__ = ["KaspaNodeEmulator", "Utxo"]

#: rusty-kaspa's ``RpcError::NoUtxoIndex`` text.
NO_UTXO_INDEX = "Method unavailable. Run the node with the --utxoindex argument."
_ZERO_HASH = "00" * 32


@dataclass(frozen=True, slots=True)
class Utxo:
    """An unspent output the emulated node's UTXO index holds."""

    address: str
    txid: str
    index: int
    amount_sompi: int
    block_daa_score: int
    is_coinbase: bool = False


@dataclass
class _Fault:
    method: str
    message: str | None  # None: drop the connection instead of answering


@dataclass
class KaspaNodeEmulator:
    """A wRPC-JSON Kaspa node on ``127.0.0.1`` (any free port); ``async with`` runs it.

    :param network_id: what ``getServerInfo`` says (``mainnet``, ``testnet-10``).
    :param virtual_daa_score: the virtual DAA score; :meth:`advance` moves it.
    """

    network_id: str = "mainnet"
    virtual_daa_score: int = 100_000_000
    synced: bool = True
    has_utxo_index: bool = True
    server_version: str = "1.0.1-emulated"
    utxos: list[Utxo] = field(default_factory=list)
    #: Every request received, in order: (method, params).
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    _faults: list[_Fault] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    _port: int = 0
    _sockets: set[web.WebSocketResponse] = field(default_factory=set)

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:<port>``, for ``RpcClient(url=...)``."""
        if self._runner is None:
            raise RuntimeError("Kaspa node emulator not started")
        return f"ws://127.0.0.1:{self._port}"

    async def start(self) -> None:
        """Listen on a free loopback port."""
        app = web.Application()
        app.router.add_get("/", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self._port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        """Close every connection and the listener."""
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def pay(
        self, address: str, txid: str, amount_sompi: int, *, index: int = 0, depth: int = 0
    ) -> Utxo:
        """Put an output of ``txid`` to ``address`` in the UTXO set, ``depth`` DAA score deep."""
        utxo = Utxo(address, txid, index, amount_sompi, self.virtual_daa_score - depth)
        self.utxos.append(utxo)
        return utxo

    def spend(self, txid: str) -> None:
        """Remove ``txid``'s outputs (the wallet spent them)."""
        self.utxos = [u for u in self.utxos if u.txid != txid]

    def advance(self, daa: int) -> None:
        """Move the virtual DAA score on by ``daa``."""
        self.virtual_daa_score += daa

    def fail_next(self, method: str, message: str | None) -> None:
        """Answer the next ``method`` request with an RPC error (``None``: drop the socket)."""
        self._faults.append(_Fault(method, message))

    def methods(self) -> list[str]:
        """The methods requested so far, in order."""
        return [method for method, _ in self.requests]

    async def _handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.add(ws)
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                message = json.loads(msg.data)
                method, params = str(message["method"]), dict(message.get("params") or {})
                self.requests.append((method, params))
                fault = self._take_fault(method)
                if fault is not None and fault.message is None:
                    await ws.close()
                    break
                answer = self._answer(message.get("id"), method, params, fault)
                await ws.send_str(json.dumps(answer))
        finally:
            self._sockets.discard(ws)
        return ws

    def _take_fault(self, method: str) -> _Fault | None:
        for fault in self._faults:
            if fault.method == method:
                self._faults.remove(fault)
                return fault
        return None

    def _answer(
        self, msg_id: Any, method: str, params: dict[str, Any], fault: _Fault | None
    ) -> dict[str, Any]:
        if fault is not None:
            return _error(msg_id, str(fault.message))
        handler = {
            "getServerInfo": self._server_info,
            "getBlockDagInfo": self._block_dag_info,
            "getSinkBlueScore": self._sink_blue_score,
            "getUtxosByAddresses": self._utxos_by_addresses,
            "ping": self._ping,
        }.get(method)
        if handler is None:
            return _error(msg_id, f"method {method} is not served by the emulated node")
        if method == "getUtxosByAddresses" and not self.has_utxo_index:
            return _error(msg_id, NO_UTXO_INDEX)
        return {"id": msg_id, "params": handler(params)}

    def _ping(self, _params: dict[str, Any]) -> dict[str, Any]:
        return {}

    def _server_info(self, _params: dict[str, Any]) -> dict[str, Any]:
        return {
            "rpcApiVersion": 1,
            "rpcApiRevision": 0,
            "serverVersion": self.server_version,
            "networkId": self.network_id,
            "hasUtxoIndex": self.has_utxo_index,
            "isSynced": self.synced,
            "virtualDaaScore": self.virtual_daa_score,
        }

    def _block_dag_info(self, _params: dict[str, Any]) -> dict[str, Any]:
        return {
            "network": self.network_id,
            "blockCount": 1,
            "headerCount": 1,
            "tipHashes": [_ZERO_HASH],
            "difficulty": 1.0,
            "pastMedianTime": 0,
            "virtualParentHashes": [_ZERO_HASH],
            "pruningPointHash": _ZERO_HASH,
            "virtualDaaScore": self.virtual_daa_score,
            "sink": _ZERO_HASH,
        }

    def _sink_blue_score(self, _params: dict[str, Any]) -> dict[str, Any]:
        # Blue score trails DAA score on a real node; any plausible number will do here.
        return {"blueScore": self.virtual_daa_score - 1000}

    def _utxos_by_addresses(self, params: dict[str, Any]) -> dict[str, Any]:
        wanted = set(params.get("addresses", []))
        return {"entries": [_entry(u) for u in self.utxos if u.address in wanted]}


def _entry(utxo: Utxo) -> dict[str, Any]:
    """A ``RpcUtxosByAddressesEntry`` as a rusty-kaspa node serializes it in JSON."""
    import kaspa

    script = kaspa.pay_to_address_script(kaspa.Address(utxo.address))
    return {
        "address": utxo.address,
        "outpoint": {"transactionId": utxo.txid, "index": utxo.index},
        "utxoEntry": {
            "amount": utxo.amount_sompi,
            "scriptPublicKey": f"{int(script.version):04x}{script.script}",
            "blockDaaScore": utxo.block_daa_score,
            "isCoinbase": utxo.is_coinbase,
        },
    }


def _error(msg_id: Any, message: str) -> dict[str, Any]:
    return {"id": msg_id, "error": {"code": 0, "message": message, "data": None}}
